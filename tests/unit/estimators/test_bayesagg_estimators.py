"""BayesAggMTLRegressor and BayesAggMTLClassifier."""

import math

import numpy as np
import pytest
import torch
from scipy.special import expit
from sklearn.gaussian_process import GaussianProcessRegressor

from sk_mtbnn import BayesAggMTLClassifier, BayesAggMTLRegressor, SparseMultiTaskBNNRegressor
from sk_mtbnn.aggregators import BayesAgg
from sk_mtbnn.nn.blr import with_bias


def reg(**kw):
    params = {
        "hidden_layer_sizes": (16,),
        "max_epochs": 40,
        "validation_fraction": None,
        "random_state": 0,
    }
    params.update(kw)
    return BayesAggMTLRegressor(**params)


def clf(**kw):
    params = {
        "hidden_layer_sizes": (16,),
        "max_epochs": 150,
        "validation_fraction": None,
        "n_mc_samples": 16,
        "random_state": 0,
    }
    params.update(kw)
    return BayesAggMTLClassifier(**params)


@pytest.fixture
def class_data():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(240, 3))
    y = np.empty((240, 2), dtype=object)
    y[:, 0] = np.where(X[:, 0] + 0.3 * X[:, 1] > 0, "hot", "cold")
    y[:, 1] = np.digitize(X[:, 2], [-0.5, 0.5])
    y[::5, 1] = np.nan
    return X, y


# ---------------------------------------------------------------- regressor
@pytest.mark.parametrize("y_shape", [(40,), (40, 3)])
def test_regressor_shapes_match_gaussian_process_regressor(y_shape):
    rng = np.random.RandomState(0)
    X, y = rng.uniform(size=(40, 2)), rng.standard_normal(y_shape)
    gp = GaussianProcessRegressor(optimizer=None).fit(X, y)
    ours = reg().fit(X, y)
    for kwargs in ({}, {"return_std": True}, {"return_cov": True}):
        a, b = gp.predict(X[:5], **kwargs), ours.predict(X[:5], **kwargs)
        a, b = (a if isinstance(a, tuple) else (a,)), (b if isinstance(b, tuple) else (b,))
        assert [u.shape for u in a] == [v.shape for v in b]
    assert ours.sample_y(X[:5], 3).shape == gp.sample_y(X[:5], 3).shape


def test_regressor_heads_are_the_closed_form_posterior(multitask_data):
    # Heads are never trained by gradient: after fit, each is exact Bayesian
    # linear regression on the final features of its labelled rows, with prior
    # N(0, gamma I) and the fitted noise.
    X, y = multitask_data
    est = reg(gamma=0.5).fit(X, y)
    module = est.net_.module_.double()
    Xs = (X - est._x_mean) / est._x_scale
    Ys = (y - est._y_mean) / est._y_scale
    with torch.no_grad():
        phi = module(torch.as_tensor(Xs))[0].numpy()
    for t in range(2):
        rows = ~np.isnan(Ys[:, t])
        P = with_bias(torch.as_tensor(phi[rows])).numpy()
        noise = (est.noise_std_[t] / est._y_scale[t]) ** 2
        prec = np.eye(P.shape[1]) / 0.5 + P.T @ P / noise
        m = np.linalg.solve(prec, P.T @ Ys[rows, t] / noise)
        # float32 head storage: 1e-4 relative.
        np.testing.assert_allclose(module.head.mean[t].numpy(), m, rtol=1e-4, atol=1e-5)
    assert not any(p.requires_grad for p in est.net_.module_.head.parameters())


def test_regressor_records_task_weights_after_the_warm_up(multitask_data):
    est = reg(ls_epochs=10).fit(*multitask_data)
    assert est.task_weights_.shape == (30, 2)
    assert np.all((est.task_weights_ > 0) & (est.task_weights_ <= 1))
    assert reg(ls_epochs=40).fit(*multitask_data).task_weights_.shape == (0, 2)


