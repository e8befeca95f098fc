"""Soft spectral normalisation of batched weight matrices by power iteration.

``W <- W / max(1, sigma_max(W) / c)`` (Liu et al., "Simple and Principled
Uncertainty Estimation with Deterministic Deep Learning via Distance
Awareness", NeurIPS 2020, Sec. 3.2; van Amersfoort et al., "On Feature
Collapse and Deep Kernel Learning for Single Forward Pass Uncertainty", 2021):
a matrix whose largest singular value is at most ``c`` is left unchanged, a
larger one is scaled down to exactly ``c``. Unlike
``torch.nn.utils.parametrizations.spectral_norm``, which always divides by
``sigma_max`` (bound exactly 1), this bounds the norm softly by ``c``.

``sigma_max`` is estimated as ``u^T W v`` from persistent left singular
vectors ``u`` refined by power iteration (Miyato et al., ICLR 2018, Alg. 1):
the estimate never exceeds the true ``sigma_max`` and converges to it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

#: Power iterations run when the persistent vectors are (re)initialised.
INITIAL_POWER_ITERATIONS = 15


def power_iteration(weight: Tensor, u: Tensor, n_iterations: int) -> tuple[Tensor, Tensor]:
    """Refine the left singular vectors ``u`` of ``weight``; no gradient.

    Parameters
    ----------
    weight : Tensor of shape (T, m, n)
        ``T`` matrices.
    u : Tensor of shape (T, m)
        Current estimates of the leading left singular vectors.
    n_iterations : int
        Number of power iterations (0 only derives ``v`` from ``u``).

    Returns
    -------
    u : Tensor of shape (T, m)
        Refined left singular vectors (unit norm, or zero for a zero matrix).
    v : Tensor of shape (T, n)
        The matching right singular vectors ``W^T u / ||W^T u||``.

    Examples
    --------
    >>> import torch
    >>> w = torch.diag(torch.tensor([3.0, 1.0])).unsqueeze(0)
    >>> u, v = power_iteration(w, torch.ones(1, 2), 20)
    >>> round(float(spectral_norm_estimate(w, u, v)), 4)
    3.0
    """
    with torch.no_grad():
        weight = weight.detach()
        for _ in range(n_iterations):
            v = F.normalize(torch.einsum("tmn,tm->tn", weight, u), dim=-1)
            u = F.normalize(torch.einsum("tmn,tn->tm", weight, v), dim=-1)
        v = F.normalize(torch.einsum("tmn,tm->tn", weight, u), dim=-1)
    return u, v


def spectral_norm_estimate(weight: Tensor, u: Tensor, v: Tensor) -> Tensor:
    """``u^T W v`` per matrix, shape ``(T,)``, differentiable in ``weight``."""
    return torch.einsum("tm,tmn,tn->t", u, weight, v)


def soft_normalise(weight: Tensor, sigma: Tensor, coefficient: float) -> Tensor:
    """``W / max(1, sigma / c)`` for ``weight`` ``(T, m, n)`` and ``sigma`` ``(T,)``."""
    return weight / (sigma / coefficient).clamp_min(1.0)[:, None, None]


def random_unit_vectors(n: int, dim: int, generator: torch.Generator | None = None) -> Tensor:
    """``n`` random unit vectors of length ``dim`` (start of the power iteration)."""
    return F.normalize(torch.randn(n, dim, generator=generator), dim=-1)
