"""Gaussian VBLL head with input-dependent (heteroscedastic) observation noise.

The noise variance of task ``t`` at features ``phi`` is

    sigma_t(phi)^2 = min_noise_var + g(a_t^T phi + b_t)^2,

with ``g = exp`` (``log sigma`` linear in the head features; docs/algorithms.rst,
"Uncertainty that depends on the input") or ``g = softplus`` (``sigma`` about
linear where it is large, so it grows linearly rather than exponentially with
features that grow away from the data), so the aleatoric part of the predictive grows or
shrinks with the input while the weights keep their VBLL posterior
``q(w_t) = N(m_t, S_t)`` (Harrison et al., ICLR 2024). ``a_t`` and ``b_t`` are
point estimates; the inverse-Wishart noise prior of the homoscedastic head
acts on the base level ``g(b_t)``. Training may use beta-NLL (Seitzer et
al., ICLR 2022): each point's expected NLL is weighted by
``stop_gradient(sigma_t(phi)^(2 beta))``, which counters the under-fitting of
the mean where the predicted noise is large.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .blr import LinearStats, linear_stats, with_bias
from .heads import GaussianVBLLHead

LINKS = ("log", "softplus")


class HeteroscedasticVBLLHead(GaussianVBLLHead):
    """VBLL head with Gaussian noise whose variance depends on the input.

    Parameters
    ----------
    n_tasks : int
        Number of task heads.
    in_features : int
        Width ``F`` of the features (a bias input is appended).
    link : {"log", "softplus"}, default="log"
        The link ``g^-1`` of the noise std: ``sigma = g(a^T phi + b)`` before
        the floor.
    min_noise_var : float, default=1e-6
        Floor added to the predicted noise variance (in the units of the
        targets the head sees, standardised ones in the estimators).
    beta : float, default=0.0
        Exponent of the beta-NLL weights ``sigma^(2 beta)``; 0: the plain
        expected NLL, 0.5: the choice recommended by Seitzer et al., 1: a
        gradient of the mean like that of the squared error.
    **kwargs
        ``covariance``, ``rank``, ``prior_scale``, ``wishart_scale``, ``dof``,
        ``noise_std`` (the initial, input-independent noise level) and
        ``seed``, as for :class:`~sk_mtbnn.nn.heads.GaussianVBLLHead`.

    Notes
    -----
    ``noise_var(phi)`` returns the noise variance at each row, shape ``(T, B)``
    -- unlike the homoscedastic head's ``noise_var()``, it needs the features.
    The ``aleatoric`` part of :meth:`predict` is that variance. The
    statistics of :meth:`statistics` weight each row by its predicted noise
    precision ``1 / sigma_t(phi)^2`` (with the noise map fixed), so that
    :meth:`condition_on` -- which then divides them by a unit noise
    variance -- gives the exact Gaussian posterior of the weights under that
    known heteroscedastic noise: ``Lambda = I / s0 + Phi^T W Phi / k``,
    ``m = Lambda^-1 Phi^T W y / k``.

    Examples
    --------
    >>> import torch
    >>> head = HeteroscedasticVBLLHead(2, 3, beta=0.5)
    >>> phi, y = torch.randn(2, 5, 3), torch.randn(5, 2)
    >>> head.noise_var(phi).shape, head.expected_nll(phi, y).shape
    (torch.Size([2, 5]), torch.Size([2, 5]))
    >>> head.condition_on(head.statistics(phi, y))
    """

    #: The noise variance depends on the input: ``noise_var(phi)``.
    input_dependent_noise = True

    def __init__(
        self,
        n_tasks: int,
        in_features: int,
        *,
        link: str = "log",
        min_noise_var: float = 1e-6,
        beta: float = 0.0,
        **kwargs,
    ) -> None:
        if link not in LINKS:
            raise ValueError(f"link must be one of {LINKS}, got {link!r}.")
        if not (isinstance(min_noise_var, int | float) and 0 <= min_noise_var < math.inf):
            raise ValueError(f"min_noise_var must be a non-negative number, got {min_noise_var!r}.")
        if not (isinstance(beta, int | float) and 0 <= beta <= 1):
            raise ValueError(f"beta must be in [0, 1], got {beta!r}.")
        self.link = link
        self.min_noise_var = float(min_noise_var)
        self.beta = float(beta)
        super().__init__(n_tasks, in_features, **kwargs)

    def _init_noise(self, wishart_scale: float, dof: float, noise_std: float) -> None:
        self.wishart_scale = wishart_scale
        self.dof = dof
        # Starts input-independent at noise_std: a = 0, g(b) = noise_std.
        start = math.log(noise_std) if self.link == "log" else math.log(math.expm1(noise_std))
        self.noise_weight = nn.Parameter(torch.zeros(self.n_tasks, self.dim - 1))
        self.noise_bias = nn.Parameter(torch.full((self.n_tasks,), start))

    def _inverse_link(self, z: Tensor) -> Tensor:
        return torch.exp(z) if self.link == "log" else F.softplus(z)

    def noise_std_at(self, phi: Tensor) -> Tensor:
        """``g(a_t^T phi + b_t)``: the noise std before the floor, shape ``(T, B)``."""
        z = torch.einsum("tbf,tf->tb", phi, self.noise_weight) + self.noise_bias.unsqueeze(-1)
        return self._inverse_link(z)

    def noise_var(self, phi: Tensor) -> Tensor:  # type: ignore[override]
        """Noise variance ``min_noise_var + g(a_t^T phi + b_t)^2`` at each row, ``(T, B)``."""
        return self.min_noise_var + self.noise_std_at(phi).square()

    def _noise_at(self, phi: Tensor) -> Tensor:
        return self.noise_var(phi)

    def expected_nll(self, phi: Tensor, y: Tensor) -> Tensor:
        """``-E_q[log N(y | w^T phi, sigma(phi)^2)]`` per point, ``(T, B)``.

        With ``beta > 0`` each term is multiplied by ``sigma(phi)^(2 beta)``
        with the gradient stopped (beta-NLL of Seitzer et al., 2022);
        the weights change the gradients, not which mean and noise are optimal
        at a point.
        """
        nll = super().expected_nll(phi, y)
        if self.beta:
            nll = nll * self.noise_var(phi).detach() ** self.beta
        return nll

    def regularizer(self) -> Tensor:
        """``KL(q || p) - log p_IW(g(b)^2)`` per task (constants dropped)."""
        log_base = torch.log(self._inverse_link(self.noise_bias))
        return self.kl_divergence() + self._neg_log_noise_prior(log_base)

    def statistics(self, phi: Tensor, y: Tensor) -> LinearStats:
        """Precision-weighted statistics: ``Phi^T W Phi``, ``Phi^T W y``, ``y^T W y``.

        ``W = diag(1 / sigma_t(phi)^2)``; ``count`` stays the number of labels.
        """
        root = torch.rsqrt(self.noise_var(phi)).unsqueeze(-1)  # (T, B, 1)
        # linear_stats appends its own constant column, which scaling phi
        # would miss: pass the scaled features with their bias column and
        # drop the extra (unweighted) row and column it appends.
        stats = linear_stats(with_bias(phi) * root, y * root.squeeze(-1).T)
        dim = self.dim
        return stats._replace(gram=stats.gram[:, :dim, :dim], moment=stats.moment[:, :dim])

    def _conditioning_noise_var(self) -> Tensor:
        # The statistics of :meth:`statistics` already carry the noise.
        return torch.ones_like(self.noise_bias)
