"""Autograd EGL on an ensemble (the default on small data): the members' scores averaged."""

import math

import numpy as np
import pytest

from sk_mtbnn.active_learning import cluster_egl_sampling, expected_gradient_length
from sk_mtbnn.active_learning._model import pool_scores

#: Relative standard deviation of |e| for e ~ N(0, 1) (half-normal: mean sqrt(2/pi),
#: variance 1 - 2/pi), the Monte Carlo error of one draw of the head's gradient norm.
HALF_NORMAL_RELATIVE_SD = math.sqrt((1 - 2 / math.pi) / (2 / math.pi))


@pytest.fixture(scope="module")
def ensemble(fitted_ensemble):
    est, X, _, pool = fitted_ensemble
    return est, X, pool[:100]


def test_head_egl_of_an_ensemble_equals_the_closed_form(ensemble):
    # Regression: expected_gradient_length raised a ValueError on every ensemble, so on
    # every model fitted with the defaults on <= 1,000 rows (n_estimators="auto" = 5).
    est, _, pool = ensemble
    Xq, n = pool[:8], 4000
    for task in (0, 1):
        mc = expected_gradient_length(
            est, Xq, task=task, parameters="head", n_pseudo_labels=n, random_state=1
        )
        closed = pool_scores(est, Xq).egl[:, task]  # members' closed forms, mixture spread
        # The average of the members' Monte Carlo means has a standard error of at most the
        # average of theirs (same draws for every member: errors correlated, never worse).
        se = closed * HALF_NORMAL_RELATIVE_SD / math.sqrt(n)
        assert np.all(np.abs(mc - closed) < 5 * se)  # 5 standard errors


def test_full_egl_of_an_ensemble_includes_the_backbone(ensemble):
    est, _, pool = ensemble
    kw = dict(n_pseudo_labels=8, random_state=3)
    head = expected_gradient_length(est, pool[:10], parameters="head", **kw)
    full = expected_gradient_length(est, pool[:10], parameters="all", **kw)
    # Same pseudo-labels in both calls: per draw the squared gradient norm over all
    # parameters adds non-negative terms to the head means' one, so it is never smaller.
    assert np.all(np.isfinite(full)) and np.all(full >= head - 1e-12)
    assert np.all(full > head)  # the backbone's gradient is not identically zero


def test_cluster_egl_full_mode_runs_on_an_ensemble(ensemble):
    est, X, pool = ensemble
    idx = cluster_egl_sampling(est, pool, n_instances=4, egl="full", X_labelled=X)
    assert len(set(np.asarray(idx).tolist())) == 4
