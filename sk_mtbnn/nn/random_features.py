"""Random Fourier features: a Bayesian linear head on them is an approximate RBF-kernel GP.

``phi(h) = sqrt(2) cos(Omega h / l + b)`` with fixed ``Omega ~ N(0, I)`` of
shape ``(M, H)`` and ``b ~ U(0, 2 pi)`` (Rahimi & Recht, "Random Features for
Large-Scale Kernel Machines", NeurIPS 2007, Sec. 3), so that
``phi(h)^T phi(h') / M -> exp(-||h - h'||^2 / (2 l^2))`` as ``M`` grows. Each
feature has ``E[phi_j^2] = 1``, the scale the VBLL heads' fan-in prior
``N(0, (prior_scale / D) I)`` expects: the prior of the head's function is then
about a GP with kernel ``prior_scale * exp(-||h - h'||^2 / (2 l^2))``. On a
distance-preserving representation this is the output layer of SNGP (Liu et
al., NeurIPS 2020, Sec. 3.1): the epistemic variance grows back to the prior
level as an input moves away from the training data, in a gap as well as
outside the data's range.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


class RandomFourierFeatures(nn.Module):
    """Fixed (not trained) random Fourier features of inputs ``(..., in_features)``.

    Parameters
    ----------
    in_features : int
        Width ``H`` of the input.
    n_features : int
        Number ``M`` of features.
    length_scale : float, default=1.0
        Length scale ``l`` of the RBF kernel, in the units of the input.

    Examples
    --------
    >>> import torch
    >>> rff = RandomFourierFeatures(3, 4096, length_scale=2.0)
    >>> h = torch.zeros(2, 3)
    >>> h[1, 0] = 2.0
    >>> phi = rff(h)
    >>> bool(abs(phi[0] @ phi[1] / 4096 - torch.exp(torch.tensor(-0.5))) < 0.05)
    True
    """

    def __init__(self, in_features: int, n_features: int, length_scale: float = 1.0) -> None:
        super().__init__()
        if not (isinstance(n_features, int) and n_features >= 1):
            raise ValueError(f"random_features must be a positive integer, got {n_features!r}.")
        if not (isinstance(length_scale, int | float) and 0 < length_scale < math.inf):
            raise ValueError(f"length_scale must be a positive number, got {length_scale!r}.")
        self.length_scale = float(length_scale)
        self.out_features = n_features
        self.register_buffer("frequencies", torch.randn(n_features, in_features))
        self.register_buffer("phases", 2 * math.pi * torch.rand(n_features))

    def forward(self, h: Tensor) -> Tensor:
        projection = h @ self.frequencies.T.to(h.dtype) / self.length_scale
        return math.sqrt(2.0) * torch.cos(projection + self.phases.to(h.dtype))
