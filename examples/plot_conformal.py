"""
Bayesian bands and conformal intervals
======================================

The regressors plug into MAPIE (``pip install mapie``), which turns any
regressor into intervals with a guaranteed marginal coverage on new data
from the same distribution. Three ways to get a 90% band from one fitted
:class:`~sk_mtbnn.SparseMultiTaskBNNRegressor`, calibrated (for the
conformal ones) on 1000 held-out rows:

* the Bayesian band ``mean +- 1.645 std`` from ``predict(X, return_std=True)``:
  no extra data, but only as good as the model's calibration;
* split conformal with absolute residuals: guaranteed coverage, one width
  everywhere;
* split conformal with residuals divided by the model's own ``std``
  (MAPIE's ``"std_normalized"`` score): guaranteed coverage, and the
  Bayesian band's shape, rescaled by one calibrated factor;
* split conformal with residuals divided by a second model of their size
  (``"residual_normalized"``), fitted on a quarter of the calibration rows.

The noise grows from left to right, and the training data have a gap at
``(0.5, 2)`` where the calibration and test data do not: split conformal
needs only the calibration and test rows to come from one distribution.
The marginal coverage is guaranteed; the coverage *in the gap* shows which
bands adapt. MAPIE handles one target at a time; the last section
conformalises each task of a multi-task model.
"""

import matplotlib.pyplot as plt
import numpy as np
from mapie.conformity_scores import ResidualNormalisedScore
from mapie.regression import SplitConformalRegressor
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.linear_model import Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import SplineTransformer

from sk_mtbnn import SparseMultiTaskBNNRegressor

rng = np.random.RandomState(0)


GAP = (0.5, 2.0)


def in_gap(x):
    return (x > GAP[0]) & (x < GAP[1])


def make_data(n, n_tasks=1, gap=False):
    """x uniform on [-3, 3] (without the gap if ``gap``), noise std 0.05 to 0.65."""
    x = rng.uniform(-3, 3, size=2 * n)
    x = x[~in_gap(x)][:n] if gap else x[:n]
    noise = (0.05 + 0.1 * (x + 3))[:, None] * rng.standard_normal((n, n_tasks))
    y = np.sin(x)[:, None] + 0.5 * np.arange(n_tasks) * x[:, None] + noise
    return x[:, None], y[:, 0] if n_tasks == 1 else y


X, y = make_data(300, gap=True)
(X_cal, y_cal), (X_test, y_test) = make_data(1000), make_data(2000)
reg = SparseMultiTaskBNNRegressor(hidden_layer_sizes=(32, 32), max_epochs=300, random_state=0)
reg.fit(X, y)

# %%
# The four bands, at confidence level 0.9.
grid = np.linspace(-3, 3, 300)[:, None]
mean, std = reg.predict(grid, return_std=True)
bands = {"Bayesian: mean ± 1.645 std": (mean - 1.645 * std, mean + 1.645 * std)}
scores = {
    "conformal: absolute residual": "absolute",
    "conformal: residual / std": "std_normalized",
    "conformal: residual / residual model": ResidualNormalisedScore(
        make_pipeline(SplineTransformer(n_knots=4), Ridge()), random_state=0
    ),
}
conformal = {}
for name, score in scores.items():
    conformal[name] = SplitConformalRegressor(
        reg, confidence_level=0.9, conformity_score=score, prefit=True
    ).conformalize(X_cal, y_cal)
    _, intervals = conformal[name].predict_interval(grid)
    bands[name] = intervals[:, 0, 0], intervals[:, 1, 0]


def coverage_and_width(name):
    """Coverage (overall and in the gap) and mean width on the 2000 test points."""
    if name in conformal:
        intervals = conformal[name].predict_interval(X_test)[1][:, :, 0]
        low, high = intervals[:, 0], intervals[:, 1]
    else:
        m, s = reg.predict(X_test, return_std=True)
        low, high = m - 1.645 * s, m + 1.645 * s
    inside = (y_test >= low) & (y_test <= high)
    return inside.mean(), inside[in_gap(X_test[:, 0])].mean(), np.mean(high - low)


