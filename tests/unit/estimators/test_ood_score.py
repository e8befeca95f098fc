"""The out-of-distribution score ranks shifted inputs above familiar ones."""

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from sk_mtbnn import SparseMultiTaskBNNRegressor


@pytest.fixture(scope="module")
def shifted():
    rng = np.random.RandomState(0)
    W = rng.normal(size=(4, 2))
    X = rng.normal(size=(300, 4))
    y = np.tanh(X @ W) + 0.1 * rng.normal(size=(300, 2))
    X_in = rng.normal(size=(200, 4))
    X_out = rng.normal(size=(200, 4)) + 4.0  # four standard deviations away
    return X, y, X_in, X_out


@pytest.mark.parametrize("n_estimators", [1, 3])
def test_ood_auroc_on_a_clearly_shifted_set(shifted, n_estimators):
    X, y, X_in, X_out = shifted
    est = SparseMultiTaskBNNRegressor(
        hidden_layer_sizes=(32, 32), max_epochs=40, n_estimators=n_estimators, random_state=0
    ).fit(X, y)
    scores = np.concatenate([est.ood_score(X_in), est.ood_score(X_out)])
    labels = np.r_[np.zeros(len(X_in)), np.ones(len(X_out))]
    assert roc_auc_score(labels, scores) >= 0.9
    # About 1 on the training inputs, by construction (median normalisation).
    assert np.median(est.ood_score(X)) == pytest.approx(1.0, rel=0.2)
