"""The small-data regime: random-feature layout, evidence choices, full-batch training."""

import numpy as np
import pytest
import torch

from sk_mtbnn._training.full_batch import (
    Adam,
    condition_head,
    fit_small_data,
    train_features,
)
from sk_mtbnn._training.random_features import (
    BUMP_GAIN,
    LENGTHSCALES,
    check_random_feature_network,
    choose_lengthscale,
    draw_layout,
    features64,
    set_random_features,
)
from sk_mtbnn.nn.blr import with_bias
from sk_mtbnn.nn.heads import GaussianVBLLHead
from sk_mtbnn.nn.network import MultiTaskNetwork


def network(n_features=1, n_tasks=1, **kwargs):
    kwargs.setdefault("hidden_layer_sizes", (32, 32))
    return MultiTaskNetwork(n_features, n_tasks, **kwargs)


def test_adam_matches_torch_adam():
    gen = torch.Generator().manual_seed(0)
    A = torch.randn(5, 5, generator=gen, dtype=torch.float64)
    A = A @ A.T + torch.eye(5, dtype=torch.float64)
    mine = torch.randn(5, generator=gen, dtype=torch.float64).requires_grad_()
    ref = mine.detach().clone().requires_grad_()
    ours, theirs = Adam([mine], lr=0.05), torch.optim.Adam([ref], lr=0.05)
    for _ in range(25):
        for p in (mine, ref):
            (p @ A @ p).backward()
        ours.step()
        theirs.step()
        theirs.zero_grad()
    # Same update rule in float64; only the order of floating-point operations differs.
    torch.testing.assert_close(mine, ref, rtol=1e-10, atol=1e-12)


def test_condition_head_is_the_exact_posterior_with_per_row_noise():
    gen = torch.Generator().manual_seed(1)
    phi = torch.randn(2, 30, 3, generator=gen, dtype=torch.float64)
    y = torch.randn(30, 2, generator=gen, dtype=torch.float64)
    y[:5, 1] = float("nan")
    alpha = torch.rand(30, generator=gen, dtype=torch.float64)
    prior_var = torch.tensor([0.5, 2.0], dtype=torch.float64)
    noise_var = torch.tensor([0.1, 0.3], dtype=torch.float64)
    head = GaussianVBLLHead(2, 3, covariance="dense").double()
    condition_head(head, phi, y, prior_var, noise_var, alpha)
    query = torch.randn(2, 7, 3, generator=gen, dtype=torch.float64)
    with torch.no_grad():
        pred = head.predict(query)
    for t, rows in enumerate([slice(None), slice(5, None)]):
        P = with_bias(phi[t][rows]).numpy()
        W = np.diag(1.0 / (noise_var[t].item() + alpha[rows].numpy()))
        cov = np.linalg.inv(np.eye(4) / prior_var[t].item() + P.T @ W @ P)
        mean = cov @ P.T @ W @ y[rows, t].numpy()
        Q = with_bias(query[t]).numpy()
        # Float64 throughout; the dense covariance goes through a Cholesky factor.
        np.testing.assert_allclose(pred.mean[t].numpy(), Q @ mean, rtol=1e-9)
        np.testing.assert_allclose(pred.epistemic[t].numpy(), np.sum(Q @ cov * Q, 1), rtol=1e-8)
        # As in GaussianProcessRegressor, alpha belongs to the training rows only.
        np.testing.assert_allclose(pred.aleatoric[t].numpy(), noise_var[t].item(), rtol=1e-12)


def test_condition_head_needs_a_gaussian_head():
    net = network(head="student_t")
    phi = torch.zeros(1, 3, 32)
    with pytest.raises(ValueError, match="Gaussian head"):
        condition_head(net.head, phi, torch.zeros(3, 1), torch.ones(1), torch.ones(1))


def bumps(net, x):
    """The layer-2 output (the bumps) of a 1-D network at inputs ``x``."""
    return features64(net, torch.as_tensor(x, dtype=torch.float64)[:, None])[0]


def test_relu_bumps_are_triangles_of_half_width_m_times_the_lengthscale():
    net = network(activation="relu", hidden_layer_sizes=(16, 16)).double()
    X = torch.linspace(-1, 1, 10)[:, None]
    layout = draw_layout(net, X, torch.Generator().manual_seed(0))
    set_random_features(net, layout, 0.3)
    x = np.linspace(-3, 3, 101)
    got = bumps(net, x).numpy()
    n_pairs = len(layout.offsets)
    for k in range(16):
        p, m = k % n_pairs, 1 + k // n_pairs
        u = float(layout.directions[p, 0]) * x - float(layout.offsets[p])
        # relu(s u) + relu(-s u) = s |u| exactly: a triangle of height G.
        expected = BUMP_GAIN * np.maximum(1.0 - np.abs(u) / (m * 0.3), 0.0)
        np.testing.assert_allclose(got[:, k], expected, atol=1e-12)


