"""
BayesAgg-MTL: how the tasks are weighted during training
========================================================

Three regression tasks share a representation; the third is much noisier.
BayesAgg weights each task's gradient per sample and per dimension by its
precision under the task head's posterior; averaged over samples and
dimensions (as in Figure 3 of the paper), the weights show the noisy task
being trusted less as training proceeds.
"""

import matplotlib.pyplot as plt
import numpy as np

from sk_mtbnn import BayesAggMTLRegressor
from sk_mtbnn.datasets import make_multitask_regression

X, y = make_multitask_regression(1200, n_features=4, n_tasks=3, noise=0.05, random_state=0)
y[:, 2] += 1.0 * np.random.RandomState(1).standard_normal(len(y))  # a noisy task
reg = BayesAggMTLRegressor(
    hidden_layer_sizes=(64, 64),
    max_epochs=60,
    ls_epochs=2,
    validation_fraction=None,
    random_state=0,
).fit(X, y)

# %%
fig, ax = plt.subplots(figsize=(6, 4))
epochs = np.arange(reg.ls_epochs, reg.ls_epochs + len(reg.task_weights_)) + 1
for t, name in enumerate(["task 0", "task 1", "task 2 (noisy)"]):
    ax.plot(epochs, reg.task_weights_[:, t], label=name)
ax.axhline(1 / 3, color="k", ls=":", label="plain average")
ax.set_xlabel("epoch")
ax.set_ylabel("mean BayesAgg weight")
ax.legend()
fig.tight_layout()
plt.show()
