"""Residual, softly spectrally normalised backbone: power iteration and bi-Lipschitz bounds."""

import copy
import pickle

import pytest
import torch
import torch.nn.functional as F

from sk_mtbnn.nn.backbone import ACTIVATIONS, MaskedMLP
from sk_mtbnn.nn.network import MultiTaskNetwork
from sk_mtbnn.nn.spectral import power_iteration, soft_normalise, spectral_norm_estimate


def activation_lipschitz(name):
    """Largest |derivative| of the activation, by finite differences on a wide grid."""
    x = torch.linspace(-20, 20, 400001, dtype=torch.float64)
    y = ACTIVATIONS[name]()(x)
    return float(((y[1:] - y[:-1]) / (x[1:] - x[:-1])).abs().max())


def scaled_backbone(seed, activation="silu", c=0.9, scale=4.0, depth=3, width=12, **kw):
    """A backbone whose raw weights have norms well above ``c`` (so the bound binds)."""
    torch.manual_seed(seed)
    mlp = MaskedMLP(
        3, (width,) * depth, 2, activation, residual=True, spectral_norm=c, **kw
    ).double()
    with torch.no_grad():
        for layer in mlp.layers:
            layer.weight.mul_(scale)
    mlp.refresh_spectral_estimates(200)
    return mlp.eval()


def distance_ratio(mlp, x, x2):
    """``||h(x) - h(x')|| / ||x - x'||`` per row pair (shared pass)."""
    with torch.no_grad():
        return (mlp.shared_forward(x) - mlp.shared_forward(x2)).norm(dim=1) / (x - x2).norm(dim=1)


def jacobian_singular_values(mlp, x):
    """Singular values of d h / d x at each row of ``x`` (shared pass), ``(B, min(H, d))``."""
    jac = torch.stack(
        [torch.autograd.functional.jacobian(mlp.shared_forward, row[None])[0, :, 0] for row in x]
    )
    return torch.linalg.svdvals(jac)


def test_power_iteration_matches_the_exact_spectral_norm():
    gen = torch.Generator().manual_seed(0)
    # A known, well-separated spectrum: sigma_2 / sigma_1 = 0.5, so 30 iterations
    # leave a relative error of order 0.5^60, far below the 1e-10 tolerance.
    u0 = torch.linalg.qr(torch.randn(4, 7, 7, generator=gen, dtype=torch.float64))[0]
    v0 = torch.linalg.qr(torch.randn(4, 5, 5, generator=gen, dtype=torch.float64))[0]
    spectrum = torch.tensor([4.0, 2.0, 1.0, 0.5, 0.1], dtype=torch.float64)
    weight = u0[:, :, :5] * spectrum @ v0.transpose(1, 2)
    start = F.normalize(torch.randn(4, 7, generator=gen, dtype=torch.float64), dim=-1)
    exact = torch.linalg.matrix_norm(weight, ord=2)
    u, v = power_iteration(weight, start, 30)
    torch.testing.assert_close(spectral_norm_estimate(weight, u, v), exact, rtol=1e-10, atol=0)
    # A single iteration underestimates (u^T W v <= sigma_max for unit u, v).
    u, v = power_iteration(weight, start, 1)
    assert bool((spectral_norm_estimate(weight, u, v) <= exact + 1e-12).all())


def test_power_iteration_of_a_zero_matrix_is_zero_not_nan():
    u, v = power_iteration(torch.zeros(1, 3, 2), F.normalize(torch.ones(1, 3), dim=-1), 3)
    assert float(spectral_norm_estimate(torch.zeros(1, 3, 2), u, v)) == 0.0


def test_soft_normalisation_bounds_by_c_and_keeps_small_matrices():
    weight = torch.diag_embed(torch.tensor([[3.0, 1.0], [0.5, 0.2]]))
    sigma = torch.linalg.matrix_norm(weight, ord=2)
    out = soft_normalise(weight, sigma, coefficient=0.9)
    # Exact arithmetic on diagonal matrices: tolerance at float32 round-off.
    torch.testing.assert_close(torch.linalg.matrix_norm(out, ord=2), torch.tensor([0.9, 0.5]))
    torch.testing.assert_close(out[1], weight[1])


