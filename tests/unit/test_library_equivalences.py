"""Library calls that replaced hand-written maths give the same numbers as the old expressions."""

import math

import numpy as np
import pytest
import torch
from sklearn.metrics import pairwise_distances_argmin
from sklearn.neighbors import KDTree
from torch.distributions import Normal
from torch.func import grad, vmap

from sk_mtbnn.metrics import gaussian_nll


def _nll_by_hand(mean, y, var):
    return 0.5 * (torch.log(2 * math.pi * var) + (y - mean).square() / var)


def _nll_by_normal(mean, y, var):  # as in sk_mtbnn.active_learning.egl
    return -Normal(mean, var.sqrt(), validate_args=False).log_prob(y)


@pytest.mark.parametrize("argnum", [0, 2])
def test_normal_log_prob_and_its_gradients_under_vmap_match_the_formula(argnum):
    gen = torch.Generator().manual_seed(0)
    mean, y = torch.randn(2, 200, generator=gen, dtype=torch.float64)
    var = torch.rand(200, generator=gen, dtype=torch.float64) * 10 + 1e-3
    # float64 round-off of a few operations on values of order 1e3 at most.
    torch.testing.assert_close(_nll_by_normal(mean, y, var), _nll_by_hand(mean, y, var))
    by_hand = vmap(grad(_nll_by_hand, argnums=argnum))(mean, y, var)
    by_normal = vmap(grad(_nll_by_normal, argnums=argnum))(mean, y, var)
    torch.testing.assert_close(by_normal, by_hand, rtol=1e-12, atol=1e-12)


def test_gaussian_nll_matches_the_closed_form():
    rng = np.random.RandomState(0)
    y, m = rng.randn(2, 300)
    sd = np.exp(rng.uniform(-5, 5, 300))
    expected = np.mean(0.5 * np.log(2 * np.pi) + np.log(sd) + 0.5 * ((y - m) / sd) ** 2)
    assert gaussian_nll(y, m, sd) == pytest.approx(expected, rel=1e-13)  # float64 round-off
    # Huge standard deviations stay finite (log(sd), never log(sd ** 2)).
    assert np.isfinite(gaussian_nll([0.0], [0.0], [1e300]))


def test_nearest_centre_by_pairwise_distances_argmin_matches_a_kd_tree():
    rng = np.random.RandomState(0)
    for _ in range(50):
        d = rng.randint(1, 5)
        members = rng.randn(rng.randint(1, 300), d)
        centres = members[rng.choice(len(members), min(len(members), 12), replace=False)]
        tree = KDTree(centres).query(members, k=1, return_distance=False)[:, 0]
        np.testing.assert_array_equal(pairwise_distances_argmin(members, centres), tree)
