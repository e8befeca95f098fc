"""Shared fixtures (thread settings live in the root conftest.py)."""

import numpy as np
import pytest

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
