"""
Calibration of the predictive intervals
=======================================

A reliability diagram: for every nominal level, the fraction of held-out
points inside the central interval of that level. Calibrated predictions lie
on the diagonal. Data: the bundled energy-efficiency set, 30% of the training
labels of each task hidden.
"""

import matplotlib.pyplot as plt
import numpy as np
from sklearn.model_selection import train_test_split

from sk_mtbnn import SparseMultiTaskBNNRegressor
from sk_mtbnn.datasets import load_enb
from sk_mtbnn.metrics import interval_coverage, regression_calibration_error

X, y = load_enb(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, random_state=0)
y_train = y_train.copy()
y_train[np.random.RandomState(0).uniform(size=y_train.shape) < 0.3] = np.nan

reg = SparseMultiTaskBNNRegressor(random_state=0).fit(X_train, y_train)
mean, std = reg.predict(X_test, return_std=True)

# %%
levels = np.linspace(0.05, 0.95, 19)
fig, ax = plt.subplots(figsize=(5, 5))
for t, name in enumerate(["heating load", "cooling load"]):
    observed = [interval_coverage(y_test[:, t], mean[:, t], std[:, t], level=lv) for lv in levels]
    error = regression_calibration_error(y_test[:, t], mean[:, t], std[:, t])
    ax.plot(levels, observed, "o-", label=f"{name} (calibration error {error:.3f})")
ax.plot([0, 1], [0, 1], "k--", label="perfect calibration")
ax.set_xlabel("nominal coverage of the central interval")
ax.set_ylabel("observed coverage on held-out buildings")
ax.legend(fontsize=8)
ax.set_title("Reliability diagram")
fig.tight_layout()
plt.show()
