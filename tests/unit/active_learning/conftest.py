"""Fixtures of the active-learning tests: a 2-D pool with two tasks, a small fitted model."""

import numpy as np
import pytest

from sk_mtbnn import SparseMultiTaskBNNRegressor


def fit_model(X, y, **kw):
    """A small SparseMultiTaskBNNRegressor fitted in a fraction of a second."""
    params = {
        "hidden_layer_sizes": (16, 16),
        "max_epochs": 60,
        "validation_fraction": None,
        "random_state": 0,
    }
    params.update(kw)
    return SparseMultiTaskBNNRegressor(**params).fit(X, y)


@pytest.fixture(scope="session")
def fit():
    return fit_model


@pytest.fixture(scope="module")
def pool():
    rng = np.random.RandomState(0)
    X = rng.uniform(-3, 3, size=(400, 2))
    y = np.column_stack([np.sin(X[:, 0]), np.cos(X[:, 1]) + X[:, 0]])
    return X, y


@pytest.fixture(scope="module")
def model(pool):
    """Fitted on the first 40 rows of the pool (they are its labelled rows)."""
    X, y = pool
    return fit_model(X[:40], y[:40])


@pytest.fixture(scope="session")
def fitted_ensemble():
    """A 3-member ensemble on 60 rows of two tasks, its data and a 200-row pool."""
    rng = np.random.RandomState(0)
    X = rng.uniform(-2, 2, size=(60, 2))
    y = np.column_stack([np.sin(2 * X[:, 0]), X[:, 1] ** 2]) + 0.05 * rng.randn(60, 2)
    est = SparseMultiTaskBNNRegressor(
        hidden_layer_sizes=(16,), max_epochs=20, n_estimators=3, random_state=0
    ).fit(X, y)
    pool = rng.uniform(-3, 3, size=(200, 2))
    return est, X, y, pool
