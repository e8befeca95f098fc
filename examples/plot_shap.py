"""
Which inputs drive each task's prediction and its uncertainty
=============================================================

:func:`sk_mtbnn.explain.shap_values` splits every prediction of a fitted
multi-task regressor into a base value (the mean prediction over a
background sample) plus one Kernel SHAP attribution per input, for every
task at once; they add up exactly to the prediction. Here: the heating and
cooling loads of the bundled energy-efficiency buildings. Explaining
``output="std"`` instead of the mean shows which inputs the model's
*uncertainty* depends on.
"""

import matplotlib.pyplot as plt
import numpy as np
import shap
from sklearn.model_selection import train_test_split

from sk_mtbnn import SparseMultiTaskBNNRegressor
from sk_mtbnn.datasets import load_enb
from sk_mtbnn.explain import shap_values

X, y = load_enb(return_X_y=True, as_frame=True)
# UCI's names of the columns X1..X8.
X.columns = [
    "compactness",
    "surface area",
    "wall area",
    "roof area",
    "height",
    "orientation",
    "glazing area",
    "glazing distribution",
]
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, random_state=0)
reg = SparseMultiTaskBNNRegressor(hidden_layer_sizes=(32, 32), max_epochs=60, random_state=0)
reg.fit(X_train, y_train)

# %%
# 8 inputs: all 254 coalitions are evaluated, so these are exact Shapley
# values. The cost grows with the background sample: 30 rows suffice here.
background = X_train.sample(30, random_state=0)
rows = X_test.iloc[:80]
mean_exp = shap_values(reg, rows, background)
std_exp = shap_values(reg, rows, background, output="std")
print(mean_exp.values.shape, mean_exp.output_names)

# The attributions add up to the prediction minus the base value.
gap = mean_exp.values.sum(1) + mean_exp.base_values - reg.predict(rows)
print(f"largest additivity gap: {np.abs(gap).max():.1e}")
std = reg.predict(rows, return_std=True)[1]
print("predictive std per task, min and max:", std.min(0).round(2), std.max(0).round(2))

# %%
# Left: mean absolute attribution per input and task. Middle: every
# building's attributions for the heating load, coloured by the input's
# value. Right: the same importance for the predictive standard deviation,
# which is mostly the (constant) noise level, so its attributions are small.
fig, axes = plt.subplots(1, 3, figsize=(14, 4.5), layout="constrained")
order = np.argsort(np.abs(mean_exp.values).mean((0, 2)))
names = np.array(mean_exp.feature_names)[order]
tasks = ["heating load", "cooling load"]
for ax, exp, title in [(axes[0], mean_exp, "mean"), (axes[2], std_exp, "std")]:
    importance = np.abs(exp.values).mean(0)[order]  # (features, tasks)
    for t, task in enumerate(tasks):
        ax.barh(np.arange(len(names)) + 0.2 - 0.4 * t, importance[:, t], 0.4, label=task)
    ax.set_yticks(np.arange(len(names)), names)
    ax.set_xlabel("mean |SHAP value| (kWh/m²)")
    ax.set_title(f"importance for the predictive {title}")
    ax.legend(fontsize=8)
shap.plots.beeswarm(mean_exp[:, :, 0], ax=axes[1], show=False, plot_size=None, s=8)
axes[1].tick_params(labelsize=9)
axes[1].xaxis.label.set_fontsize(9)
axes[1].set_title("heating load, per building")
plt.show()
