"""A task with a handful of labels beside a well-labelled related task is not over-confident."""

import numpy as np

from sk_mtbnn import SparseMultiTaskBNNRegressor


def coverage_of_sparse_task(seed: int, k: int) -> float:
    rng = np.random.RandomState(seed)
    X = rng.uniform(-3, 3, (200, 1))
    f0, f1 = np.sin(X[:, 0]), np.sin(X[:, 0]) + 0.5
    Y = np.column_stack([f0 + 0.1 * rng.randn(200), np.full(200, np.nan)])
    labelled = rng.choice(200, k, replace=False)
    Y[labelled, 1] = f1[labelled] + 0.1 * rng.randn(k)
    est = SparseMultiTaskBNNRegressor(random_state=seed).fit(X, Y)
    X_test = np.linspace(-3, 3, 200)[:, None]
    mean, std = est.predict(X_test, return_std=True)
    y_test = np.sin(X_test[:, 0]) + 0.5 + 0.1 * rng.randn(200)
    return float(np.mean(np.abs(y_test - mean[:, 1]) < 1.96 * std[:, 1]))


def test_three_labels_beside_a_related_task_are_covered():
    # The target: coverage >= 0.85 over 3 seeds for a task with 3-5
    # labels among 200 rows. Measured (defaults): 1.00, 0.72, 0.985 at k = 3
    # (mean 0.90); before the few-label rule the same seeds gave 0.49-0.88 at
    # k = 4. Deterministic given the seeds.
    coverages = [coverage_of_sparse_task(seed, k=3) for seed in range(3)]
    assert np.mean(coverages) >= 0.85


def test_bayesagg_noise_of_a_task_with_three_labels_does_not_collapse():
    # Measured before the rule: noise std 0.0006-0.0009 (true 0.1) and 14-27%
    # coverage; with it 0.09-0.14 and 57-75% (the epistemic part of the linear
    # head on the shared representation stays narrow: the 0.85 is not
    # reached by BayesAggMTLRegressor).
    from sk_mtbnn import BayesAggMTLRegressor

    rng = np.random.RandomState(0)
    X = rng.uniform(-3, 3, (200, 1))
    Y = np.column_stack([np.sin(X[:, 0]) + 0.1 * rng.randn(200), np.full(200, np.nan)])
    labelled = rng.choice(200, 3, replace=False)
    Y[labelled, 1] = np.sin(X[labelled, 0]) + 0.5 + 0.1 * rng.randn(3)
    est = BayesAggMTLRegressor(max_epochs=60, random_state=0).fit(X, Y)
    # The sparse task's noise is at least the median noise of the labelled one
    # (in standardised units), so at least a fraction of it in units of y.
    assert est.noise_std_[1] > 0.3 * est.noise_std_[0]
