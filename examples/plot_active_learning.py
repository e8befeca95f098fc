"""
Active learning with modAL: cluster-EGL against random sampling
===============================================================

The two-fidelity Forrester function as two tasks: the cheap low fidelity is
known on the whole pool, the expensive high fidelity is bought a few points at
a time. :class:`~sk_mtbnn.active_learning.ClusterEGLSampling` plugs into
modAL's ``ActiveLearner`` as its query strategy.
"""

import matplotlib.pyplot as plt
import numpy as np
from modAL.models import ActiveLearner

from sk_mtbnn import SparseMultiTaskBNNRegressor
from sk_mtbnn.active_learning import ClusterEGLSampling, random_sampling
from sk_mtbnn.datasets import forrester

rng = np.random.RandomState(0)
X_pool = rng.uniform(0, 1, size=(300, 1))
high, low = forrester(X_pool, "high"), forrester(X_pool, "low")
X_test = np.linspace(0, 1, 200)[:, None]
y_test = forrester(X_test, "high")


def run(strategy, rounds=5, batch=2):
    # Start: the low fidelity on every pool point, the high fidelity on 4.
    start = rng.choice(300, 4, replace=False)
    y_known = np.column_stack([np.full(300, np.nan), low])
    y_known[start, 0] = high[start]
    learner = ActiveLearner(
        SparseMultiTaskBNNRegressor(hidden_layer_sizes=(32, 32), max_epochs=150, random_state=0),
        query_strategy=strategy,
        X_training=X_pool,
        y_training=y_known,
        force_all_finite=False,
    )
    errors = []
    for _ in range(rounds + 1):
        pred = learner.estimator.predict(X_test)[:, 0]
        errors.append(np.sqrt(np.mean((pred - y_test) ** 2)))
        idx = learner.query(X_pool, n_instances=batch)[0]
        learner.teach(X_pool[idx], np.column_stack([high[idx], low[idx]]))
    return errors, learner


# %%
egl_errors, egl_learner = run(ClusterEGLSampling(task=0, random_state=0))
random_errors, _ = run(
    lambda learner, X, n_instances=1: random_sampling(
        learner, X, n_instances, random_state=len(learner.X_training)
    )
)

fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(10, 4))
n_labels = 4 + 2 * np.arange(len(egl_errors))
ax0.plot(n_labels, egl_errors, "o-", label="cluster-EGL")
ax0.plot(n_labels, random_errors, "s-", label="random")
ax0.set_xlabel("high-fidelity labels")
ax0.set_ylabel("test RMSE of the high fidelity")
ax0.legend()
mean, std = egl_learner.estimator.predict(X_test, return_std=True)
ax1.fill_between(
    X_test[:, 0], mean[:, 0] - 1.96 * std[:, 0], mean[:, 0] + 1.96 * std[:, 0], alpha=0.3
)
ax1.plot(X_test, mean[:, 0], label="prediction")
ax1.plot(X_test, y_test, "k:", label="high fidelity")
labelled = ~np.isnan(egl_learner.y_training[:, 0])
ax1.plot(
    egl_learner.X_training[labelled], egl_learner.y_training[labelled, 0], "ro", label="queried"
)
ax1.set_title("After cluster-EGL")
ax1.legend(fontsize=8)
fig.tight_layout()
plt.show()