@pytest.mark.parametrize("pruned", [False, True])
def test_every_tasks_effective_weights_have_norm_at_most_c(pruned):
    mlp = scaled_backbone(0, c=0.7)
    if pruned:
        gen = torch.Generator().manual_seed(1)
        masks = [
            (torch.bernoulli(torch.full(w.shape, 0.6), generator=gen), b) for w, b in mlp.masks()
        ]
        mlp.set_masks(masks)  # refreshes the estimates (15 iterations)
        mlp.refresh_spectral_estimates(200)
    for weight in mlp.effective_weights():
        norms = torch.linalg.matrix_norm(weight, ord=2)
        # 200 power iterations on 12 x 12 matrices: converged to ~1e-8 relative
        # unless the top two singular values nearly tie; 1e-6 leaves margin.
        assert bool((norms <= 0.7 * (1 + 1e-6)).all()), norms
        # The raw weights were scaled well above c, so the bound is attained.
        torch.testing.assert_close(norms, torch.full_like(norms, 0.7), rtol=1e-6, atol=0)


def test_masked_pass_equals_a_direct_computation_per_task():
    mlp = scaled_backbone(2, c=0.8)
    gen = torch.Generator().manual_seed(3)
    masks = [
        (torch.bernoulli(torch.full(w.shape, 0.7), generator=gen), b.clone())
        for w, b in mlp.masks()
    ]
    masks[0][1][1, :3] = 0
    mlp.set_masks(masks)
    mlp.refresh_spectral_estimates(300)
    x = torch.randn(6, 3, generator=gen, dtype=torch.float64)
    out = mlp(x)
    for t in range(2):
        h = x @ mlp.input_projection.T
        for layer, (w_mask, b_mask) in zip(mlp.layers, masks):
            w = w_mask[t] * layer.weight
            w = w / max(1.0, float(torch.linalg.matrix_norm(w.detach(), ord=2)) / 0.8)
            h = h + F.silu(F.linear(h, w, b_mask[t] * layer.bias))
        # The estimates after 300 iterations agree with the SVD to ~1e-9.
        torch.testing.assert_close(out[t], h, rtol=1e-7, atol=1e-7)


@pytest.mark.parametrize("activation", ["silu", "relu", "tanh"])
def test_lipschitz_upper_bound_holds_and_binds_only_with_normalisation(activation):
    c, depth = 0.9, 3
    bound = (1 + activation_lipschitz(activation) * c) ** depth
    mlp = scaled_backbone(4, activation, c=c, depth=depth)
    gen = torch.Generator().manual_seed(5)
    x = 2 * torch.randn(40, 3, generator=gen, dtype=torch.float64)
    x2 = x + 0.5 * torch.randn(40, 3, generator=gen, dtype=torch.float64)
    ratio = distance_ratio(mlp, x, x2)
    jac_max = jacobian_singular_values(mlp, x)[:, 0]
    # The bound is a theorem given the weights' norms (<= c up to ~1e-8 here):
    # a relative slack of 1e-6 covers the power-iteration estimate.
    assert float(ratio.max()) <= bound * (1 + 1e-6)
    assert float(jac_max.max()) <= bound * (1 + 1e-6)
    # The same raw weights without the normalisation exceed it: the test can fail.
    plain = copy.deepcopy(mlp)
    plain.spectral_norm = None
    assert float(jacobian_singular_values(plain, x)[:, 0].max()) > bound


def test_upper_bound_is_attained_by_aligned_relu_layers():
    # W = 5 I is normalised to c I; with a large positive bias every relu is
    # in its linear part, so each layer maps h to (1 + c) h: the bound exactly.
    c, depth = 0.6, 3
    mlp = MaskedMLP(4, (4,) * depth, 1, "relu", residual=True, spectral_norm=c).double()
    with torch.no_grad():
        mlp.input_projection.copy_(torch.eye(4))
        for layer in mlp.layers:
            layer.weight.copy_(5.0 * torch.eye(4))
            layer.bias.fill_(100.0)
    mlp.refresh_spectral_estimates()
    x = torch.randn(3, 4, dtype=torch.float64)
    jac = jacobian_singular_values(mlp.eval(), x)
    torch.testing.assert_close(jac, torch.full_like(jac, (1 + c) ** depth))


