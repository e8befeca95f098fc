"""MC dropout (Gal & Ghahramani, 2016): moments over stochastic passes."""

import itertools

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from sk_mtbnn.nn.blr import with_bias
from sk_mtbnn.nn.heads import Predictive, mixture_moments
from sk_mtbnn.nn.network import MultiTaskNetwork


def dropout_net(p, seed=0, hidden=(5, 3), **kw):
    torch.manual_seed(seed)
    net = MultiTaskNetwork(
        2, 2, hidden_layer_sizes=hidden, backbone_kwargs={"dropout": p, **kw}
    ).double()
    return net.eval()


def test_mixture_moments_follow_the_law_of_total_variance():
    rng = np.random.default_rng(0)
    parts = rng.normal(size=(6, 3, 2, 4))  # (component, moment, T, B)
    parts[:, 1:] = np.abs(parts[:, 1:])
    got = mixture_moments([Predictive(*torch.as_tensor(c)) for c in parts])
    means = parts[:, 0]
    np.testing.assert_allclose(got.mean, means.mean(0))
    np.testing.assert_allclose(got.epistemic, parts[:, 1].mean(0) + means.var(0))
    np.testing.assert_allclose(got.aleatoric, parts[:, 2].mean(0))


def test_moments_match_the_exact_expectation_over_all_dropout_masks():
    # Dropout on the first layer's 5 units (never on the output, the heads'
    # input): phi = silu(W2 (silu(W1 x + b1) * m / (1 - p)) + b2) with m one of
    # the 2^5 masks. Enumerating them gives the exact distribution of the
    # head's mean and epistemic variance over passes.
    p, n_passes = 0.3, 1500
    net = dropout_net(p, seed=1)
    x = torch.randn(7, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    (first, second), head = net.backbone.layers, net.head
    with torch.no_grad():
        hidden = F.silu(F.linear(x, first.weight, first.bias))  # (B, 5)
        cov = head.covariance.matrix()  # (T, D, D)
        means, quads, probs = [], [], []
        for bits in itertools.product([0.0, 1.0], repeat=5):
            m = torch.tensor(bits, dtype=torch.float64)
            out = F.silu(F.linear(hidden * m / (1 - p), second.weight, second.bias))
            phi = with_bias(out)  # (B, D), shared by the tasks
            means.append(phi @ head.mean.T)  # (B, T)
            quads.append(torch.einsum("bd,tde,be->bt", phi, cov, phi))
            probs.append((1 - p) ** m.sum() * p ** (5 - m.sum()))
        means, quads = torch.stack(means), torch.stack(quads)  # (2^5, B, T)
        probs = torch.stack(probs)[:, None, None]
        exact_mean = (probs * means).sum(0)
        var = (probs * (means - exact_mean) ** 2).sum(0)
        fourth = (probs * (means - exact_mean) ** 4).sum(0)
        exact_quad = (probs * quads).sum(0)
        quad_var = (probs * (quads - exact_quad) ** 2).sum(0)
        pred = net.predict_mc(x, n_passes, torch.Generator().manual_seed(3))
    # Monte Carlo error of each estimator from its exact variance; 5 standard
    # errors: a chance failure of the 14 entries below 1e-5 (and it is seeded).
    se_mean = torch.sqrt(var / n_passes)
    se_epistemic = torch.sqrt(quad_var / n_passes) + torch.sqrt((fourth - var**2) / n_passes)
    assert bool(((pred.mean.T - exact_mean).abs() <= 5 * se_mean).all())
    assert bool(((pred.epistemic.T - exact_quad - var).abs() <= 5 * se_epistemic).all())
    # The noise does not depend on the features: its mean over passes is exact.
    torch.testing.assert_close(pred.aleatoric, head.noise_var()[:, None].expand(2, 7))
    # And the spread over passes is really there (not a deterministic pass).
    assert bool((var > 1e-3 * exact_quad.abs()).any())


@pytest.mark.parametrize("kw", [{}, {"residual": True, "spectral_norm": 0.9, "hidden": (4, 4)}])
def test_zero_rate_reduces_to_the_deterministic_network(kw):
    net = dropout_net(0.0, **kw)
    x = torch.randn(6, 2, dtype=torch.float64)
    with torch.no_grad():
        mc = net.predict_mc(x, 5, torch.Generator().manual_seed(0))
        det = net.predict(x)
    for a, b in zip(mc, det):
        torch.testing.assert_close(a, b)


def test_seeded_passes_are_deterministic_and_independent_of_the_other_rows():
    net = dropout_net(0.4, residual=True, spectral_norm=0.9, hidden=(4, 4))
    x = torch.randn(6, 2, dtype=torch.float64)
    with torch.no_grad():
        a = net.predict_mc(x, 20, torch.Generator().manual_seed(5))
        b = net.predict_mc(x, 20, torch.Generator().manual_seed(5))
        c = net.predict_mc(x, 20, torch.Generator().manual_seed(6))
        row = net.predict_mc(x[2:3], 20, torch.Generator().manual_seed(5))
    for u, v in zip(a, b):
        torch.testing.assert_close(u, v, rtol=0, atol=0)
    assert not torch.equal(a.mean, c.mean)
    for u, v in zip(a, row):
        torch.testing.assert_close(u[:, 2:3], v)


def test_pruned_pass_draws_the_same_dropout_masks_as_the_shared_pass():
    net = dropout_net(0.5)
    with torch.no_grad():
        net.backbone.layers[0].weight[0, 0] = 0.0
    x = torch.randn(4, 2, dtype=torch.float64)
    with torch.no_grad():
        dense = net.predict_mc(x, 10, torch.Generator().manual_seed(1))
        masks = [(w.clone(), b.clone()) for w, b in net.backbone.masks()]
        masks[0][0][:, 0, 0] = 0.0  # masks a weight that is already zero
        net.backbone.set_masks(masks)
        assert not net.backbone.is_dense()
        pruned = net.predict_mc(x, 10, torch.Generator().manual_seed(1))
    for u, v in zip(dense, pruned):
        torch.testing.assert_close(u, v)


def test_dropout_is_active_in_training_and_off_in_eval():
    net = dropout_net(0.5)
    x = torch.randn(8, 2, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(net(x), net(x), rtol=0, atol=0)
        net.train()
        assert not torch.equal(net(x), net(x))


def test_dropout_needs_a_layer_before_the_output():
    with pytest.raises(ValueError, match="two hidden layers"):
        MultiTaskNetwork(2, 1, hidden_layer_sizes=(8,), backbone_kwargs={"dropout": 0.1})


def test_invalid_number_of_passes_raises():
    with pytest.raises(ValueError, match="n_passes"):
        dropout_net(0.1).predict_mc(torch.zeros(1, 2, dtype=torch.float64), 0)
