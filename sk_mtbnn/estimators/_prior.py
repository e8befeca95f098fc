"""The model before fit: the prior, as GaussianProcessRegressor predicts before fit.

The backbone at its random initialisation is a random feature map ``phi(x)``
(for wide layers, close to the infinitely wide network's kernel), and the head
weights follow their prior ``w ~ N(0, prior_var I)``. The prior over the
latent function is then ``f(x) = phi(x)^T w`` with mean 0 and covariance
``prior_var * phi(x)^T phi(x')`` (bias input included); like the GP's prior it
carries no observation noise, and the inputs are not standardised.
"""

from __future__ import annotations

import numpy as np
import torch

from ..nn.blr import with_bias


class PriorModel:
    """Prior moments, covariance and samples of a freshly initialised network."""

    def __init__(self, module, n_tasks: int) -> None:
        self.module = module.to(torch.float64).eval()
        self.n_tasks_ = n_tasks

    def _features(self, X) -> torch.Tensor:
        with torch.no_grad():
            return with_bias(self.module(torch.as_tensor(X, dtype=torch.float64)))  # (T, m, D)

    def _moments(self, X):
        phi = self._features(X)
        var = self.module.head.prior_var * phi.square().sum(-1).T.numpy()
        return np.zeros_like(var), var, np.zeros_like(var)

    def _joint_covariance(self, X):
        phi = self._features(X)
        cov = self.module.head.prior_var * (phi @ phi.transpose(-2, -1))
        return np.moveaxis(cov.numpy(), 0, -1)

    def _samples(self, X, n_samples: int, generator: torch.Generator):
        phi = self._features(X)
        T, _, D = phi.shape
        w = torch.randn((n_samples, T, D), generator=generator, dtype=phi.dtype)
        f = torch.einsum("tmd,ntd->mtn", phi, w * np.sqrt(self.module.head.prior_var))
        return f.numpy()
