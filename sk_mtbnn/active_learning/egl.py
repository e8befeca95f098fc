"""Expected gradient length by automatic differentiation (any subset of parameters)."""

from __future__ import annotations

import numpy as np
import torch
from sklearn.utils import check_random_state
from torch.distributions import Normal
from torch.func import functional_call, grad, vmap

from .._docstrings import fill_doc
from .._validation import check_choice, check_positive_int
from ..nn.blr import with_bias
from ._model import (
    as_inputs,
    inference_module,
    members,
    pool_progress,
    pool_scores,
    resolve,
    standardised_inputs,
    task_columns,
)

#: Rows per vectorised batch of per-sample gradients.
EGL_CHUNK = 256


@fill_doc
def expected_gradient_length(
    model, X, *, task=None, parameters="all", n_pseudo_labels=16, random_state=0, verbose=None
) -> np.ndarray:
    """Monte Carlo expected gradient length of the data-fit term, by autograd.

    For every row ``x``, task ``t`` and ``n_pseudo_labels`` draws
    ``y_t ~ p(y_t | x)`` from the predictive distribution, the gradient of
    task ``t``'s data-fit term ``-log N(y_t | m_t^T phi_t(x), sigma_t^2)``
    (never the KL/prior regulariser, whose gradient does not depend on
    ``x``) is taken with respect to the chosen parameters; its norm is
    averaged over the draws. With several tasks the score is the **sum over
    tasks of the per-task expected gradient norms**,
    ``sum_t E ||grad l_t(x, y_t)||``: each task's label is a separate
    acquisition, so its expected change of the model counts on its own (the
    norm of the summed gradient would let gradients of different tasks cancel
    or merge). :class:`ClusterEGLSampling` uses the same convention in both of
    its modes. Per-sample gradients are vectorised with
    :func:`torch.func.vmap`, in row chunks. For an ensemble
    (``n_estimators > 1``, the default on small data) the score is the
    members' scores averaged, each member's pseudo-labels centred on its own
    prediction with the mixture's predictive standard deviation (the same
    draws for every member), as in the closed form of :class:`ClusterEGLSampling`.

    Parameters
    ----------
    model : fitted sk_mtbnn regressor, Pipeline, IterativeMagnitudePruning or modAL learner
        The model.
    X : array-like of shape (n_samples, n_features)
        Candidate inputs.
    task : int or None, default=None
        Score one task, or sum the scores of all tasks.
    parameters : {"all", "head"}, default="all"
        ``"all"``: backbone, branches, head means and noise; ``"head"``: the
        head means only, whose expectation has the closed form used by
        :class:`ClusterEGLSampling`.
    n_pseudo_labels : int, default=16
        Draws of ``y`` per row and task.
    random_state : int, RandomState instance or None, default=0
        Seeds the draws.
    verbose : int or None, default=None
        2 or more: a progress bar over the rows, when they take more than one
        chunk of ``EGL_CHUNK``; None: the model's ``verbose``.

    Returns
    -------
    egl : ndarray of shape (n_samples,)
        Expected gradient norms (targets in standardised units).

    Examples
    --------
    %(example_al_regressor)s
    >>> from sk_mtbnn.active_learning import expected_gradient_length
    >>> expected_gradient_length(reg, X[-3:], n_pseudo_labels=4).shape
    (3,)
    """
    check_choice(parameters, "parameters", ("all", "head"))
    n_pseudo_labels = check_positive_int(n_pseudo_labels, "n_pseudo_labels")
    seed = int(check_random_state(random_state).randint(np.iinfo(np.int32).max))
    estimator, transform = resolve(model)
    X = as_inputs(estimator, transform, X)
    Z = standardised_inputs(estimator, X)
    tasks = task_columns(task, estimator.n_tasks_)
    nets = members(estimator)
    # An ensemble's pseudo-labels have the mixture's spread (law of total variance).
    mixture_std = pool_scores(estimator, X, verbose=0).total_std if len(nets) > 1 else None
    bar = pool_progress(estimator, len(Z), EGL_CHUNK, verbose, repeats=len(nets), desc="EGL")
    with bar:
        out = sum(
            _member_egl(net, Z, tasks, parameters, n_pseudo_labels, seed, mixture_std, bar)
            for net in nets
        )
    return out / len(nets)


def _member_egl(net, Z, tasks, parameters, n_pseudo_labels, seed, mixture_std, bar):
    """One network's summed per-task EGL of the standardised rows ``Z``; ``mixture_std``
    (rows, tasks), if given, replaces its own predictive standard deviation."""
    module = inference_module(net)
    named = dict(module.named_parameters())
    if parameters == "head":
        chosen = ["head.mean"]
    else:
        # The plug-in data-fit term does not depend on the weight covariance.
        head_terms = ("head.mean", "head.log_noise_std")
        chosen = [n for n in named if not n.startswith("head.") or n in head_terms]
    params = {n: named[n].detach() for n in chosen}
    fixed = {n: p.detach() for n, p in named.items() if n not in params}
    fixed.update(dict(module.named_buffers()))
    with torch.no_grad():
        noise_var = module.head.noise_var()

    def data_fit(p, x, y, t):
        """Task ``t``'s negative log-likelihood of ``(x, y_t)`` at the head means."""
        state = {**fixed, **p}
        phi = functional_call(module, state, (x.unsqueeze(0),))[t, 0, :]
        mean = (with_bias(phi) * state["head.mean"][t]).sum()
        log_std = state.get("head.log_noise_std")
        std = noise_var[t].sqrt() if log_std is None else torch.exp(log_std[t])
        # No argument validation: it would branch on values inside vmap.
        return -Normal(mean, std, validate_args=False).log_prob(y[t])

    per_task = {
        t: vmap(grad(lambda p, x, y, t=t: data_fit(p, x, y, t)), in_dims=(None, 0, 0))
        for t in tasks
    }
    gen = torch.Generator(device="cpu").manual_seed(seed)
    out = np.zeros(len(Z))
    for start in range(0, len(Z), EGL_CHUNK):
        x = torch.as_tensor(Z[start : start + EGL_CHUNK], device=noise_var.device)
        with torch.no_grad():
            pred = module.head.predict(module(x))
        std = torch.sqrt(pred.epistemic + pred.aleatoric).T  # (B, T)
        if mixture_std is not None:
            std = torch.as_tensor(
                mixture_std[start : start + len(x)], dtype=std.dtype, device=std.device
            )
        eps = torch.randn((n_pseudo_labels, *std.shape), generator=gen, dtype=std.dtype)
        y = (pred.mean.T + std * eps.to(std.device)).reshape(-1, std.shape[1])
        xs = x.repeat(n_pseudo_labels, 1)
        for gradient in per_task.values():
            grads = gradient(params, xs, y)
            sq = sum(g.reshape(len(xs), -1).square().sum(-1) for g in grads.values())
            norms = sq.sqrt().reshape(n_pseudo_labels, -1).mean(0)
            out[start : start + len(x)] += norms.cpu().numpy()
        bar.update(len(x))
    return out
