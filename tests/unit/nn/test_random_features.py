"""Random Fourier features (Rahimi & Recht, 2007) as the backbone's output."""

import numpy as np
import pytest
import torch

from sk_mtbnn.nn.backbone import MaskedMLP
from sk_mtbnn.nn.network import MultiTaskNetwork
from sk_mtbnn.nn.random_features import RandomFourierFeatures


def test_feature_inner_products_approximate_the_rbf_kernel():
    torch.manual_seed(0)
    m, length_scale = 20000, 1.5
    rff = RandomFourierFeatures(3, m, length_scale).double()
    h = torch.randn(6, 3, dtype=torch.float64)
    phi = rff(h)
    approx = phi @ phi.T / m
    exact = torch.exp(-torch.cdist(h, h).square() / (2 * length_scale**2))
    # phi_j(a) phi_j(b) = cos(w^T (a - b)) + cos(w^T (a + b) + 2 b_j): variance
    # at most 1/2 + 1/2, so the mean over m features has standard error at
    # most 1 / sqrt(m) = 0.007; 5 of them.
    torch.testing.assert_close(approx, exact, rtol=0, atol=5 / np.sqrt(m))


def test_backbone_output_is_the_features_of_its_last_layer_in_both_passes():
    torch.manual_seed(1)
    mlp = MaskedMLP(
        2, (6, 6), 2, residual=True, spectral_norm=0.9, random_features=40, length_scale=0.7
    ).eval()
    assert mlp.out_features == 40
    x = torch.randn(5, 2)
    out = mlp(x)
    assert out.shape == (2, 5, 40)
    inner = MaskedMLP(2, (6, 6), 2, residual=True, spectral_norm=0.9).eval()
    inner.load_state_dict(
        {k: v for k, v in mlp.state_dict().items() if not k.startswith("random_features")}
    )
    torch.testing.assert_close(out[0], mlp.random_features(inner.shared_forward(x)))
    masks = [(w.clone(), b.clone()) for w, b in mlp.masks()]
    masks[1][0][1] = 0.0
    mlp.set_masks(masks)
    inner.set_masks(masks)
    torch.testing.assert_close(mlp(x), mlp.random_features(inner(x)))
    assert "random_features.frequencies" in mlp.state_dict()


def test_closed_form_head_on_the_features_widens_in_a_gap_and_away_from_the_data():
    # A Bayesian linear head on random Fourier features is an approximate GP:
    # its posterior variance returns to the prior level away from the data.
    # Untrained distance-preserving backbone, head conditioned on rows in
    # [-3, -1] U [1, 3]. Measured (seeded): gap / data ratio of the epistemic
    # std 25, std 0.97-1.02 of the prior's on |x| in [4, 9].
    torch.manual_seed(2)
    net = MultiTaskNetwork(
        1,
        1,
        hidden_layer_sizes=(16, 16),
        backbone_kwargs={
            "residual": True,
            "spectral_norm": 0.5,
            "random_features": 300,
            "length_scale": 0.5,
        },
        head_kwargs={"noise_std": 0.1},
    ).double()
    net.eval()
    gen = torch.Generator().manual_seed(3)
    x = 1 + 2 * torch.rand(100, 1, generator=gen, dtype=torch.float64)
    x = x * torch.where(torch.rand(100, 1, generator=gen) < 0.5, -1.0, 1.0).double()
    y = torch.sin(2 * x)
    with torch.no_grad():
        net.head.condition_on(net.head.statistics(net(x), y))
        train_std = net.predict(x).epistemic.sqrt().median()
        gap_std = net.predict(torch.zeros(1, 1, dtype=torch.float64)).epistemic.sqrt()
        far_std = net.predict(torch.tensor([[-9.0], [9.0]], dtype=torch.float64)).epistemic.sqrt()
    assert float(gap_std) > 5 * float(train_std)
    # Prior std of the head's function: about sqrt(prior_scale) = 1.
    assert bool((far_std > 0.8).all())


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"random_features": 0}, "random_features"), ({"length_scale": -1.0}, "length_scale")],
)
def test_invalid_settings_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MaskedMLP(2, (4, 4), 1, **{"random_features": 8, **kwargs})
