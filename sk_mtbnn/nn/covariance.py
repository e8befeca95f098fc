"""Covariance parameterisations of the variational posterior q(w) = N(m, S).

Every class holds the covariances of ``T`` independent task heads, each over
``D`` head inputs, and exposes the few quantities the heads need:

* ``quad(phi)`` -- the quadratic forms ``phi^T S_t phi`` (epistemic variance);
* ``trace()`` and ``logdet()`` -- for the Gaussian KL divergence;
* ``matrix()`` -- the dense ``(T, D, D)`` covariance (for joint predictions);
* ``sample_noise(n)`` -- draws of ``w - m`` (for joint posterior samples).

Parameter names say what they are (``log_std`` is a log standard deviation,
``cholesky_log_diag`` the log of the Cholesky diagonal), unlike the original
research code, which used one name for three meanings (docs/algorithms.rst, alg-vbll).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

COVARIANCES = ("diagonal", "dense", "lowrank")


def _quad_diag(phi: Tensor, var: Tensor) -> Tensor:
    """``sum_d phi[t, b, d]^2 var[t, d]`` for phi of shape (T, B, D)."""
    return torch.einsum("tbd,td->tb", phi.square(), var)


class DiagonalCovariance(nn.Module):
    """Mean-field covariance ``S_t = diag(exp(2 * log_std_t))``."""

    def __init__(self, n_tasks: int, dim: int, init_std: float) -> None:
        super().__init__()
        self.log_std = nn.Parameter(torch.full((n_tasks, dim), math.log(init_std)))

    def variance(self) -> Tensor:
        return torch.exp(2.0 * self.log_std)

    def quad(self, phi: Tensor) -> Tensor:
        return _quad_diag(phi, self.variance())

    def trace(self) -> Tensor:
        return self.variance().sum(-1)

    def logdet(self) -> Tensor:
        return 2.0 * self.log_std.sum(-1)

    def matrix(self) -> Tensor:
        return torch.diag_embed(self.variance())

    def sample_noise(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        eps = torch.randn(
            (n, *self.log_std.shape),
            generator=generator,
            dtype=self.log_std.dtype,
            device=self.log_std.device,
        )
        return eps * torch.exp(self.log_std)

    def set_from_precision(self, precision: Tensor) -> bool:
        """Set the mean-field optimum for a Gaussian target: ``S_ii = 1 / Lambda_ii``."""
        diag = torch.diagonal(precision, dim1=-2, dim2=-1)
        with torch.no_grad():
            self.log_std.copy_(-0.5 * torch.log(diag))
        return True


class DenseCovariance(nn.Module):
    """Full covariance ``S_t = L_t L_t^T`` through its Cholesky factor.

    ``L_t`` is lower triangular with positive diagonal ``exp(cholesky_log_diag)``
    and strictly-lower part ``cholesky_offdiag``.
    """

    def __init__(self, n_tasks: int, dim: int, init_std: float) -> None:
        super().__init__()
        self.cholesky_log_diag = nn.Parameter(torch.full((n_tasks, dim), math.log(init_std)))
        self.cholesky_offdiag = nn.Parameter(torch.zeros(n_tasks, dim, dim))

    def cholesky(self) -> Tensor:
        return torch.tril(self.cholesky_offdiag, diagonal=-1) + torch.diag_embed(
            torch.exp(self.cholesky_log_diag)
        )

    def quad(self, phi: Tensor) -> Tensor:
        # phi^T L L^T phi = || L^T phi ||^2
        return torch.bmm(phi, self.cholesky()).square().sum(-1)

    def trace(self) -> Tensor:
        return self.cholesky().square().sum((-2, -1))

    def logdet(self) -> Tensor:
        return 2.0 * self.cholesky_log_diag.sum(-1)

    def matrix(self) -> Tensor:
        chol = self.cholesky()
        return chol @ chol.transpose(-2, -1)

    def sample_noise(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        chol = self.cholesky()
        eps = torch.randn(
            (n, *chol.shape[:2]), generator=generator, dtype=chol.dtype, device=chol.device
        )
        return torch.einsum("tij,ntj->nti", chol, eps)

    def set_from_precision(self, precision: Tensor) -> bool:
        """Set ``S = Lambda^-1`` exactly."""
        chol = torch.linalg.cholesky(torch.cholesky_inverse(torch.linalg.cholesky(precision)))
        with torch.no_grad():
            self.cholesky_log_diag.copy_(torch.log(torch.diagonal(chol, dim1=-2, dim2=-1)))
            self.cholesky_offdiag.copy_(torch.tril(chol, diagonal=-1))
        return True


class LowRankCovariance(nn.Module):
    """Diagonal plus low rank: ``S_t = diag(exp(2 * log_std_t)) + U_t U_t^T``.

    ``U_t`` (``factor``) has ``rank`` columns. It is initialised small but not
    zero: ``U = 0`` is a stationary point of the loss, so a zero factor would
    never learn.
    """

    def __init__(self, n_tasks: int, dim: int, init_std: float, rank: int, seed: int = 0) -> None:
        super().__init__()
        self.log_std = nn.Parameter(torch.full((n_tasks, dim), math.log(init_std)))
        gen = torch.Generator().manual_seed(seed)
        self.factor = nn.Parameter(
            torch.randn(n_tasks, dim, rank, generator=gen) * (0.1 * init_std / math.sqrt(rank))
        )

    def variance(self) -> Tensor:
        return torch.exp(2.0 * self.log_std)

    def quad(self, phi: Tensor) -> Tensor:
        return _quad_diag(phi, self.variance()) + torch.bmm(phi, self.factor).square().sum(-1)

    def trace(self) -> Tensor:
        return self.variance().sum(-1) + self.factor.square().sum((-2, -1))

    def logdet(self) -> Tensor:
        # Matrix determinant lemma:
        # log|D + U U^T| = log|D| + log|I_r + U^T D^-1 U|
        inv_var = torch.exp(-2.0 * self.log_std)
        capacitance = self.factor.transpose(-2, -1) @ (inv_var.unsqueeze(-1) * self.factor)
        eye = torch.eye(capacitance.shape[-1], dtype=capacitance.dtype, device=capacitance.device)
        return 2.0 * self.log_std.sum(-1) + torch.logdet(eye + capacitance)

    def matrix(self) -> Tensor:
        return torch.diag_embed(self.variance()) + self.factor @ self.factor.transpose(-2, -1)

    def sample_noise(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        kw = {"generator": generator, "dtype": self.log_std.dtype, "device": self.log_std.device}
        eps_diag = torch.randn((n, *self.log_std.shape), **kw)
        eps_rank = torch.randn((n, self.factor.shape[0], self.factor.shape[-1]), **kw)
        return eps_diag * torch.exp(self.log_std) + torch.einsum(
            "tdr,ntr->ntd", self.factor, eps_rank
        )

    def set_from_precision(self, precision: Tensor) -> bool:
        """No closed form for the best diagonal-plus-low-rank ``S``: left as trained."""
        return False


def make_covariance(
    kind: str, n_tasks: int, dim: int, init_std: float, rank: int = 1, seed: int = 0
) -> nn.Module:
    """Build the covariance module named by ``kind`` (one of :data:`COVARIANCES`)."""
    if kind == "diagonal":
        return DiagonalCovariance(n_tasks, dim, init_std)
    if kind == "dense":
        return DenseCovariance(n_tasks, dim, init_std)
    if kind == "lowrank":
        return LowRankCovariance(n_tasks, dim, init_std, rank, seed)
    raise ValueError(f"covariance must be one of {COVARIANCES}, got {kind!r}.")
