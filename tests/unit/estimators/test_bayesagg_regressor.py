"""BayesAggMTLRegressor: the GP contract, closed-form heads, BayesAgg weights and errors."""

import numpy as np
import pytest
import torch
from sklearn.gaussian_process import GaussianProcessRegressor

from sk_mtbnn import BayesAggMTLRegressor, SparseMultiTaskBNNRegressor
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


# ------------------------------------------------- before fit: the prior (as GPR)
def test_regressor_predicts_from_its_prior_before_fit():
    # The prior of f(x) = phi(x)^T w, w ~ N(0, gamma I), phi the initial
    # backbone's output with the bias input: mean 0, variance gamma ||phi||^2.
    X = np.linspace(0, 1, 7)[:, None]
    est = reg(gamma=0.5, n_targets=2)
    mean, std = est.predict(X, return_std=True)
    assert mean.shape == std.shape == (7, 2) and np.all(mean == 0)
    module = est._prior_model(1).module
    with torch.no_grad():
        phi = with_bias(module(torch.as_tensor(X)))  # (T, m, D)
    np.testing.assert_allclose(std**2, 0.5 * phi.square().sum(-1).T.numpy())
    assert est.sample_y(X, 3).shape == (7, 2, 3)
    assert reg().predict(X).shape == (7,)


def test_regressor_n_targets_must_match_y(multitask_data):
    with pytest.raises(ValueError, match="different from the parameter `n_targets`"):
        reg(n_targets=3).fit(*multitask_data)
    assert reg(n_targets=2, max_epochs=2).fit(*multitask_data).n_tasks_ == 2


def test_an_integer_is_one_hidden_layer(multitask_data):
    est = reg(hidden_layer_sizes=8, max_epochs=2).fit(*multitask_data)
    assert est.net_.module_.backbone.out_features == 8
