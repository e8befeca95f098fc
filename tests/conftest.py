"""Shared fixtures (thread settings live in the root conftest.py)."""

import functools
import pickle

import joblib
import numpy as np
import pytest
from sklearn.model_selection import GridSearchCV, KFold

import sk_mtbnn
from sk_mtbnn import SparseMultiTaskBNNRegressor

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


# ------------------------------------------------ the distributed tests' fixtures
# Fitted models and pools, fitted once per session. They live here, not in a
# tests/distributed/conftest.py: two conftest.py files outside packages both import
# as the module ``conftest``, and collecting two such directories together fails.
# Their names are not used by other directories' fixtures (which would shadow them).

#: A model that fits in a fraction of a second.
SMALL = {"hidden_layer_sizes": (16,), "max_epochs": 20, "validation_fraction": None}


def _training_data(n_tasks):
    rng = np.random.RandomState(0)
    X = rng.uniform(-2, 2, size=(120, 3))
    y = np.column_stack([np.sin(2 * X[:, 0]), X[:, 1] * X[:, 2]])[:, :n_tasks]
    return X, y + 0.1 * rng.standard_normal(y.shape)


@pytest.fixture(scope="session")
def worker_rtol():
    """Relative tolerance between a row's prediction on a worker and locally.

    Float64 predictions of a row may differ in the last bits with the size of
    the batch it is computed in (BLAS picks kernels by shape); 1e-12 is about
    10^4 ulps, far below any real difference (a row from the wrong block, or
    a wrong model, differs by O(0.01) or more).
    """
    return 1e-12


@pytest.fixture(scope="session")
def small_regressor():
    """A new, unfitted regressor that fits in a fraction of a second."""
    return lambda: SparseMultiTaskBNNRegressor(**SMALL, random_state=0)


@pytest.fixture(scope="session")
def fitted_models(small_regressor):
    """Fitted regressors by number of tasks: 1 (1-D outputs) and 2 (2-D outputs)."""
    models = {}
    for n_tasks in (1, 2):
        X, y = _training_data(n_tasks)
        models[n_tasks] = small_regressor().fit(X, y.squeeze())
    return models


@pytest.fixture(params=[1, 2], ids=["one_task", "two_tasks"])
def fitted_regressor(request, fitted_models):
    """Each fitted regressor in turn (function-scoped: no reordering of the tests)."""
    return fitted_models[request.param]


@pytest.fixture(scope="session")
def training_data():
    """120 rows, 3 features, 2 tasks."""
    return _training_data(2)


class SearchResult:
    """A fitted GridSearchCV, comparable with another one."""

    def __init__(self, search):
        self.search = search

    def assert_same(self, other: "SearchResult") -> None:
        assert self.search.best_params_ == other.search.best_params_
        # Same seeds, one thread per process and the same builds: every fit is
        # bitwise reproducible, so the scores are equal, not merely close.
        for key in ("split0_test_score", "split1_test_score", "mean_test_score", "rank_test_score"):
            np.testing.assert_array_equal(
                self.search.cv_results_[key], other.search.cv_results_[key]
            )


@pytest.fixture(scope="session")
def grid_search(small_regressor):
    """``grid_search(backend)``: a 2 x 2 grid, 2 folds, the fits run through a joblib backend."""
    X, y = _training_data(2)

    @functools.cache  # a backend's result is reproducible: compute each once
    def run(backend: str) -> SearchResult:
        search = GridSearchCV(
            small_regressor(),
            {"learning_rate": [1e-3, 1e-2], "hidden_layer_sizes": [(8,), (16,)]},
            cv=KFold(2, shuffle=True, random_state=0),
        )
        with joblib.parallel_config(backend=backend, n_jobs=2):
            return SearchResult(search.fit(X, y))

    return run


@pytest.fixture(scope="session")
def dask_pool():
    """A lazily generated pool of 6,000 rows in uneven blocks, wider than the training range."""
    da = pytest.importorskip("dask.array")
    X = da.random.default_rng(1).uniform(-4, 4, size=(6_000, 3), chunks=(1_000, 3))
    return X.rechunk(((700, 1_300, 1_000, 2_000, 1_000), (3,)))
