"""
Task-specific subnetworks: how much do the tasks' masks overlap?
================================================================

Four tasks in two groups of related tasks (a linear model of
coregionalisation). :class:`~sk_mtbnn.IterativeMagnitudePruning` finds for
every task a sparse subnetwork of the shared backbone; related tasks keep
more of the same weights.
"""

import matplotlib.pyplot as plt

from sk_mtbnn import IterativeMagnitudePruning, SparseMultiTaskBNNRegressor
from sk_mtbnn.datasets import make_multitask_regression
from sk_mtbnn.pruning import plot_mask_overlap, plot_validation_scores

X, y = make_multitask_regression(800, task_groups=[0, 0, 1, 1], noise=0.1, random_state=0)
pruning = IterativeMagnitudePruning(
    SparseMultiTaskBNNRegressor(hidden_layer_sizes=(32, 32), max_epochs=40),
    prune_ratio=0.5,
    n_rounds=2,
    select="last",
    random_state=0,
).fit(X, y)
print("sparsity per task:", pruning.sparsity_.round(2))
print("effective parameters per task:", pruning.n_effective_parameters_)

# %%
fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(11, 4.5))
names = ["A1", "A2", "B1", "B2"]
plot_mask_overlap(pruning, task_names=names, ax=ax0)
plot_validation_scores(pruning, task_names=names, ax=ax1)
fig.tight_layout()
plt.show()
