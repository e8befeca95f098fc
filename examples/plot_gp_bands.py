"""
Predictive bands next to a Gaussian process
===========================================

Two related tasks on one input: ``f0(x) = x sin(x)``, labelled at 120
points, and ``f1(x) = f0(x) / 2 + 1``, labelled at only 12 of them (the other
labels are missing, NaN). The multi-task network learns its features from
both tasks, so task 1 inherits the shape learned on task 0 where its few
labels pin the head down; a Gaussian process fitted to task 1's twelve labels
has only those.

The figure also shows the network's weak spots, which the user guide
discusses: where task 1 has no label (x < 4) its band is too narrow -- the
last-layer posterior cannot know that features learned from task 0 may not
suit task 1 there -- and beyond the training inputs (x > 10) the network
extrapolates almost linearly with a band that does not widen enough, while
the GP returns to its prior.
"""

import matplotlib.pyplot as plt
import numpy as np
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import RBF, WhiteKernel
from sklearn.gaussian_process.kernels import ConstantKernel as C

from sk_mtbnn import SparseMultiTaskBNNRegressor

rng = np.random.RandomState(0)
X = rng.uniform(0, 10, size=(120, 1))


def truth(x):
    f0 = x * np.sin(x)
    return np.column_stack([f0, f0 / 2 + 1])


y = truth(X[:, 0]) + 0.5 * rng.standard_normal((120, 2))
y[12:, 1] = np.nan  # task 1 keeps 12 labels
grid = np.linspace(0, 12, 400)[:, None]

# %%
# The network sees both tasks at once; a GP sees each task's labelled rows.
reg = SparseMultiTaskBNNRegressor(random_state=0).fit(X, y)
mean, std = reg.predict(grid, return_std=True)

gps = []
for t in range(2):
    rows = ~np.isnan(y[:, t])
    kernel = C(1.0) * RBF(1.0) + WhiteKernel(0.1)
    gps.append(GaussianProcessRegressor(kernel, normalize_y=True).fit(X[rows], y[rows, t]))

# %%
# Bands are mean +- 1.96 standard deviations (epistemic + aleatoric).
fig, axes = plt.subplots(2, 2, figsize=(10, 6), sharex=True)
true = truth(grid[:, 0])
for t in range(2):
    gp_mean, gp_std = gps[t].predict(grid, return_std=True)
    for col, (m, s, name) in enumerate(
        [(mean[:, t], std[:, t], "SparseMultiTaskBNN"), (gp_mean, gp_std, "GP, per task")]
    ):
        ax = axes[t, col]
        ax.fill_between(grid[:, 0], m - 1.96 * s, m + 1.96 * s, alpha=0.3, label="95% band")
        ax.plot(grid, m, label="mean")
        ax.plot(grid, true[:, t], "k:", label="truth")
        rows = ~np.isnan(y[:, t])
        ax.plot(X[rows], y[rows, t], ".", ms=4, color="k")
        ax.set_title(f"{name}: task {t} ({rows.sum()} labels)")
        ax.axvspan(10, 12, color="grey", alpha=0.1)
axes[0, 0].legend(loc="upper left", fontsize=8)
axes[1, 0].set_xlabel("x  (shaded: no training data)")
axes[1, 1].set_xlabel("x  (shaded: no training data)")
fig.tight_layout()
plt.show()
