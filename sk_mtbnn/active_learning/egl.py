"""Expected gradient length by automatic differentiation (any subset of parameters)."""

from __future__ import annotations

import math

import numpy as np
import torch
from torch.func import functional_call, grad, vmap

from ..estimators._torch_utils import inference_copy
from ..nn.blr import with_bias
from ._model import as_inputs, resolve, task_columns

#: Rows per vectorised batch of per-sample gradients.
EGL_CHUNK = 256


def expected_gradient_length(
    model, X, *, task=None, parameters="all", n_pseudo_labels=16, random_state=0
):
    """Monte Carlo expected gradient length of the data-fit term, by autograd.

    For every row ``x`` and ``n_pseudo_labels`` draws ``y ~ p(y | x)`` from
    the predictive distribution, the gradient of the data-fit term
    ``-log N(y | m^T phi(x), sigma^2)`` (never the KL/prior regulariser,
    whose gradient does not depend on ``x``) is taken with respect to the
    chosen parameters; its norm is averaged over the draws. Per-sample
    gradients are vectorised with :func:`torch.func.vmap`, in row chunks.

    Parameters
    ----------
    model : fitted sk_mtbnn regressor, Pipeline, IterativeMagnitudePruning or modAL learner
        The model.
    X : array-like of shape (n_samples, n_features)
        Candidate inputs.
    task : int or None, default=None
        Score one task, or sum the data-fit terms of all tasks.
    parameters : {"all", "head"}, default="all"
        ``"all"``: backbone, branches, head means and noise; ``"head"``: the
        head means only, whose expectation has the closed form used by
        :class:`ClusterEGLSampling`.
    n_pseudo_labels : int, default=16
        Draws of ``y`` per row.
    random_state : int, default=0
        Seeds the draws.

    Returns
    -------
    egl : ndarray of shape (n_samples,)
        Expected gradient norms (targets in standardised units).

    Examples
    --------
    >>> import numpy as np
    >>> from sk_mtbnn import SparseMultiTaskBNNRegressor
    >>> from sk_mtbnn.active_learning import expected_gradient_length
    >>> X = np.linspace(-2, 2, 40)[:, None]
    >>> reg = SparseMultiTaskBNNRegressor(max_epochs=20, random_state=0).fit(X, np.sin(X[:, 0]))
    >>> expected_gradient_length(reg, X[:5], n_pseudo_labels=4).shape
    (5,)
    """
    estimator, transform = resolve(model)
    X = as_inputs(estimator, transform, X)
    tasks = task_columns(task, estimator.n_tasks_)
    module = inference_copy(estimator.net_.module_, estimator.device)
    head = module.head
    named = dict(module.named_parameters())
    if parameters == "head":
        chosen = ["head.mean"]
    elif parameters == "all":
        # The plug-in data-fit term does not depend on the weight covariance.
        head_terms = ("head.mean", "head.log_noise_std")
        chosen = [n for n in named if not n.startswith("head.") or n in head_terms]
    else:
        raise ValueError(f"parameters must be 'all' or 'head'; got {parameters!r}.")
    params = {n: named[n].detach() for n in chosen}
    fixed = {n: p.detach() for n, p in named.items() if n not in params}
    fixed.update(dict(module.named_buffers()))
    with torch.no_grad():
        noise_var = head.noise_var()
    weights = torch.zeros(estimator.n_tasks_, dtype=torch.float64, device=noise_var.device)
    weights[tasks] = 1.0

    def data_fit(p, x, y):
        state = {**fixed, **p}
        phi = functional_call(module, state, (x.unsqueeze(0),))[:, 0, :]  # (T, F)
        mean = (with_bias(phi) * state["head.mean"]).sum(-1)
        var = (
            torch.exp(2 * state["head.log_noise_std"])
            if "head.log_noise_std" in state
            else (noise_var)
        )
        nll = 0.5 * (torch.log(2 * math.pi * var) + (y - mean).square() / var)
        return (weights * nll).sum()

    per_sample = vmap(grad(data_fit), in_dims=(None, 0, 0))
    gen = torch.Generator(device="cpu").manual_seed(int(random_state))
    out = np.empty(len(X))
    for start in range(0, len(X), EGL_CHUNK):
        x = estimator._scaled_tensor(X[start : start + EGL_CHUNK]).to(noise_var.device)
        with torch.no_grad():
            pred = head.predict(module(x))
        std = torch.sqrt(pred.epistemic + pred.aleatoric).T  # (B, T)
        eps = torch.randn((n_pseudo_labels, *std.shape), generator=gen, dtype=std.dtype)
        y = (pred.mean.T + std * eps.to(std.device)).reshape(-1, std.shape[1])
        xs = x.repeat(n_pseudo_labels, 1)
        grads = per_sample(params, xs, y)
        sq = sum(g.reshape(len(xs), -1).square().sum(-1) for g in grads.values())
        out[start : start + len(x)] = sq.sqrt().reshape(n_pseudo_labels, -1).mean(0).cpu().numpy()
    return out
