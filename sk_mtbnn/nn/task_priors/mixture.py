"""Mixture-of-Gaussians priors over the task heads: clustering, gating, shared mean.

Task clustering (Bakker & Heskes, "Task clustering and gating for Bayesian
multitask learning", JMLR 4, 2003, Section 4): every head is drawn from one of
``K`` Gaussians, ``w_t ~ sum_k pi_tk N(mu_k, Sigma_k)``. With the Gaussian
likelihood of each head the marginal likelihood is exact,
``p(D_t) = sum_k pi_tk Z_tk`` with ``Z_tk = int p(D_t | w) N(w | mu_k, Sigma_k) dw``,
and EM maximises it (their Eq. 9): the E-step computes the responsibilities
``r_tk = pi_tk Z_tk / p(D_t)`` and the posterior moments ``(m_tk, S_tk)`` of
``w_t`` under each component. The M-step is a MAP step: ``mu_k`` and
``Sigma_k`` have a normal-inverse-Wishart hyper-prior worth ``nu``
(``covariance_prior``) pseudo-tasks whose heads are drawn from the independent
base prior ``N(0, s0 I)``, so that, with ``N_k = sum_t r_tk``,

    mu_k = sum_t r_tk m_tk / (N_k + nu),
    Sigma_k = (nu (s0 I + mu_k mu_k^T)
               + sum_t r_tk [S_tk + (m_tk - mu_k)(m_tk - mu_k)^T]) / (N_k + nu),

projected on a diagonal or spherical matrix if asked (then the hyper-prior is
normal-inverse-gamma per variance). The pseudo-tasks keep a cluster of one
task from collapsing onto that task's estimate, shrink a mean learnt from few
tasks towards the base prior's, and turn an empty cluster into the base prior.
The objective, which EM never decreases, is the log marginal likelihood plus
``-nu/2 sum_k (log|Sigma_k| + mu_k^T Sigma_k^-1 mu_k + s0 tr Sigma_k^-1)``.
Clustering has ``pi_tk = pi_k = N_k / T``; gating (their Section 5) has
``pi_tk = softmax_k(U_k^T f_t)`` from task features; the hierarchical prior is
the one-cluster case ``w_t ~ N(mu_0, Sigma_0)``.

The posterior under a mixture prior is a mixture; a head holds one Gaussian, so
the prior returned for conditioning is the moment-matched Gaussian of
``sum_k r_tk N(mu_k, Sigma_k)``: with decided responsibilities it is the
component itself and the conditioned head is the exact posterior; with split
ones it is wider than every component (it contains their spread), a cautious
approximation.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from ..._docstrings import fill_doc
from ._base import (
    _DTYPE,
    TaskPrior,
    _cholesky,
    _logdet,
    check_nonnegative,
    check_positive_int,
    correlation,
    evidence_and_posteriors,
    inverse_spd,
    moment_match,
)

COVARIANCE_TYPES = ("spherical", "diag", "full")
_JITTER = 1e-12  # relative to the base variance: keeps Sigma_k invertible when nu = 0


@dataclass(eq=False, repr=False, kw_only=True)
class _MixturePrior(TaskPrior):
    """EM for a mixture-of-Gaussians prior; subclasses define the mixing weights.

    Its parameters (keyword-only fields, stored as given and validated in
    ``fit``), with their defaults, are those of :class:`HierarchicalPrior`.
    """

    covariance_type: str = "spherical"
    covariance_prior: float = 1.0
    prior_var: float | None = None
    max_iter: int = 200
    tol: float = 1e-8

    def _n_components(self) -> int:
        return 1

    def _log_gate(self) -> Tensor:
        """Log mixing weights ``log pi_tk`` ``(T, K)``."""
        return torch.zeros(self.n_tasks_, 1, dtype=_DTYPE)

    def _update_gate(self, resp: Tensor) -> None:
        """M-step of the mixing weights given the responsibilities."""

    def _gate_penalty(self) -> Tensor:
        return torch.zeros((), dtype=_DTYPE)

    def _check_params(self) -> None:
        if self.covariance_type not in COVARIANCE_TYPES:
            raise ValueError(
                f"covariance_type must be one of {COVARIANCE_TYPES}, got {self.covariance_type!r}."
            )
        check_nonnegative(self.covariance_prior, "covariance_prior")
        check_positive_int(self.max_iter, "max_iter")
        check_nonnegative(self.tol, "tol")

    def _fit(self, gram: Tensor, shift: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        self._check_params()
        n_comp = self._n_components()
        _, base_mean, base_cov = evidence_and_posteriors(gram, shift, *self._base())
        resp = _farthest_first(base_mean[:, 0], n_comp)
        self._m_step(resp, base_mean.expand(-1, n_comp, -1), base_cov.expand(-1, n_comp, -1, -1))
        resp, post_mean, post_cov, objective = self._e_step(gram, shift)
        self.converged_ = False
        for it in range(1, self.max_iter + 1):
            self._m_step(resp, post_mean, post_cov)
            resp, post_mean, post_cov, new = self._e_step(gram, shift)
            self.n_iter_ = it
            # EM never decreases the objective; stop when a step gains < tol per task.
            done = float(new - objective) <= self.tol * self.n_tasks_
            objective = new
            if done:
                self.converged_ = True
                break
        self.responsibilities_ = resp
        self.lower_bound_ = float(objective)
        mean, cov = moment_match(resp, self.means_, self.covariances_)
        return mean, inverse_spd(cov, "prior covariance"), self._similarity(post_mean, post_cov)

    def _e_step(self, gram: Tensor, shift: Tensor):
        log_z, post_mean, post_cov = evidence_and_posteriors(
            gram, shift, self.means_, self.covariances_
        )
        joint = self._log_gate() + log_z
        log_evidence = torch.logsumexp(joint, dim=-1)
        resp = torch.exp(joint - log_evidence.unsqueeze(-1))
        objective = log_evidence.sum() + self._covariance_log_prior() - self._gate_penalty()
        return resp, post_mean, post_cov, objective

    def _m_step(self, resp: Tensor, post_mean: Tensor, post_cov: Tensor) -> None:
        """MAP update of the clusters with ``nu`` pseudo-tasks from the base prior."""
        nu, s0 = self.covariance_prior, self.base_var_
        counts = resp.sum(0)  # N_k
        denom = (nu + counts).clamp_min(1e-300)
        self.means_ = torch.einsum("tk,tkd->kd", resp, post_mean) / denom[:, None]
        dev = post_mean - self.means_.unsqueeze(0)
        eye = torch.eye(self.dim_, dtype=_DTYPE)
        pseudo = nu * (s0 * eye + self.means_.unsqueeze(-1) * self.means_.unsqueeze(-2))
        scatter = (
            pseudo
            + torch.einsum("tk,tkde->kde", resp, post_cov)
            + torch.einsum("tk,tkd,tke->kde", resp, dev, dev)
        )
        self.covariances_ = self._projected(scatter / denom[:, None, None])
        self._update_gate(resp)

    def _projected(self, cov: Tensor) -> Tensor:
        """``cov`` as a full, diagonal or spherical matrix (``covariance_type``)."""
        eye = torch.eye(self.dim_, dtype=_DTYPE)
        if self.covariance_type == "full":
            return cov + _JITTER * self.base_var_ * eye
        var = torch.diagonal(cov, dim1=-2, dim2=-1)
        if self.covariance_type == "spherical":
            var = var.mean(-1, keepdim=True).expand(-1, self.dim_)
        return torch.diag_embed(var.clamp_min(_JITTER * self.base_var_))

    def _covariance_log_prior(self) -> Tensor:
        """``-nu/2 (log|Sigma_k| + mu_k^T Sigma_k^-1 mu_k + s0 tr Sigma_k^-1)`` over the
        clusters: the log density of the normal-inverse-Wishart hyper-prior, constants
        dropped."""
        if self.covariance_prior == 0:
            return torch.zeros((), dtype=_DTYPE)
        chol = _cholesky(self.covariances_, "cluster covariance")
        inverse = torch.cholesky_inverse(chol)
        trace = torch.diagonal(inverse, dim1=-2, dim2=-1).sum(-1)
        mahalanobis = torch.einsum("kd,kde,ke->k", self.means_, inverse, self.means_)
        total = _logdet(chol) + mahalanobis + self.base_var_ * trace
        return -0.5 * self.covariance_prior * total.sum()

    def _similarity(self, post_mean: Tensor, post_cov: Tensor) -> Tensor:
        """Probability that two tasks share their cluster, ``sum_k r_tk r_sk`` (1 on the
        diagonal)."""
        same = self.responsibilities_ @ self.responsibilities_.T
        return same.fill_diagonal_(1.0)


@fill_doc
@dataclass(eq=False, repr=False)
class ClusteringPrior(_MixturePrior):
    """Task-clustering prior: each head from one of ``n_components`` Gaussians.

    ``w_t ~ sum_k pi_k N(mu_k, Sigma_k)``, all of ``pi``, ``mu``, ``Sigma``
    fitted by EM on the exact marginal likelihood (Bakker & Heskes, 2003; see
    the module docstring for the updates).

    Parameters
    ----------
    n_components : int, default=2
        Number of task clusters ``K`` (at most the number of tasks).
    covariance_type : {"spherical", "diag", "full"}, default="spherical"
        Form of each ``Sigma_k``. Spherical by default: a cluster holds few
        tasks, too few to estimate ``D`` variances.
    covariance_prior : float, default=1.0
        Weight ``nu``, in pseudo-tasks drawn from the base prior
        ``N(0, prior_var I)``, of the hyper-prior of each ``(mu_k, Sigma_k)``;
        0 is maximum likelihood.
    %(base_prior_var)s
    %(em_stopping)s

    Attributes
    ----------
    means_ : Tensor of shape (K, D)
    covariances_ : Tensor of shape (K, D, D)
    weights_ : Tensor of shape (K,)
        The mixing weights ``pi_k``.
    responsibilities_ : Tensor of shape (T, K)
        Posterior probability of each task's cluster.
    task_similarity_ : Tensor of shape (T, T)
        Probability that two tasks are in the same cluster.
    lower_bound_ : float
        Log marginal likelihood (plus the covariance log-prior) at the end.
    n_iter_ : int
    converged_ : bool

    See Also
    --------
    GatingPrior : mixing weights from task features.
    HierarchicalPrior : the one-cluster case.

    References
    ----------
    B. Bakker and T. Heskes. Task clustering and gating for Bayesian multitask
    learning. JMLR 4:83-99, 2003.

    Examples
    --------
    %(example_two_clusters)s
    >>> from sk_mtbnn.nn.task_priors import ClusteringPrior
    >>> prior = ClusteringPrior(n_components=2).fit(lik)
    >>> prior.responsibilities_.argmax(1).tolist()
    [0, 0, 0, 1, 1, 1]
    >>> mean, precision = prior.prior()
    >>> tuple(mean.shape), tuple(precision.shape)
    ((6, 2), (6, 2, 2))
    """

    _min_tasks = 1
    n_components: int = 2  # before the keyword-only fields of the base

    def _check_params(self) -> None:
        super()._check_params()
        check_positive_int(self.n_components, "n_components")
        if self.n_components > self.n_tasks_:
            raise ValueError(
                f"n_components={self.n_components} exceeds the number of tasks "
                f"({self.n_tasks_}): use at most one cluster per task."
            )

    def _n_components(self) -> int:
        return self.n_components

    def _log_gate(self) -> Tensor:
        return torch.log(self.weights_).expand(self.n_tasks_, -1)

    def _update_gate(self, resp: Tensor) -> None:
        self.weights_ = resp.mean(0)


@fill_doc
class HierarchicalPrior(_MixturePrior):
    """Shared-mean hierarchical prior ``w_t ~ N(mu_0, Sigma_0)``, both learnt.

    Empirical Bayes by EM on the exact marginal likelihood (the one-cluster
    case of :class:`ClusteringPrior`): ``mu_0`` is the average of the tasks'
    posterior means and ``Sigma_0`` their spread plus their posterior
    covariances, both shrunk towards the base prior ``N(0, prior_var I)``.

    Parameters
    ----------
    covariance_type : {"spherical", "diag", "full"}, default="spherical"
        Form of ``Sigma_0``. Spherical by default: one variance per head input
        ("diag") estimated from a handful of tasks overfits.
    covariance_prior : float, default=1.0
        Weight ``nu``, in pseudo-tasks drawn from the base prior
        ``N(0, prior_var I)``, of the hyper-prior of ``(mu_0, Sigma_0)``;
        0 is maximum likelihood.
    %(base_prior_var)s
    %(em_stopping)s

    Attributes
    ----------
    means_ : Tensor of shape (1, D)
        The shared mean ``mu_0``.
    covariances_ : Tensor of shape (1, D, D)
        ``Sigma_0``.
    task_similarity_ : Tensor of shape (T, T)
        Correlation of the tasks' deviations ``w_t - mu_0`` in the metric
        ``Sigma_0^-1``, posterior uncertainty included: tasks that leave the
        shared mean in the same direction are similar.
    lower_bound_ : float
    n_iter_ : int
    converged_ : bool

    Examples
    --------
    >>> import torch
    >>> from sk_mtbnn.nn.task_priors import HierarchicalPrior, TaskLikelihood
    >>> w = torch.tensor([[0.9, 1.0], [1.1, 1.0], [1.0, 1.2]], dtype=torch.float64)
    >>> eye = torch.eye(2, dtype=torch.float64).expand(3, 2, 2)
    >>> prior = HierarchicalPrior().fit(TaskLikelihood(100.0 * eye, 100.0 * w))
    >>> # The tasks' mean (1.0, 1.07), shrunk towards the base prior's 0 by ~nu / (T + nu):
    >>> [round(v, 2) for v in prior.means_[0].tolist()]
    [0.74, 0.79]
    """

    def _similarity(self, post_mean: Tensor, post_cov: Tensor) -> Tensor:
        metric = inverse_spd(self.covariances_[0])
        dev = post_mean[:, 0] - self.means_[0]
        gram = dev @ metric @ dev.T
        spread = torch.einsum("de,ted->t", metric, post_cov[:, 0])
        return correlation(gram + torch.diag(spread))


def _farthest_first(points: Tensor, n_clusters: int) -> Tensor:
    """One-hot initial responsibilities ``(T, K)`` by farthest-first traversal.

    The first centre is the point farthest from the mean, each next one the
    point farthest from the centres so far; every point joins its nearest
    centre. Deterministic, and an outlying task gets a cluster of its own.
    """
    first = int(torch.linalg.norm(points - points.mean(0), dim=-1).argmax())
    centres = [first]
    dist = torch.linalg.norm(points - points[first], dim=-1)
    for _ in range(n_clusters - 1):
        centres.append(int(dist.argmax()))
        dist = torch.minimum(dist, torch.linalg.norm(points - points[centres[-1]], dim=-1))
    labels = torch.cdist(points, points[centres]).argmin(-1)
    return torch.nn.functional.one_hot(labels, n_clusters).to(_DTYPE)