def test_bumps_scale_with_the_lengthscale():
    net = network().double()  # float64 weights: the identity below is exact
    X = torch.linspace(-1, 1, 10)[:, None]
    layout = draw_layout(net, X, torch.Generator().manual_seed(1))
    p = 0  # the unit of pair 0 with the narrowest bump
    w, t = float(layout.directions[p, 0]), float(layout.offsets[p])
    x = np.linspace(-0.5, 0.5, 11)
    set_random_features(net, layout, 0.2)
    narrow = bumps(net, x)[:, p]
    set_random_features(net, layout, 0.4)
    # A bump depends on (w x - t) / lengthscale only: doubling the lengthscale
    # is stretching the bump twofold about its offset.
    stretched = bumps(net, (t + 2 * (w * x - t)) / w)[:, p]
    torch.testing.assert_close(narrow, stretched, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"activation": "tanh"}, "ramp-like"),
        ({"hidden_layer_sizes": (32,)}, "two hidden layers"),
        ({"branch_layer_sizes": (8,)}, "branch"),
        ({"backbone_kwargs": {"residual": True}}, "residual"),
    ],
)
def test_random_features_need_a_plain_ramp_network(kwargs, message):
    with pytest.raises(ValueError, match=message):
        check_random_feature_network(network(**kwargs))


def test_choose_lengthscale_recovers_the_generating_lengthscale():
    gen = torch.Generator().manual_seed(2)
    X = torch.rand(300, 1, generator=gen) * 4 - 2
    net = network(hidden_layer_sizes=(64, 64))
    # Targets drawn from the model itself at the grid's 6th lengthscale.
    true_scale = LENGTHSCALES[6]
    layout = draw_layout(net, X, torch.Generator().manual_seed(3))
    set_random_features(net, layout, true_scale)
    phi = with_bias(features64(net, X))[0]
    w = torch.randn(phi.shape[1], generator=gen, dtype=torch.float64) * 0.3
    Y = (phi @ w + 0.1 * torch.randn(300, generator=gen, dtype=torch.float64))[:, None]
    choice = choose_lengthscale(
        network(hidden_layer_sizes=(64, 64)),
        X,
        Y.float(),
        generator=torch.Generator().manual_seed(3),
    )
    # 300 rows pin the lengthscale to within one grid step (a factor 1.39).
    assert abs(LENGTHSCALES.index(choice.lengthscale) - 6) <= 1
    # Noise variance 0.01 from 300 residuals: relative standard error ~8%.
    np.testing.assert_allclose(float(choice.evidence.noise_var[0]), 0.01, rtol=0.3)


def smooth_problem(n=30, seed=0):
    rng = np.random.RandomState(seed)
    x = rng.uniform(0, 5, size=(n, 1))
    f = lambda z: np.sin(2 * z[:, 0]) + 0.3 * z[:, 0]  # noqa: E731
    y = f(x) + 0.2 * rng.randn(n)
    grid = np.linspace(0, 5, 200)[:, None]
    return x, y, grid, f(grid)


def standardised_tensors(x, y):
    """``x`` and ``y`` standardised, as float32 tensors ``(N, 1)`` each."""
    X = torch.as_tensor((x - x.mean()) / x.std(), dtype=torch.float32)
    return X, torch.as_tensor(((y - y.mean()) / y.std())[:, None], dtype=torch.float32)


def standardised_fit(x, y, **kwargs):
    xm, xs, ym, ys = x.mean(0), x.std(0), y.mean(), y.std()
    net = network(hidden_layer_sizes=(128, 128))
    fit = fit_small_data(net, (x - xm) / xs, ((y - ym) / ys)[:, None], **kwargs)

    def predict(q):
        with torch.no_grad():
            pred = net.predict(torch.as_tensor((q - xm) / xs, dtype=torch.float32))
        std = torch.sqrt(pred.epistemic + pred.aleatoric)[0].numpy()
        return pred.mean[0].numpy() * ys + ym, std * ys

    return fit, predict


