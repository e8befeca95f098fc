"""Predictive intervals of the default regressor are calibrated on a homoscedastic problem."""

import numpy as np

from sk_mtbnn import SparseMultiTaskBNNRegressor
from sk_mtbnn.datasets import make_multitask_regression
from sk_mtbnn.metrics import interval_coverage


def test_95_percent_intervals_cover_93_to_97_percent_of_held_out_points():
    # Two related smooth tasks in 3-D, Gaussian noise of std 0.2 everywhere.
    X, y = make_multitask_regression(6000, n_features=3, n_tasks=2, noise=0.2, random_state=0)
    est = SparseMultiTaskBNNRegressor(random_state=0).fit(X[:1500], y[:1500])
    mean, std = est.predict(X[1500:], return_std=True)
    coverage = interval_coverage(y[1500:], mean, std, multioutput="raw_values")
    # 4500 test points per task: the coverage estimate's standard error is
    # sqrt(0.95 * 0.05 / 4500) = 0.003, so [0.93, 0.97] is +-6 standard errors
    # around 0.95: a failure means miscalibration, not bad luck.
    assert np.all((coverage >= 0.93) & (coverage <= 0.97)), coverage
    # And the noise is recovered (a 10% band on std 0.2).
    np.testing.assert_allclose(est.noise_std_, 0.2, rtol=0.1)