def test_regressor_estimates_the_noise_with_tau_auto():
    rng = np.random.RandomState(0)
    X = rng.uniform(-2, 2, size=(600, 2))
    y = np.sin(2 * X[:, 0]) + 0.1 * rng.standard_normal(600)
    est = reg(hidden_layer_sizes=(32, 32), max_epochs=150, validation_fraction=0.2).fit(X, y)
    # The predictive noise is chosen on held-out rows after training; the
    # training noise (tau='auto') is the epoch's residual variance.
    assert est.noise_std_[0] == pytest.approx(0.1, rel=0.3)
    assert float(est.net_.noise_var_[0]) < 0.1  # in standardised units, far below tau=1
    assert est.score(X, y) > 0.9


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"tau": -1.0}, r"'tau' parameter of BayesAggMTLRegressor must be .* \(0.0, inf\)"),
        ({"s": 0.0}, r"'s' parameter .* must be a float in the range \(0.0, 1.0\]"),
        ({"ls_epochs": -1}, r"'ls_epochs' parameter .* must be an int in the range \[0, inf\)"),
        ({"gamma": 0}, "'gamma' parameter .* must be"),
    ],
)
def test_regressor_parameter_errors(multitask_data, params, match):
    with pytest.raises(ValueError, match=match):
        reg(**params).fit(*multitask_data)


def test_sparse_regressor_bayesagg_records_weights_and_needs_shared_heads(multitask_data):
    est = SparseMultiTaskBNNRegressor(
        hidden_layer_sizes=(16,),
        max_epochs=30,
        validation_fraction=None,
        random_state=0,
        aggregator=BayesAgg(ls_epochs=5),
    ).fit(*multitask_data)
    assert est.task_weights_.shape == (25, 2)
    for bad in ({"branch_layer_sizes": (4,)}, {"head": "student_t"}, {"task_inputs": {1: [1]}}):
        with pytest.raises(ValueError, match="aggregator='bayesagg' needs the task heads"):
            SparseMultiTaskBNNRegressor(aggregator="bayesagg", max_epochs=2, **bad).fit(
                *multitask_data
            )


# --------------------------------------------------------------- classifier
def test_classifier_keeps_label_types_and_shapes(class_data):
    X, y = class_data
    model = clf().fit(X, y)
    assert model.classes_[0].tolist() == ["cold", "hot"]
    assert model.classes_[1].tolist() == [0, 1, 2]
    pred = model.predict(X[:6])
    assert pred.shape == (6, 2) and set(pred[:, 0]) <= {"cold", "hot"}
    assert set(pred[:, 1]) <= {0, 1, 2}
    proba = model.predict_proba(X[:6])
    assert isinstance(proba, list) and [p.shape for p in proba] == [(6, 2), (6, 3)]
    for p in proba:
        np.testing.assert_allclose(p.sum(1), 1.0)
    ent = model.predictive_entropy(X[:6])
    assert ent.shape == (6, 2)
    assert np.all(ent[:, 0] <= math.log(2) + 1e-12) and np.all(ent[:, 1] <= math.log(3) + 1e-12)
    assert model.score(X, y) > 0.7


def test_single_task_classifier_returns_arrays(class_data):
    X, y = class_data
    model = clf().fit(X, y[:, 0])
    assert model.classes_.tolist() == ["cold", "hot"]
    assert model.predict_proba(X[:4]).shape == (4, 2)
    assert model.predict(X[:4]).shape == (4,)
    assert model.predictive_entropy(X[:4]).shape == (4,)


def test_custom_missing_label(class_data):
    X, y = class_data
    y2 = np.where(y[:, 1] == y[:, 1], y[:, 1], -1).astype(int)  # NaN -> -1
    model = clf(missing_label=-1).fit(X, y2)
    assert model.classes_.tolist() == [0, 1, 2]


@pytest.mark.parametrize(
    ("y", "match"),
    [
        (np.full(20, 3), "has a single class"),
        (np.full(20, np.nan), "has no label"),
        (np.linspace(0, 1, 20), "Unknown label type"),
        (None, "requires y to be passed"),
    ],
)
def test_classifier_bad_targets(y, match):
    X = np.random.RandomState(0).normal(size=(20, 2))
    with pytest.raises(ValueError, match=match):
        clf().fit(X, y)


