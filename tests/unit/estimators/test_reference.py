"""The random-feature reference of the network regime (above EVIDENCE_MAX_ROWS rows)."""

import numpy as np
import pytest
from scipy import stats

import sk_mtbnn.estimators._evidence_regime as evidence_regime
import sk_mtbnn.estimators._reference as reference_module
from sk_mtbnn import SparseMultiTaskBNNRegressor, load, save
from sk_mtbnn.estimators._ensemble import weighted_mixture
from sk_mtbnn.estimators._reference import REFERENCE_WEIGHTS, stacking_weights


def test_stacking_weights_maximise_the_held_out_density_on_the_grid():
    rng = np.random.RandomState(0)
    n = 200
    own = (np.zeros((n, 2)), np.full((n, 2), 0.5), np.full((n, 2), 0.5))  # N(0, 1)
    other = (np.ones((n, 2)), np.zeros((n, 2)), np.full((n, 2), 0.25))  # N(1, 0.25)
    y = np.column_stack([rng.normal(0, 1, n), rng.normal(1, 0.5, n)])
    y[::7, 0] = np.nan
    got = stacking_weights(y, own, other)
    # Reference: the rule evaluated with scipy's densities -- the largest weight whose
    # mean log density per label is within INSURANCE_NATS of the best weight's.
    for t in range(2):
        cells = ~np.isnan(y[:, t])
        p_own = stats.norm(0, 1).pdf(y[cells, t])
        p_other = stats.norm(1, 0.5).pdf(y[cells, t])
        mean = np.array([np.log((1 - w) * p_own + w * p_other).mean() for w in REFERENCE_WEIGHTS])
        ok = REFERENCE_WEIGHTS[mean >= mean.max() - reference_module.INSURANCE_NATS]
        assert got[t] == ok.max()
    # Data from the first model give the reference a small weight (the insurance
    # the tolerance buys), data from the second all of it.
    assert got[0] <= 0.2 and got[1] == 1.0


def test_a_task_with_few_held_out_labels_gets_the_default_weight():
    y = np.full((20, 2), np.nan)
    y[:9, 1] = 1.0  # 9 labels, all where the reference is right
    own = (np.zeros((20, 2)), np.full((20, 2), 0.01), np.full((20, 2), 0.01))
    right = (np.ones((20, 2)), np.full((20, 2), 0.01), np.full((20, 2), 0.01))
    weights = stacking_weights(y, own, right)
    assert np.all(weights == reference_module.DEFAULT_WEIGHT)  # 0 and 9 labels
    y[9, 1] = 1.0  # the 10th label: the held-out rows decide
    assert stacking_weights(y, own, right)[1] == 1.0


def test_the_weighted_mixture_follows_the_law_of_total_variance():
    rng = np.random.RandomState(1)
    own = (np.array([[0.0, 2.0]]), np.array([[0.3, 0.1]]), np.array([[0.2, 0.4]]))
    other = (np.array([[1.0, -1.0]]), np.array([[0.5, 0.2]]), np.array([[0.1, 0.1]]))
    w = np.array([0.25, 0.6])
    mean, epistemic, aleatoric = weighted_mixture(own, other, w)
    # Monte Carlo of the two-component mixture: pick a component, then draw from it.
    n = 400_000
    pick = rng.uniform(size=(n, 2)) < w
    mu = np.where(pick, other[0], own[0])
    var = np.where(pick, other[1] + other[2], own[1] + own[2])
    draws = mu + np.sqrt(var) * rng.standard_normal((n, 2))
    # Standard errors: sqrt(var / n) for the mean, about var * sqrt(2 / n) for the
    # variance (light-tailed mixture); 5 of them.
    total = epistemic + aleatoric
    np.testing.assert_array_less(np.abs(draws.mean(0) - mean[0]), 5 * np.sqrt(total[0] / n))
    np.testing.assert_allclose(draws.var(0), total[0], rtol=5 * np.sqrt(2 / n))
    np.testing.assert_allclose(aleatoric, (1 - w) * own[2] + w * other[2], rtol=1e-12)


@pytest.fixture(scope="module")
def big():
    """A fit above a lowered EVIDENCE_MAX_ROWS (200): the network regime with a reference."""
    rng = np.random.RandomState(0)
    X = rng.uniform(-2, 2, size=(400, 2))
    y = np.column_stack([np.sin(2 * X[:, 0]), X[:, 1] ** 2]) + 0.1 * rng.randn(400, 2)
    y[::5, 1] = np.nan
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(evidence_regime, "EVIDENCE_MAX_ROWS", 200)
        patch.setattr(reference_module, "EVIDENCE_MAX_ROWS", 200)
        est = SparseMultiTaskBNNRegressor(hidden_layer_sizes=(32, 32), random_state=0).fit(X, y)
    return est, X, y


def test_the_network_regime_gets_a_reference_and_mixes_it_in(big):
    est = big[0]
    assert est.regime_ == "network" and est.reference_ is not None
    assert len(est.reference_) == 2  # one single-task fit per task
    for fit in est.reference_:
        assert fit.regime_ == "evidence" and fit.n_training_steps_ == 0 and fit.n_tasks_ == 1
    w = est.reference_weight_
    assert w.shape == (2,) and np.all(np.isin(w, REFERENCE_WEIGHTS))
    Xq = np.array([[0.0, 0.0], [1.5, -1.0], [6.0, 6.0]])
    own = est._member_moments(Xq)
    parts = [fit._moments(Xq) for fit in est.reference_]
    ref = tuple(np.column_stack([p[k][:, 0] for p in parts]) for k in range(3))
    mean, std = est.predict(Xq, return_std=True)
    expected = weighted_mixture(own, ref, w)
    np.testing.assert_allclose(mean, expected[0], rtol=1e-12)
    np.testing.assert_allclose(std**2, expected[1] + expected[2], rtol=1e-10)
    _, cov = est.predict(Xq, return_cov=True)
    for t in range(2):
        np.testing.assert_allclose(np.diag(cov[..., t]), std[:, t] ** 2, rtol=1e-8)
        assert np.linalg.eigvalsh(cov[..., t]).min() > -1e-10 * std[:, t].max() ** 2