def test_lower_bound_holds_and_plain_mlp_collapses_distances():
    # tanh (Lipschitz 1) and c = 0.5: sigma_min of every layer's Jacobian is at
    # least 1 - 0.5 = 0.5, so the backbone's is at least 0.5^3 = 0.125.
    c, depth = 0.5, 3
    lower = (1 - c) ** depth
    mlp = scaled_backbone(6, "tanh", c=c, depth=depth, scale=6.0)
    gen = torch.Generator().manual_seed(7)
    x = 3 * torch.randn(200, 3, generator=gen, dtype=torch.float64)
    x2 = 3 * torch.randn(200, 3, generator=gen, dtype=torch.float64)
    ratio = distance_ratio(mlp, x, x2)
    assert float(ratio.min()) >= lower * (1 - 1e-6)
    assert float(jacobian_singular_values(mlp, x[:40])[:, -1].min()) >= lower * (1 - 1e-6)
    # A plain tanh MLP of the same widths (weights at the same raw scale)
    # saturates: distant inputs land close together. Measured (seeded): its
    # smallest ratio is 0.058, that of the normalised residual one 1.00.
    torch.manual_seed(6)
    plain = MaskedMLP(3, (12,) * depth, 2, "tanh").double()
    with torch.no_grad():
        for layer in plain.layers:
            layer.weight.mul_(6.0)
    plain_ratio = distance_ratio(plain, x, x2)
    assert float(plain_ratio.min()) < lower < float(ratio.min())


def test_masks_change_only_their_tasks_output_and_apply_masks_changes_nothing():
    torch.manual_seed(8)
    net = MultiTaskNetwork(
        3,
        3,
        hidden_layer_sizes=(8, 8),
        backbone_kwargs={"residual": True, "spectral_norm": 0.9},
    ).double()
    with torch.no_grad():
        for layer in net.backbone.layers:
            layer.weight.mul_(3.0)  # so that the normalisation is active
    net.backbone.refresh_spectral_estimates(100)
    net.eval()
    x = torch.randn(10, 3, dtype=torch.float64)
    before = net.predict(x).mean.detach()
    masks = [(w.clone(), b.clone()) for w, b in net.backbone.masks()]
    for w, b in masks:
        w[1] = torch.bernoulli(torch.full_like(w[1], 0.5))
        b[1] = 0.0
        w[:, 0, 0] = 0.0  # pruned for every task
    net.backbone.set_masks(masks)
    after = net.predict(x).mean.detach()
    assert not torch.allclose(after[1], before[1])
    # Tasks 0 and 2 lost one weight each; everything else of theirs is kept.
    net.backbone.apply_masks_to_weights()
    assert float(net.backbone.layers[0].weight.detach()[0, 0]) == 0.0
    # Zeroing weights that no task uses leaves every task's masked matrix,
    # hence its norm and output, unchanged (up to round-off).
    torch.testing.assert_close(net.predict(x).mean.detach(), after)


def test_training_passes_refine_estimates_eval_does_not_and_backward_works():
    torch.manual_seed(9)
    mlp = MaskedMLP(2, (6, 6), 2, residual=True, spectral_norm=0.5)
    x = torch.randn(5, 2)
    u = mlp.spectral_u_0.clone()
    mlp.eval()(x)
    torch.testing.assert_close(mlp.spectral_u_0, u, rtol=0, atol=0)
    mlp.train()
    with torch.no_grad():
        mlp.layers[0].weight.add_(torch.randn(6, 6))
    # Two passes before one backward: the in-place refinement of the second
    # must not invalidate the graph of the first.
    loss = mlp(x).square().sum() + mlp(x).square().sum()
    loss.backward()
    assert not torch.equal(mlp.spectral_u_0, u)
    assert mlp.layers[0].weight.grad is not None


def test_state_is_saved_with_the_module():
    mlp = MaskedMLP(2, (4, 4), 2, residual=True, spectral_norm=0.9)
    state = mlp.state_dict()
    assert "input_projection" in state and "spectral_u_1" in state
    restored = pickle.loads(pickle.dumps(mlp))
    x = torch.randn(3, 2)
    torch.testing.assert_close(restored.eval()(x), mlp.eval()(x))


def test_input_projection_is_an_isometry():
    mlp = MaskedMLP(3, (10, 10), 1, residual=True)
    p = mlp.input_projection
    # Orthonormal columns from a QR factorisation: P^T P = I to round-off.
    torch.testing.assert_close(p.T @ p, torch.eye(3), rtol=0, atol=1e-5)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"hidden_layer_sizes": (8, 4), "residual": True}, "equal widths"),
        ({"hidden_layer_sizes": (), "residual": True}, "at least one hidden layer"),
        ({"spectral_norm": 0.0}, "spectral_norm"),
        ({"spectral_norm": "1"}, "spectral_norm"),
        ({"dropout": 1.0}, "dropout"),
        ({"n_power_iterations": 0}, "n_power_iterations"),
    ],
)
def test_invalid_options_raise_clear_errors(kwargs, match):
    kwargs = {"hidden_layer_sizes": (4, 4), **kwargs}
    with pytest.raises(ValueError, match=match):
        MaskedMLP(2, n_tasks=2, **kwargs)
