"""BayesAgg's classification posterior mean: the head's weights (default) or a Newton step."""

import numpy as np
import pytest
import torch

from sk_mtbnn import BayesAggMTLClassifier
from sk_mtbnn.aggregators import BayesAgg


def _trained_net(posterior_mean):
    rng = np.random.RandomState(0)
    X = rng.normal(size=(60, 3))
    Y = np.column_stack([X[:, 0] > 0, X[:, 1] + X[:, 2] > 0]).astype(float)
    agg = BayesAgg(s_classification=0.5, n_mc_samples=256, posterior_mean=posterior_mean)
    clf = BayesAggMTLClassifier((8,), aggregator=agg, max_epochs=3, random_state=0).fit(X, Y)
    net = clf.net_
    x = torch.as_tensor(clf._scaled_tensor(X[:10]), dtype=torch.float32)
    y = torch.as_tensor(Y[:10], dtype=torch.float32)
    return net, net.module_.shared_representation(x).detach(), y


def _tight_prior(net, precision=1e8):
    head = net.module_.head
    return [
        (torch.zeros_like(m), torch.eye(m.shape[1]) * precision) for m, _ in head.isotropic_prior()
    ]


def test_head_mean_gives_the_gradient_at_the_current_weights():
    net, h, y = _trained_net("head")
    net.prior_ = _tight_prior(net)  # posterior std 1e-4: its draws are the weights
    moments = net.gradient_moments(h, y)
    head = net.module_.head
    for t in range(2):
        # Independent reference: autograd of each row's cross-entropy at the weights.
        leaf = h.clone().requires_grad_()
        logits = head.linears[t](leaf)[:, 0]
        torch.nn.functional.binary_cross_entropy_with_logits(
            logits, y[:, t], reduction="sum"
        ).backward()
        # MC of 256 draws with std 1e-4 around the weights, float32: 1e-3 absolute.
        torch.testing.assert_close(moments.mean[:, t], leaf.grad, rtol=0, atol=1e-3)


def test_newton_mean_moves_to_the_prior_mean_under_a_tight_prior():
    # One Newton step under a prior N(0, 1e-8 I) lands at its mean 0, where every
    # gradient of the head with respect to h is 0: the mean is the Newton step's.
    net, h, y = _trained_net("newton")
    net.prior_ = _tight_prior(net)
    assert net.gradient_moments(h, y).mean.abs().max() < 1e-3


def test_posterior_mean_is_validated():
    X = np.random.RandomState(0).normal(size=(20, 2))
    with pytest.raises(ValueError, match="posterior_mean"):
        BayesAggMTLClassifier(aggregator=BayesAgg(posterior_mean="mode")).fit(X, X[:, 0] > 0)