def test_fit_small_data_is_as_good_as_a_gp_on_a_smooth_function():
    from sklearn.gaussian_process import GaussianProcessRegressor
    from sklearn.gaussian_process.kernels import RBF, ConstantKernel, WhiteKernel

    x, y, grid, truth = smooth_problem()
    kernel = ConstantKernel() * RBF() + WhiteKernel(0.1)
    gp = GaussianProcessRegressor(kernel, normalize_y=True, random_state=0).fit(x, y)
    gp_rmse = np.sqrt(np.mean((gp.predict(grid) - truth) ** 2))
    fit, predict = standardised_fit(x, y)
    mean, std = predict(grid)
    assert fit.n_steps == 0  # 30 rows: random features, no training
    # The targets: RMSE within 1.5x the GP's, 90% of the truth in the band.
    assert np.sqrt(np.mean((mean - truth) ** 2)) <= 1.5 * gp_rmse
    assert np.mean(np.abs(mean - truth) <= 1.96 * std) >= 0.9
    # The noise (std 0.2, standardised by y's std) is found to within 50% from 30 rows.
    np.testing.assert_allclose(np.sqrt(float(fit.noise_var[0])) * y.std(), 0.2, rtol=0.5)


def test_fit_small_data_is_reproducible():
    x, y, grid, _ = smooth_problem(n=15, seed=1)
    first = standardised_fit(x, y, random_state=3)[1](grid)
    second = standardised_fit(x, y, random_state=3)[1](grid)
    np.testing.assert_array_equal(first[0], second[0])
    np.testing.assert_array_equal(first[1], second[1])


def test_fit_small_data_with_missing_labels_and_per_row_alpha():
    rng = np.random.RandomState(4)
    X = rng.uniform(-1.5, 1.5, size=(25, 2)).astype(np.float32)
    Y = np.column_stack([np.sin(2 * X[:, 0]), X[:, 1] ** 2]).astype(np.float32)
    Y[::3, 1] = np.nan
    alpha = np.column_stack([np.linspace(0.005, 0.02, 25), np.full(25, 0.01)])  # varies by row
    net = network(2, 2)
    fit = fit_small_data(net, X, Y, alpha=alpha)
    for values in (fit.prior_var, fit.noise_var, fit.criterion):
        assert values.shape == (2,) and torch.isfinite(values).all()
    with torch.no_grad():
        pred = net.predict(torch.as_tensor(X))
    assert torch.isfinite(pred.mean).all() and (pred.epistemic >= 0).all()
    with pytest.raises(ValueError, match="same alpha on every row"):
        fit_small_data(network(2, 2), X, Y, alpha=alpha, train=True)


def test_training_keeps_the_random_features_unless_held_out_rows_prefer_the_trained():
    X, Y = standardised_tensors(*smooth_problem(n=40, seed=5)[:2])
    net = network(hidden_layer_sizes=(64, 64))
    choose_lengthscale(net, X, Y)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    outcome = train_features(net, X, Y, max_steps=40, check_every=10, patience=2)
    assert outcome.best_score >= outcome.start_score
    changed = any(not torch.equal(before[k], v) for k, v in net.state_dict().items())
    assert changed == (outcome.n_steps > 0)


@pytest.mark.slow
def test_training_improves_held_out_fit_on_eight_inputs():
    from sk_mtbnn.datasets import make_multitask_regression

    X, y = make_multitask_regression(1000, n_features=8, n_tasks=2, noise=0.1, random_state=0)
    X = (X - X.mean(0)) / X.std(0)
    y = (y - y.mean(0)) / y.std(0)
    net = network(8, 2, hidden_layer_sizes=(128, 128))
    choose_lengthscale(net, torch.as_tensor(X, dtype=torch.float32), torch.as_tensor(y))
    outcome = train_features(
        net, torch.as_tensor(X, dtype=torch.float32), torch.as_tensor(y, dtype=torch.float32)
    )
    # Ridge bumps along 64 random directions fit 8 inputs poorly; trained
    # features raise the held-out log-likelihood of 200 rows by many nats.
    assert outcome.n_steps > 0
    assert outcome.best_score > outcome.start_score + 20


def test_training_that_diverges_keeps_its_best_checkpoint():
    # A step size of 1e3 blows the features up within a few steps (their
    # posterior can no longer be formed); training must stop there and keep
    # the last good checkpoint instead of raising.
    X, Y = standardised_tensors(*smooth_problem(n=60, seed=2)[:2])
    net = network(hidden_layer_sizes=(32, 32))
    choose_lengthscale(net, X, Y)
    outcome = train_features(net, X, Y, max_steps=200, check_every=1, learning_rate=1e3)
    assert outcome.n_steps < 200
    phi = features64(net, X.double())
    assert torch.isfinite(phi).all()
