"""
Bayesian hyper-parameter search on the predictive likelihood
============================================================

Optuna's ``OptunaSearchCV`` (from the ``optuna-integration`` package) tunes
a :class:`~sk_mtbnn.SparseMultiTaskBNNRegressor` with a tree-structured
Parzen estimator: after a few random trials, each new trial is drawn where
the trials so far scored well. The distributions come from
:func:`sk_mtbnn.search.search_space`, and every trial is scored by the
cross-validated Gaussian negative log-likelihood of
``predict(X, return_std=True)``: a proper scoring rule, which rewards a
good mean *and* honest error bars (R², the default score, sees only the
mean). Two related tasks, a fifth of the labels missing.

scikit-optimize's ``BayesSearchCV`` takes the same space with
``search_space(..., backend="skopt")``.
"""

import warnings

import matplotlib.pyplot as plt
import numpy as np
import optuna
from optuna_integration import OptunaSearchCV
from sklearn.base import clone
from sklearn.model_selection import KFold, train_test_split

from sk_mtbnn import SparseMultiTaskBNNRegressor
from sk_mtbnn.datasets import make_multitask_regression
from sk_mtbnn.metrics import gaussian_nll
from sk_mtbnn.search import search_space

optuna.logging.set_verbosity(optuna.logging.WARNING)
warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
# optuna 5.0's OptunaSearchCV calls optuna's own deprecated terminator module.
warnings.filterwarnings("ignore", message="`optuna.terminator` module has been deprecated")

X, y = make_multitask_regression(
    240, n_features=4, n_tasks=2, noise=0.1, missing_fraction=0.2, random_state=0
)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, random_state=0)


def neg_nll(estimator, X, y):
    """Scorer: minus the mean Gaussian NLL (higher is better, NaN labels skipped)."""
    mean, std = estimator.predict(X, return_std=True)
    return -gaussian_nll(y, mean, std)


# %%
# The search space: small networks, so that the example runs in seconds.
base = SparseMultiTaskBNNRegressor(max_epochs=40, random_state=0)
space = search_space(
    base,
    "optuna",
    params=["hidden_layer_sizes", "learning_rate", "weight_decay", "prior_scale"],
    hidden_layer_sizes=[(8,), (32,), (16, 16)],
)
for name, distribution in space.items():
    print(f"{name:20s} {distribution}")

# %%
# Four random trials, then four guided by the TPE model of the scores.
study = optuna.create_study(
    direction="maximize", sampler=optuna.samplers.TPESampler(n_startup_trials=4, seed=0)
)
search = OptunaSearchCV(
    base,
    space,
    n_trials=8,
    cv=KFold(3, shuffle=True, random_state=0),
    scoring=neg_nll,
    study=study,
    random_state=0,
).fit(X_train, y_train)
print("best parameters:", search.best_params_)

default = clone(base).fit(X_train, y_train)
test_nll = {
    "defaults": -neg_nll(default, X_test, y_test),
    "tuned": -neg_nll(search.best_estimator_, X_test, y_test),
}
print({k: round(v, 3) for k, v in test_nll.items()})

# %%
# The cross-validated NLL of every trial, and the best so far.
cv_nll = -np.array([t.value for t in search.trials_])
fig, (ax, bx) = plt.subplots(1, 2, figsize=(9, 3.6), gridspec_kw={"width_ratios": [2, 1]})
ax.plot(np.arange(1, 9), cv_nll, "o", label="trial")
ax.step(np.arange(1, 9), np.minimum.accumulate(cv_nll), "k-", where="post", label="best so far")
ax.axvline(4.5, color="grey", ls=":", label="random | TPE")
ax.set_xlabel("trial")
ax.set_ylabel("3-fold CV Gaussian NLL (nats)")
ax.legend(fontsize=8)
bx.bar(list(test_nll), list(test_nll.values()), color=["grey", "tab:blue"])
bx.set_ylabel("held-out NLL (nats)")
bx.set_title("test set", fontsize=10)
fig.suptitle("OptunaSearchCV on the predictive likelihood")
fig.tight_layout()
plt.show()