def test_classifier_bad_inputs():
    with pytest.raises(ValueError, match="NaN"):
        clf().fit([[np.nan, 0.0], [1.0, 1.0], [0.0, 1.0]], [0, 1, 0])
    with pytest.raises(ValueError, match="minimum of 2"):
        clf().fit([[0.0, 1.0]], [1])
    with pytest.raises(
        ValueError, match=r"'s' parameter .* must be a float in the range \(0.0, 1.0\]"
    ):
        clf(s=2.0).fit([[0.0], [1.0], [2.0]], [0, 1, 0])


def test_laplace_covariance_is_ggn_plus_prior_from_autograd(class_data):
    # The Laplace precision is the Hessian of the summed NLL (which equals the
    # GGN for a linear head) plus I / gamma, at the trained weights.
    X, y = class_data
    model = clf(gamma=2.0).fit(X, y)
    module = model.net_.module_.double()
    Xs = torch.as_tensor((X - model._x_mean) / model._x_scale)
    with torch.no_grad():
        h = module.backbone.shared_forward(Xs)
    labels = torch.as_tensor(
        np.searchsorted(model._classes[1], y[::1, 1][y[:, 1] == y[:, 1]].astype(int))
    )
    rows = torch.as_tensor(y[:, 1] == y[:, 1])
    W = module.head_weights(1).detach()

    def nll(w):
        logits = with_bias(h[rows]) @ w.reshape(W.shape).T
        return torch.nn.functional.cross_entropy(logits, labels, reduction="sum")

    hessian = torch.autograd.functional.hessian(nll, W.reshape(-1))
    expected = torch.linalg.inv(hessian + torch.eye(len(hessian), dtype=torch.float64) / 2.0)
    torch.testing.assert_close(model._head_covariances[1], expected, rtol=1e-5, atol=1e-8)


def test_probit_probabilities_match_the_monte_carlo_posterior_predictive(class_data):
    X, y = class_data
    model = clf().fit(X, y[:, 0])
    module = model.net_.module_.double()
    Xs = torch.as_tensor((X[:20] - model._x_mean) / model._x_scale)
    with torch.no_grad():
        hb = with_bias(module.backbone.shared_forward(Xs)).numpy()
    W = module.head_weights(0).detach().numpy()[0]
    cov = model._head_covariances[0].numpy()
    draws = np.random.RandomState(0).multivariate_normal(W, cov, size=200_000)
    mc = expit(hb @ draws.T).mean(1)
    # The probit approximation of E[sigmoid(z)] is accurate to about 0.02
    # (MacKay 1992); Monte Carlo error with 2e5 draws is ~1e-3.
    np.testing.assert_allclose(model.predict_proba(X[:20])[:, 1], mc, atol=0.02)


@pytest.mark.parametrize("aggregator", ["mean", "pcgrad", "bayesagg"])
def test_classifier_aggregators_train(class_data, aggregator):
    X, y = class_data
    model = clf(aggregator=aggregator, max_epochs=80).fit(X, y)
    assert model.score(X, y) > 0.75
    assert hasattr(model, "task_weights_") == (aggregator == "bayesagg")


def test_classifier_torchjd_aggregator(class_data):
    torchjd = pytest.importorskip("torchjd")
    X, y = class_data
    model = clf(aggregator=torchjd.aggregation.IMTLG(), max_epochs=80).fit(X, y)
    assert model.score(X, y) > 0.75


def test_classifier_does_not_mutate_inputs(class_data):
    X, y = class_data
    X0, y0 = X.copy(), y.copy()
    clf(max_epochs=3).fit(X, y).score(X, y)
    np.testing.assert_array_equal(X, X0)
    assert all((a == b) or (a != a and b != b) for a, b in zip(y.ravel(), y0.ravel()))
