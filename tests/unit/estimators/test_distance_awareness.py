"""Uncertainty that grows away from the data (issue: distance-aware epistemic uncertainty)."""

import numpy as np
import pytest

from sk_mtbnn import SparseMultiTaskBNNRegressor


def gap_data(n=100, seed=0):
    rng = np.random.RandomState(seed)
    x = np.concatenate([rng.uniform(-3, -1, n // 2), rng.uniform(1, 3, n // 2)])
    return x[:, None], np.sin(x) + 0.1 * rng.randn(n)


def epistemic_std(est, X):
    return np.sqrt(est.decompose_uncertainty(X)[0])


@pytest.mark.parametrize(
    "options",
    [
        {"residual": True, "spectral_norm": 0.95, "hidden_layer_sizes": (32, 32)},
        {"random_features": 64, "hidden_layer_sizes": (32, 32)},
    ],
)
def test_backbone_options_reach_the_network(options):
    X, y = gap_data(60)
    est = SparseMultiTaskBNNRegressor(max_epochs=5, random_state=0, **options).fit(X, y)
    backbone = est.net_.module_.backbone
    assert est.regime_ == "network"  # these options are trained by mini-batches
    if options.get("residual"):
        assert backbone.residual and backbone.spectral_norm == 0.95
    else:
        assert backbone.random_features is not None
    assert np.isfinite(est.predict(X, return_std=True)[1]).all()


@pytest.mark.slow
def test_epistemic_std_fills_the_gap_and_grows_beyond_the_data():
    # The acceptance test: in the middle of a gap in the inputs the
    # epistemic std is >= 3x its median at the training inputs, and it grows
    # monotonically with distance over [range, 3 x range] (x from 3 to 9). A
    # deep ensemble of mini-batch-trained networks does both: the members agree
    # on the data and disagree away from it.
    X, y = gap_data()
    est = SparseMultiTaskBNNRegressor(regime="network", n_estimators=5, random_state=0)
    est.fit(X, y)
    reference = np.median(epistemic_std(est, X))
    assert epistemic_std(est, np.array([[0.0]]))[0] >= 3 * reference
    beyond = epistemic_std(est, np.linspace(3, 9, 13)[:, None])
    assert np.all(np.diff(beyond) > 0)
