"""Variational Bayesian last-layer (VBLL) regression heads, batched over tasks.

Reference: Harrison, Willes & Snoek, "Variational Bayesian Last Layers",
ICLR 2024; the formulas are those of docs/algorithms.rst, alg-vbll.

A head holds ``T`` independent single-output task heads. Every head sees its
features ``phi`` of shape ``(T, B, F)`` with a constant 1 appended, so the bias
is a Bayesian weight like the others: ``D = F + 1`` head inputs. Weights have
the variational posterior ``q(w_t) = N(m_t, S_t)`` and the prior
``N(0, (prior_scale / D) I)``.

Shapes used throughout: ``y`` and ``labelled`` are ``(B, T)``; everything a head
returns per point is ``(T, B)``; per task ``(T,)``.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch import Tensor, nn

from .blr import LinearStats, isotropic_prior, linear_stats, posterior, with_bias
from .covariance import make_covariance

HEADS = ("gaussian", "student_t", "heteroscedastic")
_LOG_2PI = math.log(2.0 * math.pi)


class Predictive(NamedTuple):
    """Moments of the predictive distribution, each of shape ``(T, B)``.

    ``epistemic`` is the variance due to the head weights, ``aleatoric`` the
    observation-noise variance; the predictive variance is their sum.
    """

    mean: Tensor
    epistemic: Tensor
    aleatoric: Tensor


def mixture_moments(predictives: Sequence[Predictive], weights=None) -> Predictive:
    """Moments of the mixture of ``predictives`` (law of total variance).

    With weights ``w_m`` (summing to 1; default equal, ``1 / M``):
    ``mean = sum_m w_m mean_m``, ``epistemic = sum_m w_m epistemic_m +
    sum_m w_m (mean_m - mean)^2`` (the spread of the component means),
    ``aleatoric = sum_m w_m aleatoric_m``: the moments over MC-dropout passes
    (Gal & Ghahramani, 2016) or ensemble members (Lakshminarayanan et al.,
    2017). ``weights`` has one entry per component, each a number or a
    tensor that broadcasts against the moments (e.g. one weight per task).

    Examples
    --------
    >>> import torch
    >>> a = Predictive(torch.zeros(1, 1), torch.ones(1, 1), torch.ones(1, 1))
    >>> b = Predictive(torch.full((1, 1), 2.0), torch.ones(1, 1), torch.ones(1, 1))
    >>> [float(m) for m in mixture_moments([a, b])]
    [1.0, 2.0, 1.0]
    >>> [float(m) for m in mixture_moments([a, b], [0.25, 0.75])]  # spread 0.25 * 0.75 * 2^2
    [1.5, 1.75, 1.0]
    """
    mean, epistemic, aleatoric = (torch.stack(m) for m in zip(*predictives))
    if weights is None:
        return Predictive(
            mean.mean(0),
            epistemic.mean(0) + mean.var(0, correction=0),
            aleatoric.mean(0),
        )
    w = torch.stack([torch.as_tensor(v, dtype=mean.dtype).expand(mean.shape[1:]) for v in weights])
    centre = (w * mean).sum(0)
    spread = (w * (mean - centre).square()).sum(0)
    return Predictive(centre, (w * epistemic).sum(0) + spread, (w * aleatoric).sum(0))


def masked_task_mean(values: Tensor, labelled: Tensor) -> tuple[Tensor, Tensor]:
    """Mean of ``values`` (T, B) over each task's labelled points.

    Returns the per-task means (zero for a task without labels in the batch)
    and the boolean vector of tasks that have at least one label.
    """
    weights = labelled.T.to(values.dtype)
    counts = weights.sum(-1)
    present = counts > 0
    return (values * weights).sum(-1) / counts.clamp_min(1.0), present


class _VBLLHead(nn.Module, ABC):
    """Common part of the Gaussian and Student-t heads: q(w) and its KL.

    Subclasses set up their noise model in :meth:`_init_noise` from the
    noise prior (``wishart_scale``, ``dof``) and the initial noise level.
    """

    def __init__(
        self,
        n_tasks: int,
        in_features: int,
        *,
        covariance: str = "dense",
        rank: int = 2,
        prior_scale: float = 1.0,
        wishart_scale: float = 1e-2,
        dof: float = 1.0,
        noise_std: float = 1.0,
        seed: int = 0,
    ) -> None:
        super().__init__()
        dim = in_features + 1
        self.n_tasks = n_tasks
        self.dim = dim
        self.prior_var = prior_scale / dim
        gen = torch.Generator().manual_seed(seed)
        # Fan-in scaled initial means and the prior's covariance, so that the
        # KL term starts small, rather than the random spread of the original
        # code's initial covariance and noise.
        self.mean = nn.Parameter(torch.randn(n_tasks, dim, generator=gen) / math.sqrt(dim))
        self.covariance = make_covariance(
            covariance, n_tasks, dim, math.sqrt(self.prior_var), rank, seed
        )
        self._init_noise(wishart_scale, dof, noise_std)

    @abstractmethod
    def _init_noise(self, wishart_scale: float, dof: float, noise_std: float) -> None:
        """Create the noise parameters from the noise prior and initial level."""

    def _mean_and_quad(self, phi: Tensor) -> tuple[Tensor, Tensor]:
        phi = with_bias(phi)
        return torch.einsum("tbd,td->tb", phi, self.mean), self.covariance.quad(phi)

    def gaussian_kl(self, mean_factor: Tensor | float = 1.0) -> Tensor:
        """``KL(q(w_t) || p(w_t))`` per task, shape ``(T,)``.

        ``mean_factor`` multiplies the ``m^T m`` term; the Student-t head
        passes ``E[tau]`` there (its prior and posterior scale with ``1/tau``).
        """
        s0 = self.prior_var
        cov = self.covariance
        mean_term = mean_factor * self.mean.square().sum(-1) / s0
        return 0.5 * (
            cov.trace() / s0 + mean_term - self.dim + self.dim * math.log(s0) - cov.logdet()
        )

    def weight_samples(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """Samples of the head weights from q, shape ``(n, T, D)``."""
        return self.mean + self.covariance.sample_noise(n, generator)

    def statistics(self, phi: Tensor, y: Tensor) -> LinearStats:
        """Statistics of ``phi`` ``(T, B, F)`` and ``y`` ``(B, T)`` for :meth:`condition_on`.

        Summed over row chunks they are those of all the rows.
        """
        return linear_stats(phi, y)

    def feature_covariance(self, phi: Tensor) -> Tensor:
        """``Phi S_t Phi^T`` for each task, shape ``(T, B, B)``."""
        phi = with_bias(phi)
        return phi @ self.covariance.matrix() @ phi.transpose(-2, -1)


class GaussianVBLLHead(_VBLLHead):
    """VBLL head with Gaussian noise ``N(0, sigma_t^2)``, a point estimate.

    The noise variance carries an inverse-Wishart log-prior with degrees of
    freedom ``dof`` and scale ``wishart_scale`` (in one dimension an
    inverse-gamma ``IG(dof / 2, wishart_scale / 2)``).
    """

    def _init_noise(self, wishart_scale: float, dof: float, noise_std: float) -> None:
        self.wishart_scale = wishart_scale
        self.dof = dof
        self.log_noise_std = nn.Parameter(torch.full((self.n_tasks,), math.log(noise_std)))

    def noise_var(self) -> Tensor:
        return torch.exp(2.0 * self.log_noise_std)

    def _noise_at(self, phi: Tensor) -> Tensor:
        """Noise variance at the rows of ``phi``, broadcastable to ``(T, B)``."""
        return self.noise_var().unsqueeze(-1)

    def _conditioning_noise_var(self) -> Tensor:
        """The noise variance, ``(T,)``, that :meth:`condition_on` divides the statistics by."""
        return self.noise_var()

    def predict(self, phi: Tensor) -> Predictive:
        mean, quad = self._mean_and_quad(phi)
        return Predictive(mean, quad, self._noise_at(phi).expand_as(mean))

    def expected_nll(self, phi: Tensor, y: Tensor) -> Tensor:
        """``-E_q[log N(y | w^T phi, sigma^2)]`` per point, shape ``(T, B)``.

        Equals ``-log N(y | m^T phi, sigma^2) + phi^T S phi / (2 sigma^2)``:
        each task uses its own ``sigma_t`` in its trace term.
        """
        mean, quad = self._mean_and_quad(phi)
        var = self._noise_at(phi)
        return 0.5 * (_LOG_2PI + torch.log(var) + ((y.T - mean).square() + quad) / var)

    def predictive_nll(self, phi: Tensor, y: Tensor) -> Tensor:
        """``-log N(y | m^T phi, phi^T S phi + sigma^2)`` per point, ``(T, B)``."""
        pred = self.predict(phi)
        std = torch.sqrt(pred.epistemic + pred.aleatoric)
        return -torch.distributions.Normal(pred.mean, std, validate_args=False).log_prob(y.T)

    def kl_divergence(self) -> Tensor:
        """``KL(q(w) || p(w))`` per task."""
        return self.gaussian_kl()

    def regularizer(self) -> Tensor:
        """``KL(q || p) - log p_IW(sigma^2)`` per task (constants dropped)."""
        return self.kl_divergence() + self._neg_log_noise_prior(self.log_noise_std)

    def _neg_log_noise_prior(self, log_std: Tensor) -> Tensor:
        """``-log p_IW(sigma^2)`` at ``sigma = exp(log_std)``, constants dropped."""
        return (self.dof + 2.0) * log_std + 0.5 * self.wishart_scale * torch.exp(-2.0 * log_std)

    def sample(self, phi: Tensor, n: int, generator: torch.Generator | None = None) -> Tensor:
        """Joint samples ``Phi w + eps``, ``w ~ q``, shape ``(n, T, B)``."""
        weights = self.weight_samples(n, generator)
        f = torch.einsum("tbd,ntd->ntb", with_bias(phi), weights)
        eps = torch.randn(f.shape, generator=generator, dtype=f.dtype, device=f.device)
        return f + eps * self._noise_at(phi).sqrt()

    def condition_on(self, stats: LinearStats, kl_weight: Tensor | float = 1.0, prior=None) -> None:
        """Set q(w) to its optimum given the features' statistics and the noise.

        The exact posterior (dense covariance), its mean-field optimum
        (diagonal), or the exact mean with the trained covariance (low rank):
        the optimum of the VBLL objective for fixed features (docs/algorithms.rst, alg-vbll).
        ``prior`` is ``(mean (T, D), precision (T, D, D))``, for a prior that
        relates the tasks (:mod:`sk_mtbnn.nn.task_priors`); None is the
        isotropic prior of the head.
        """
        with torch.no_grad():
            if prior is None:
                prior = isotropic_prior(self.n_tasks, self.dim, self.prior_var, self.mean)
            mean, precision = posterior(stats, self._conditioning_noise_var(), *prior, kl_weight)
            self.mean.copy_(mean)
            self.covariance.set_from_precision(precision)

    def joint_covariance(self, phi: Tensor) -> Tensor:
        """``Phi S Phi^T + diag(sigma^2)`` per task, shape ``(T, B, B)``."""
        cov = self.feature_covariance(phi)
        return cov + torch.diag_embed(self._noise_at(phi).expand(cov.shape[:-1]))


class StudentTVBLLHead(_VBLLHead):
    """VBLL head with Normal-Gamma noise: a Student-t predictive.

    The noise precision has the variational posterior ``Gamma(alpha, beta)``
    and the prior ``Gamma(dof / 2, wishart_scale / 2)`` -- the same
    distribution of ``1 / sigma^2`` as the Gaussian head's inverse-Wishart
    prior. Given ``tau`` the weights are ``N(m, S / tau)`` with prior
    ``N(0, s0 / tau)``. The predictive is
    ``StudentT(2 alpha, m^T phi, sqrt((phi^T S phi + 1) beta / alpha))``.
    ``alpha = 1 + exp(.)`` keeps ``alpha > 1`` so that the predictive
    variance ``(phi^T S phi + 1) beta / (alpha - 1)`` is finite.
    """

    def _init_noise(self, wishart_scale: float, dof: float, noise_std: float) -> None:
        self.prior_shape = 0.5 * dof
        self.prior_rate = 0.5 * wishart_scale
        # Start at alpha = 2, E[1 / tau] = beta / (alpha - 1) = noise_std^2.
        self.log_shape_minus_one = nn.Parameter(torch.zeros(self.n_tasks))
        self.log_rate = nn.Parameter(torch.full((self.n_tasks,), 2.0 * math.log(noise_std)))

    def shape(self) -> Tensor:
        return 1.0 + torch.exp(self.log_shape_minus_one)

    def rate(self) -> Tensor:
        return torch.exp(self.log_rate)

    def noise_var(self) -> Tensor:
        """``E[1 / tau] = beta / (alpha - 1)``, the expected noise variance."""
        return self.rate() / (self.shape() - 1.0)

    def predict(self, phi: Tensor) -> Predictive:
        mean, quad = self._mean_and_quad(phi)
        noise = self.noise_var().unsqueeze(-1)
        return Predictive(mean, quad * noise, noise.expand_as(mean))

    def expected_nll(self, phi: Tensor, y: Tensor) -> Tensor:
        """``-E_q[log N(y | w^T phi, 1 / tau)]`` per point, shape ``(T, B)``."""
        mean, quad = self._mean_and_quad(phi)
        shape, rate = self.shape().unsqueeze(-1), self.rate().unsqueeze(-1)
        e_tau = shape / rate
        e_log_tau = torch.digamma(shape) - torch.log(rate)
        return 0.5 * (_LOG_2PI - e_log_tau + e_tau * (y.T - mean).square() + quad)

    def predictive_nll(self, phi: Tensor, y: Tensor) -> Tensor:
        mean, quad = self._mean_and_quad(phi)
        shape, rate = self.shape().unsqueeze(-1), self.rate().unsqueeze(-1)
        scale = torch.sqrt((quad + 1.0) * rate / shape)
        dist = torch.distributions.StudentT(2.0 * shape, mean, scale)
        return -dist.log_prob(y.T)

    def regularizer(self) -> Tensor:
        """``KL(q(w, tau) || p(w, tau))``: the noise is inferred, not a point estimate."""
        return self.kl_divergence()

    def kl_divergence(self) -> Tensor:
        """Expected Gaussian KL plus ``KL(Gamma(alpha, beta) || prior)``, per task."""
        shape, rate = self.shape(), self.rate()
        prior = torch.distributions.Gamma(
            torch.as_tensor(self.prior_shape, dtype=shape.dtype, device=shape.device),
            torch.as_tensor(self.prior_rate, dtype=shape.dtype, device=shape.device),
        )
        gamma_kl = torch.distributions.kl_divergence(
            torch.distributions.Gamma(shape, rate, validate_args=False), prior
        )
        return self.gaussian_kl(mean_factor=shape / rate) + gamma_kl

    def sample(self, phi: Tensor, n: int, generator: torch.Generator | None = None) -> Tensor:
        """Joint samples: ``tau ~ q``, ``w | tau ~ N(m, S / tau)``, noise ``1 / tau``."""
        shape, rate = self.shape(), self.rate()
        # Gamma draws through the standard-gamma sampler so that a generator
        # can be passed: tau = Gamma(shape, 1) / rate.
        tau = _standard_gamma(shape, n, generator) / rate
        scale = torch.rsqrt(tau)  # (n, T)
        noise = self.covariance.sample_noise(n, generator) * scale.unsqueeze(-1)
        f = torch.einsum("tbd,ntd->ntb", with_bias(phi), self.mean + noise)
        eps = torch.randn(f.shape, generator=generator, dtype=f.dtype, device=f.device)
        return f + eps * scale.unsqueeze(-1)

    def condition_on(self, stats: LinearStats, kl_weight: Tensor | float = 1.0) -> None:
        """Set q(w, tau) to the conjugate Normal-Gamma posterior given the features.

        ``Lambda = I / s0 + Phi^T Phi / k``, ``m = Lambda^-1 Phi^T y / k``,
        ``alpha = a0 + N / (2 k)``, ``beta = b0 + (y^T y / k - m^T Lambda m) / 2``
        with ``k = kl_weight`` (1 for the plain ELBO).
        """
        k = torch.as_tensor(kl_weight, dtype=self.mean.dtype)
        with torch.no_grad():
            prior = isotropic_prior(self.n_tasks, self.dim, self.prior_var, self.mean)
            ones = torch.ones_like(stats.yy)
            mean, precision = posterior(stats, ones, *prior, k)
            fit = torch.einsum("td,tde,te->t", mean, precision, mean)
            shape = self.prior_shape + 0.5 * stats.count / k
            rate = self.prior_rate + 0.5 * (stats.yy / k - fit).clamp_min(0.0)
            self.mean.copy_(mean)
            self.covariance.set_from_precision(precision)
            self.log_shape_minus_one.copy_(torch.log((shape - 1.0).clamp_min(1e-6)))
            self.log_rate.copy_(torch.log(rate.clamp_min(1e-12)))

    def joint_covariance(self, phi: Tensor) -> Tensor:
        """``(Phi S Phi^T + I) beta / (alpha - 1)`` per task, ``(T, B, B)``."""
        cov = self.feature_covariance(phi)
        eye = torch.eye(cov.shape[-1], dtype=cov.dtype, device=cov.device)
        return (cov + eye) * self.noise_var()[:, None, None]


def _standard_gamma(shape: Tensor, n: int, generator: torch.Generator | None) -> Tensor:
    """Draws of ``Gamma(shape, 1)`` of shape ``(n, T)`` from ``generator``.

    Marsaglia & Tsang (2000) squeeze method for ``shape >= 1`` (the head keeps
    ``alpha > 1``), vectorised with rejection rounds.
    """
    d = (shape - 1.0 / 3.0).expand(n, -1)
    c = 1.0 / torch.sqrt(9.0 * d)
    out = torch.empty_like(d)
    todo = torch.ones_like(d, dtype=torch.bool)
    while todo.any():
        x = torch.randn(d.shape, generator=generator, dtype=d.dtype, device=d.device)
        u = torch.rand(d.shape, generator=generator, dtype=d.dtype, device=d.device)
        v = (1.0 + c * x) ** 3
        log_v = torch.log(v.clamp_min(1e-30))
        ok = (v > 0) & (torch.log(u) < 0.5 * x.square() + d - d * v + d * log_v)
        accept = ok & todo
        out = torch.where(accept, d * v, out)
        todo = todo & ~accept
    return out


def make_head(kind: str, **kwargs) -> nn.Module:
    """Build the head named by ``kind`` (one of :data:`HEADS`)."""
    if kind == "gaussian":
        return GaussianVBLLHead(**kwargs)
    if kind == "student_t":
        return StudentTVBLLHead(**kwargs)
    if kind == "heteroscedastic":
        from .heteroscedastic import HeteroscedasticVBLLHead

        return HeteroscedasticVBLLHead(**kwargs)
    raise ValueError(f"head must be one of {HEADS}, got {kind!r}.")