def test_samples_follow_the_mixture(big):
    est, _, _ = big
    Xq = np.array([[0.0, 0.0], [6.0, 6.0]])
    n = 20_000
    draws = est.sample_y(Xq, n_samples=n, random_state=3)
    mean, std = est.predict(Xq, return_std=True)
    # Monte Carlo standard error of a mean: std / sqrt(n); 5 of them.
    assert np.all(np.abs(draws.mean(-1) - mean) < 5 * std / np.sqrt(n))
    # The variance of a two-component mixture: relative standard error at most
    # about sqrt(2 / n) * (kurtosis / 3)^(1/2); 10% is several of them.
    np.testing.assert_allclose(draws.std(-1), std, rtol=0.1)
    # One component per task and sample for all rows: the covariance between a
    # near and a far row is the mixture's (the disagreement term couples them).
    _, cov = est.predict(Xq, return_cov=True)
    for t in range(2):
        empirical = np.cov(draws[:, t, :])
        sd = np.sqrt(np.diag(cov[..., t]))
        se = np.sqrt((np.outer(sd, sd) ** 2 + cov[..., t] ** 2) / n)  # Gaussian approximation
        assert np.all(np.abs(empirical - cov[..., t]) < 6 * se + 0.05 * np.outer(sd, sd))


def test_the_reference_is_saved_and_loaded(big, tmp_path):
    est, X, _ = big
    save(est, tmp_path / "reference.skm")
    restored = load(tmp_path / "reference.skm")
    for a, b in zip(restored.predict(X[:7], return_std=True), est.predict(X[:7], return_std=True)):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("params", [{"regime": "network"}, {"max_epochs": 20}])
def test_no_reference_where_the_network_is_asked_for(big, params, monkeypatch):
    _, X, y = big
    monkeypatch.setattr(evidence_regime, "EVIDENCE_MAX_ROWS", 200)
    monkeypatch.setattr(reference_module, "EVIDENCE_MAX_ROWS", 200)
    est = SparseMultiTaskBNNRegressor(hidden_layer_sizes=(16, 16), random_state=0, **params)
    est.fit(X, y)
    assert est.reference_ is None and np.all(est.reference_weight_ == 0)


def test_small_data_has_no_reference():
    rng = np.random.RandomState(2)
    X = rng.uniform(-2, 2, size=(50, 1))
    est = SparseMultiTaskBNNRegressor(n_estimators=1, random_state=0).fit(X, np.sin(X[:, 0]))
    assert est.regime_ == "evidence" and est.reference_ is None


def test_the_per_task_references_take_n_targets_and_one_label_tasks(big, monkeypatch):
    _, X, y = big
    y = y.copy()
    y[:, 1] = np.nan
    y[0, 1] = 1.0  # one label: in the training or the held-out rows
    monkeypatch.setattr(evidence_regime, "EVIDENCE_MAX_ROWS", 200)
    monkeypatch.setattr(reference_module, "EVIDENCE_MAX_ROWS", 200)
    est = SparseMultiTaskBNNRegressor(hidden_layer_sizes=(16, 16), n_targets=2, random_state=0)
    est.fit(X, y)
    # With this seed task 1's label is a training row: a one-row reference.
    assert len(est.reference_) == 2 and est.reference_[1].n_tasks_ == 1
    assert np.all(np.isfinite(est.predict(X[:5], return_std=True)[1]))
    # Without held-out rows there is nothing to choose the weights on: no reference.
    est = SparseMultiTaskBNNRegressor(
        hidden_layer_sizes=(16, 16), validation_fraction=None, random_state=0
    ).fit(X, y[:, :1])
    assert est.regime_ == "network" and est.reference_ is None


def test_ensemble_members_fit_no_reference(big, monkeypatch):
    _, X, y = big
    monkeypatch.setattr(evidence_regime, "EVIDENCE_MAX_ROWS", 200)
    monkeypatch.setattr(reference_module, "EVIDENCE_MAX_ROWS", 200)
    est = SparseMultiTaskBNNRegressor(hidden_layer_sizes=(16, 16), n_estimators=2, random_state=0)
    est.fit(X, y)
    assert est.reference_ is None
    assert all(m.reference_ is None for m in est.estimators_)


def test_the_known_noise_enters_the_stacking_densities():
    rng = np.random.RandomState(4)
    n = 300
    y = rng.normal(0, 1.0, (n, 1))  # true variance 1 = predictive 0.5 + alpha 0.5
    own = (np.zeros((n, 1)), np.full((n, 1), 0.25), np.full((n, 1), 0.25))
    wide = (np.zeros((n, 1)), np.full((n, 1), 0.5), np.full((n, 1), 0.5))  # variance 1
    # Without alpha the wider model looks right; with it, the network's 0.5 + 0.5 is.
    assert stacking_weights(y, own, wide)[0] > 0.5 > stacking_weights(y, own, wide, alpha=0.5)[0]