fig, axes = plt.subplots(2, 3, figsize=(13, 7), layout="constrained")
for ax, (name, (low, high)) in zip(axes.flat, bands.items()):
    cov, cov_gap, width = coverage_and_width(name)
    ax.axvspan(*GAP, color="grey", alpha=0.1)
    ax.plot(X[:, 0], y, ".", ms=3, color="grey", alpha=0.6)
    ax.fill_between(grid[:, 0], low, high, alpha=0.3)
    ax.plot(grid[:, 0], mean, "k-", lw=1)
    ax.set_title(
        f"{name}\ncoverage {cov:.3f} (in the gap {cov_gap:.2f}), mean width {width:.2f}",
        fontsize=9,
    )
    print(f"{name:40s} coverage {cov:.3f}  in the gap {cov_gap:.3f}  width {width:.2f}")
ax = axes.flat[4]
for name, (low, high) in bands.items():
    ax.plot(grid[:, 0], high - low, label=name)
true_width = 2 * 1.645 * (0.05 + 0.1 * (grid[:, 0] + 3))
ax.plot(grid[:, 0], true_width, "k--", label="oracle (true noise)")
ax.set_xlabel("x")
ax.set_title("width of each 90% band", fontsize=9)
ax.legend(fontsize=7)

# %%
# Several tasks: fit one multi-task model (NaN marks a missing label), then
# conformalise each task on its labelled calibration rows through a view of
# that task's column.


class TaskColumn(RegressorMixin, BaseEstimator):
    """One task of a fitted multi-task regressor, as a single-target regressor."""

    def __init__(self, estimator, task):
        self.estimator = estimator
        self.task = task

    def fit(self, X, y):
        raise NotImplementedError("Fit the multi-task model itself; use prefit=True.")

    def predict(self, X, return_std=False):
        if return_std:
            mean, std = self.estimator.predict(X, return_std=True)
            return mean[:, self.task], std[:, self.task]
        return self.estimator.predict(X)[:, self.task]

    def __sklearn_is_fitted__(self):
        return True

    @property
    def n_features_in_(self):  # how MAPIE recognises a fitted regressor
        return self.estimator.n_features_in_


(X2, Y2), (X2_cal, Y2_cal), (X2_test, Y2_test) = (make_data(n, 2) for n in (300, 1000, 2000))
for Z in (Y2, Y2_cal, Y2_test):
    Z[rng.uniform(size=len(Z)) < 0.3, 1] = np.nan
multi = SparseMultiTaskBNNRegressor(hidden_layer_sizes=(32, 32), max_epochs=300, random_state=0)
multi.fit(X2, Y2)
ax = axes.flat[5]
for task in range(2):
    cal, test = ~np.isnan(Y2_cal[:, task]), ~np.isnan(Y2_test[:, task])
    split = SplitConformalRegressor(
        TaskColumn(multi, task), confidence_level=0.9, conformity_score="std_normalized"
    ).conformalize(X2_cal[cal], Y2_cal[cal, task])
    _, intervals = split.predict_interval(X2_test[test])
    low, high = intervals[:, 0, 0], intervals[:, 1, 0]
    cov = np.mean((Y2_test[test, task] >= low) & (Y2_test[test, task] <= high))
    order = np.argsort(X2_test[test, 0])
    ax.fill_between(X2_test[test, 0][order], low[order], high[order], alpha=0.3)
    ax.plot(X2[:, 0], Y2[:, task], ".", ms=3, label=f"task {task}: coverage {cov:.3f}")
    print(f"task {task}: {cal.sum()} calibration labels, coverage {cov:.3f}")
ax.set_title("two tasks, conformalised one by one (residual / std)", fontsize=9)
ax.legend(fontsize=8)
plt.show()
