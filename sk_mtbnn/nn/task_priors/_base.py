"""Common part of the task-relatedness priors: the tasks' likelihoods and Gaussian algebra.

After training, each task head ``w_t`` (``D`` weights, the bias included) has
a Gaussian likelihood in canonical form,
``log p(D_t | w_t) = -1/2 w_t^T G_t w_t + h_t^T w_t + const``, with
``G_t = Phi_t^T Phi_t / (k sigma_t^2)`` and ``h_t = Phi_t^T y_t / (k sigma_t^2)``
(:mod:`sk_mtbnn.nn.blr`). A task prior fits its hyper-parameters to these
likelihoods by (variational) EM on the marginal likelihood and returns, for
every task, the Gaussian prior ``N(prior_mean_t, prior_precision_t^-1)`` that
the heads are then conditioned with (:func:`sk_mtbnn.nn.blr.posterior`).
Everything is computed in float64.
"""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from typing import NamedTuple

import torch
from torch import Tensor

from ..blr import LinearStats

_DTYPE = torch.float64


class TaskLikelihood(NamedTuple):
    """Gaussian likelihood of each task's head weights, in canonical form.

    ``log p(D_t | w) = -1/2 w^T precision_t w + shift_t^T w + const``.

    Parameters
    ----------
    precision : Tensor of shape (T, D, D)
        ``G_t = Phi_t^T Phi_t / (k sigma_t^2)``, symmetric positive semi-definite.
    shift : Tensor of shape (T, D)
        ``h_t = Phi_t^T y_t / (k sigma_t^2)``.

    Examples
    --------
    >>> import torch
    >>> from sk_mtbnn.nn.blr import linear_stats
    >>> phi, y = torch.randn(2, 10, 3), torch.randn(10, 2)
    >>> lik = TaskLikelihood.from_stats(linear_stats(phi, y), torch.ones(2))
    >>> tuple(lik.precision.shape), tuple(lik.shift.shape)
    ((2, 4, 4), (2, 4))
    """

    precision: Tensor
    shift: Tensor

    @classmethod
    def from_stats(
        cls, stats: LinearStats, noise_var: Tensor, kl_weight: Tensor | float = 1.0
    ) -> TaskLikelihood:
        """The likelihood of the statistics with noise ``noise_var`` ``(T,)``, tempered by
        ``kl_weight`` as in :func:`sk_mtbnn.nn.blr.posterior`."""
        scale = 1.0 / (torch.as_tensor(kl_weight, dtype=noise_var.dtype) * noise_var)
        scale = scale.expand(stats.moment.shape[0])
        return cls(scale[:, None, None] * stats.gram, scale[:, None] * stats.moment)

    @classmethod
    def from_posterior(
        cls, mean: Tensor, covariance: Tensor, prior_mean: Tensor, prior_precision: Tensor
    ) -> TaskLikelihood:
        """The likelihood recovered from exact posteriors ``N(mean, covariance)`` and the
        Gaussian prior they were conditioned with: ``G = S^-1 - P``, ``h = S^-1 m - P m0``.

        Only valid for dense posteriors (a mean-field or low-rank head covariance is
        not the exact posterior); :meth:`from_stats` is exact in every case.
        """
        precision = inverse_spd(_symmetric(covariance.to(_DTYPE)))
        p0 = prior_precision.to(_DTYPE)
        gram = _symmetric(precision - p0)
        shift = _mv(precision, mean.to(_DTYPE)) - _mv(p0, prior_mean.to(_DTYPE))
        eigvals, eigvecs = torch.linalg.eigh(gram)
        scale = torch.linalg.matrix_norm(precision, ord=2)
        if bool((eigvals.min(-1).values < -1e-6 * scale).any()):
            raise ValueError(
                "The posterior covariance is wider than the prior in some direction, so it "
                "is not the conditioning of this prior on data: pass the prior the heads "
                "were conditioned with, or build the likelihood with "
                "TaskLikelihood.from_stats."
            )
        # Round-off of a rank-deficient G (fewer rows than weights): clip to PSD.
        gram = (eigvecs * eigvals.clamp_min(0.0).unsqueeze(-2)) @ eigvecs.transpose(-2, -1)
        return cls(gram.to(mean.dtype), shift.to(mean.dtype))


