"""Fitted models and pools shared by the distributed tests (fitted once per session)."""

import numpy as np
import pytest

from sk_mtbnn import SparseMultiTaskBNNRegressor

#: A model that fits in a fraction of a second.
SMALL = {"hidden_layer_sizes": (16,), "max_epochs": 20, "validation_fraction": None}


def _training_data(n_tasks):
    rng = np.random.RandomState(0)
    X = rng.uniform(-2, 2, size=(120, 3))
    y = np.column_stack([np.sin(2 * X[:, 0]), X[:, 1] * X[:, 2]])[:, :n_tasks]
    return X, y + 0.1 * rng.standard_normal(y.shape)


@pytest.fixture(scope="session", params=[1, 2], ids=["one_task", "two_tasks"])
def fitted(request):
    """A fitted regressor with one task (1-D outputs) or two (2-D outputs)."""
    X, y = _training_data(request.param)
    return SparseMultiTaskBNNRegressor(**SMALL, random_state=0).fit(X, y.squeeze())


@pytest.fixture(scope="session")
def search_data():
    return _training_data(2)


@pytest.fixture(scope="session")
def pool():
    """A lazily generated pool of 6,000 rows in uneven blocks, wider than the training range."""
    da = pytest.importorskip("dask.array")
    X = da.random.default_rng(1).uniform(-4, 4, size=(6_000, 3), chunks=(1_000, 3))
    return X.rechunk(((700, 1_300, 1_000, 2_000, 1_000), (3,)))
