"""Expected gradient length: closed form against autograd, one multi-task convention."""

import math

import numpy as np
import pytest

from sk_mtbnn.active_learning import ClusterEGLSampling, expected_gradient_length
from sk_mtbnn.active_learning._model import pool_scores

#: Standard error of the Monte Carlo mean of |y - m^T phi| ||phi|| / sigma^2 with
#: y ~ N(m^T phi, s^2), relative to its expectation s sqrt(2/pi) ||phi|| / sigma^2:
#: the half-normal |e| has mean sqrt(2/pi) and variance 1 - 2/pi.
HALF_NORMAL_RELATIVE_SD = math.sqrt((1 - 2 / math.pi) / (2 / math.pi))


def test_closed_form_egl_equals_autograd_monte_carlo(model, pool):
    X, _ = pool
    Xq = X[50:58]
    n = 4000
    for task in (0, 1):
        mc = expected_gradient_length(
            model, Xq, task=task, parameters="head", n_pseudo_labels=n, random_state=1
        )
        closed = pool_scores(model, Xq).egl[:, task]
        se = closed * HALF_NORMAL_RELATIVE_SD / math.sqrt(n)
        assert np.all(np.abs(mc - closed) < 5 * se)  # 5 standard errors


def test_all_tasks_sum_the_per_task_expected_gradient_norms(model, pool):
    # Issue 13: egl="head" summed per-task norms while task=None took the
    # norm of the summed gradient (1.27x apart here). One convention now:
    # sum_t E||grad l_t||. For the head means, the two modes must agree.
    X, _ = pool
    Xq, n = X[50:58], 4000
    mc = expected_gradient_length(
        model, Xq, task=None, parameters="head", n_pseudo_labels=n, random_state=2
    )
    closed = pool_scores(model, Xq).egl
    # The tasks' pseudo-labels are independent: the variances add.
    se = np.sqrt(((closed * HALF_NORMAL_RELATIVE_SD) ** 2).sum(1) / n)
    assert np.all(np.abs(mc - closed.sum(1)) < 5 * se)  # 5 standard errors
    # The norm of the summed gradient is sqrt(sum_t norm_t^2) for disjoint
    # head rows: smaller than the sum by far more than the Monte Carlo error.
    assert np.all(closed.sum(1) - np.sqrt((closed**2).sum(1)) > 20 * se)


@pytest.mark.parametrize("parameters", ["head", "all"])
def test_task_none_is_the_sum_of_the_single_task_scores(model, pool, parameters):
    # Same seed, same pseudo-labels for every task: the identity is exact up
    # to float64 rounding of the sum.
    X, _ = pool
    kw = {"parameters": parameters, "n_pseudo_labels": 8, "random_state": 3}
    both = expected_gradient_length(model, X[:12], task=None, **kw)
    each = sum(expected_gradient_length(model, X[:12], task=t, **kw) for t in (0, 1))
    np.testing.assert_allclose(both, each, rtol=1e-12)


def test_cluster_egl_with_autograd_scores(model, pool):
    X, _ = pool
    idx = ClusterEGLSampling(egl="full", n_pseudo_labels=4, random_state=0)(
        model, X[40:], n_instances=2, X_labelled=X[:40]
    )
    assert len(set(idx.tolist())) == 2


def test_egl_ignores_the_kl_regulariser(fit, pool):
    # The prior variance enters the loss only through the KL term: with the
    # posterior held fixed, changing it must not change any EGL.
    X, y = pool
    est = fit(X[:40], y[:40])
    before = (
        pool_scores(est, X[40:80]).egl,
        expected_gradient_length(est, X[40:50], n_pseudo_labels=8),
    )
    est.net_.module_.head.prior_var *= 100.0
    after = (
        pool_scores(est, X[40:80]).egl,
        expected_gradient_length(est, X[40:50], n_pseudo_labels=8),
    )
    for a, b in zip(before, after):
        np.testing.assert_array_equal(a, b)


def test_full_autograd_egl_includes_the_backbone(model, pool):
    X, _ = pool
    head = expected_gradient_length(model, X[:10], parameters="head", n_pseudo_labels=32)
    full = expected_gradient_length(model, X[:10], parameters="all", n_pseudo_labels=32)
    assert np.all(full > head)  # more parameters (same draws), longer gradients


def test_random_state_forms(model, pool):
    X, _ = pool
    kw = {"n_pseudo_labels": 4}
    a = expected_gradient_length(model, X[:5], random_state=7, **kw)
    np.testing.assert_array_equal(a, expected_gradient_length(model, X[:5], random_state=7, **kw))
    rs = np.random.RandomState(7)
    np.testing.assert_array_equal(a, expected_gradient_length(model, X[:5], random_state=rs, **kw))
    # Issue 13: random_state=None raised a TypeError.
    assert np.all(expected_gradient_length(model, X[:5], random_state=None, **kw) > 0)


def test_egl_errors(model, pool):
    X, _ = pool
    # Issue 13: n_pseudo_labels=0 gave a torch reshape error.
    for bad in (0, -1, 2.5):
        with pytest.raises(ValueError, match="n_pseudo_labels must be a positive integer"):
            expected_gradient_length(model, X[:5], n_pseudo_labels=bad)
    with pytest.raises(ValueError, match="parameters must be one of"):
        expected_gradient_length(model, X[:5], parameters="backbone")
    with pytest.raises(ValueError, match="task must be None or an integer"):
        expected_gradient_length(model, X[:5], task=2)
