"""Shared fixtures (thread settings live in the root conftest.py)."""

import pickle

import numpy as np
import pytest

import sk_mtbnn

#: Settings that make a fit take a fraction of a second in unit tests.
FAST = {
    "hidden_layer_sizes": (16, 16),
    "max_epochs": 30,
    "validation_fraction": None,
    "random_state": 0,
}


@pytest.fixture
def fast_params():
    return dict(FAST)


@pytest.fixture
def multitask_data():
    """Two related 1-D tasks, 150 rows, a third of task 1's labels missing."""
    rng = np.random.RandomState(0)
    X = rng.uniform(-2, 2, size=(150, 2))
    y = np.column_stack([np.sin(2 * X[:, 0]), np.sin(2 * X[:, 0]) + X[:, 1]])
    y += 0.1 * rng.standard_normal(y.shape)
    y[::3, 1] = np.nan
    return X, y


@pytest.fixture
def ctrl_c_after_two_epochs(monkeypatch):
    """Every network training of the test gets KeyboardInterrupt at epoch 2.

    ``monkeypatch.undo()`` in the test ends it (the fixture shares the test's
    ``monkeypatch``).
    """
    from skorch.callbacks import Callback

    from sk_mtbnn.estimators import _base

    class CtrlC(Callback):
        def on_epoch_end(self, net, **kwargs):
            if len(net.history) == 2:
                raise KeyboardInterrupt  # what Ctrl-C raises; skorch ends training

    original = _base.build_callbacks
    monkeypatch.setattr(
        _base, "build_callbacks", lambda **kw: [*original(**kw), ("ctrl_c", CtrlC())]
    )


@pytest.fixture
def assert_sharing_round_trips(tmp_path):
    """A check: ``sk_mtbnn.save``/``load`` and pickle keep the sharing decisions and predictions.

    ``predict`` maps an estimator to a tuple of arrays (e.g. ``predict_proba`` of
    some rows); every copy must give them bitwise.
    """

    def check(estimator, predict):
        path = tmp_path / "model.skmtbnn"
        sk_mtbnn.save(estimator, path)
        for copy in (sk_mtbnn.load(path), pickle.loads(pickle.dumps(estimator))):
            np.testing.assert_array_equal(copy.shared_tasks_, estimator.shared_tasks_)
            np.testing.assert_array_equal(copy.sharing_gain_, estimator.sharing_gain_)
            for a, b in zip(predict(copy), predict(estimator)):
                np.testing.assert_array_equal(a, b)

    return check