class TaskPrior(ABC):
    """A prior over the stacked task heads ``W`` ``(T, D)``, fitted by empirical Bayes.

    :meth:`fit` learns the hyper-parameters from the tasks' likelihoods; then
    :meth:`prior` gives each task's Gaussian prior for conditioning the heads,
    and ``task_similarity_`` ``(T, T)`` the fitted relatedness of the tasks.
    Subclasses implement :meth:`_fit`.
    """

    #: Smallest number of tasks the prior can relate.
    _min_tasks = 1

    def fit(self, likelihood: TaskLikelihood) -> TaskPrior:
        """Fit the hyper-parameters to ``likelihood``, a :class:`TaskLikelihood`.

        Returns
        -------
        self : TaskPrior
        """
        gram, shift = _check_likelihood(likelihood, self._min_tasks)
        prior_var = getattr(self, "prior_var", None)
        if prior_var is not None:
            check_nonnegative(prior_var, "prior_var", positive=True)
        self.n_tasks_, self.dim_ = shift.shape
        self.base_var_ = float(prior_var) if prior_var is not None else 1.0 / self.dim_
        mean, precision, similarity = self._fit(gram, shift)
        # Results in the caller's floating dtype and on its device (computed in
        # float64 on the CPU: the matrices are small).
        like = torch.as_tensor(likelihood[1])
        out = {"dtype": like.dtype if like.is_floating_point() else _DTYPE, "device": like.device}
        self.prior_mean_ = mean.to(**out)
        self.prior_precision_ = _symmetric(precision).to(**out)
        self.task_similarity_ = similarity.to(**out)
        return self

    def prior(self) -> tuple[Tensor, Tensor]:
        """Each task's Gaussian prior: ``(prior_mean (T, D), prior_precision (T, D, D))``."""
        if not hasattr(self, "prior_mean_"):
            raise RuntimeError(f"This {type(self).__name__} is not fitted yet: call fit first.")
        return self.prior_mean_, self.prior_precision_

    def __repr__(self) -> str:
        params = inspect.signature(type(self).__init__).parameters.values()
        shown = [
            f"{p.name}={getattr(self, p.name)!r}"
            for p in params
            if p.name != "self" and not _is_default(getattr(self, p.name), p.default)
        ]
        return f"{type(self).__name__}({', '.join(shown)})"

    @abstractmethod
    def _fit(self, gram: Tensor, shift: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Return the priors' means ``(T, D)``, precisions ``(T, D, D)`` and the
        task similarity ``(T, T)``, from float64 likelihoods."""

    def _base(self) -> tuple[Tensor, Tensor]:
        """The independent base prior ``N(0, base_var_ I)`` as one component."""
        eye = torch.eye(self.dim_, dtype=_DTYPE)
        return torch.zeros(1, self.dim_, dtype=_DTYPE), (self.base_var_ * eye).unsqueeze(0)


def _is_default(value, default) -> bool:
    if value is default:
        return True
    scalar = (int, float, str)
    return isinstance(value, scalar) and type(value) is type(default) and value == default


def _check_likelihood(likelihood, min_tasks: int) -> tuple[Tensor, Tensor]:
    if not (isinstance(likelihood, tuple) and len(likelihood) == 2):
        raise TypeError(
            "fit expects a TaskLikelihood (precision, shift); build it with "
            f"TaskLikelihood.from_stats, got {type(likelihood).__name__}."
        )
    gram, shift = (torch.as_tensor(a).detach().to("cpu", _DTYPE) for a in likelihood)
    if shift.ndim != 2 or gram.shape != (*shift.shape, shift.shape[-1]):
        raise ValueError(
            "TaskLikelihood needs precision of shape (T, D, D) and shift of shape (T, D), "
            f"got {tuple(gram.shape)} and {tuple(shift.shape)}."
        )
    if shift.shape[0] < min_tasks:
        raise ValueError(f"This prior needs at least {min_tasks} tasks, got {shift.shape[0]}.")
    if not (torch.isfinite(gram).all() and torch.isfinite(shift).all()):
        raise ValueError("TaskLikelihood contains NaN or infinite values.")
    if not torch.allclose(gram, gram.transpose(-2, -1), rtol=1e-6, atol=1e-8):
        raise ValueError("TaskLikelihood.precision must be symmetric.")
    return _symmetric(gram), shift


def _symmetric(a: Tensor) -> Tensor:
    return 0.5 * (a + a.transpose(-2, -1))


def _mv(a: Tensor, v: Tensor) -> Tensor:
    return (a @ v.unsqueeze(-1)).squeeze(-1)


def _cholesky(a: Tensor, what: str) -> Tensor:
    chol, info = torch.linalg.cholesky_ex(a)
    if bool((info != 0).any()):
        raise ValueError(f"The {what} is not positive definite (check for degenerate inputs).")
    return chol


def inverse_spd(a: Tensor, what: str = "covariance") -> Tensor:
    """Inverse of symmetric positive-definite matrices, through their Cholesky factors."""
    return torch.cholesky_inverse(_cholesky(a, what)).contiguous()


def _logdet(chol: Tensor) -> Tensor:
    return 2.0 * torch.log(torch.diagonal(chol, dim1=-2, dim2=-1)).sum(-1)


def evidence_and_posteriors(
    gram: Tensor, shift: Tensor, means: Tensor, covariances: Tensor
) -> tuple[Tensor, Tensor, Tensor]:
    """Every task's likelihood against every Gaussian component ``N(means_k, covariances_k)``.

    Returns ``log Z_tk = log int p(D_t | w) N(w | mu_k, Sigma_k) dw`` ``(T, K)``
    (up to a constant of each task, the likelihood's normaliser) and the
    posterior moments of ``w_t`` under component ``k``: means ``(T, K, D)`` and
    covariances ``(T, K, D, D)``. With ``A = Sigma_k^-1 + G_t`` and
    ``b = Sigma_k^-1 mu_k + h_t`` (completing the square):
    ``log Z = 1/2 b^T A^-1 b - 1/2 mu_k^T Sigma_k^-1 mu_k - 1/2 log|Sigma_k| - 1/2 log|A|``.
    """
    chol_k = _cholesky(covariances, "component covariance")
    prec_k = torch.cholesky_inverse(chol_k)  # (K, D, D)
    shift_k = _mv(prec_k, means)  # (K, D)
    a = prec_k.unsqueeze(0) + gram.unsqueeze(1)  # (T, K, D, D)
    b = shift_k.unsqueeze(0) + shift.unsqueeze(1)  # (T, K, D)
    chol_a = _cholesky(a, "posterior precision")
    mean = torch.cholesky_solve(b.unsqueeze(-1), chol_a).squeeze(-1)
    log_z = 0.5 * (
        (b * mean).sum(-1) - (shift_k * means).sum(-1) - _logdet(chol_k) - _logdet(chol_a)
    )
    return log_z, mean, torch.cholesky_inverse(chol_a)


def moment_match(weights: Tensor, means: Tensor, covariances: Tensor) -> tuple[Tensor, Tensor]:
    """Mean and covariance of each task's mixture ``sum_k weights_tk N(means_k, covs_k)``.

    ``weights`` ``(T, K)`` (rows sum to 1), ``means`` ``(K, D)`` or ``(T, K, D)``,
    ``covariances`` ``(K, D, D)`` or ``(T, K, D, D)``. The covariance is
    ``sum_k w_k (Sigma_k + (mu_k - mu)(mu_k - mu)^T)`` (law of total variance).
    """
    mean = torch.einsum("tk,...kd->td", weights, means)
    dev = means - mean.unsqueeze(1)  # (T, K, D)
    spread = torch.einsum("tk,tkd,tke->tde", weights, dev, dev)
    within = torch.einsum("tk,...kde->tde", weights, covariances)
    return mean, _symmetric(within + spread)


def correlation(gram: Tensor) -> Tensor:
    """The correlation matrix ``C_ts / sqrt(C_tt C_ss)`` of a Gram matrix ``(T, T)``."""
    scale = torch.rsqrt(torch.diagonal(gram).clamp_min(1e-300))
    return (gram * scale[:, None] * scale[None, :]).clamp(-1.0, 1.0)


def check_positive_int(value, name: str, minimum: int = 1) -> int:
    """``value`` as an int ``>= minimum``, else a ``ValueError`` naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}.")
    return value


def check_nonnegative(value, name: str, positive: bool = False) -> float:
    """``value`` as a finite float ``>= 0`` (``> 0`` if ``positive``), else a ``ValueError``."""
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    ok = ok and value == value and abs(value) != float("inf")
    if not ok or value < 0 or (positive and value == 0):
        bound = "> 0" if positive else ">= 0"
        raise ValueError(f"{name} must be a finite number {bound}, got {value!r}.")
    return float(value)
