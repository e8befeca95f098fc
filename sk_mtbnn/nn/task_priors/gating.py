"""Task gating: cluster probabilities that depend on task features.

Bakker & Heskes (JMLR 2003, Section 5) replace the clustering prior's shared
mixing weights by a softmax of task features ``f_t``,
``pi_tk = exp(U_k^T f_t) / sum_k' exp(U_k'^T f_t)``. EM is that of
:class:`~sk_mtbnn.nn.task_priors.ClusteringPrior` except the M-step of ``U``,
a multinomial logistic regression of the responsibilities ``r_tk`` (soft
labels) on the features, solved by Newton's method with an L2 penalty on the feature
coefficients (not on the intercept). The features are standardised and an
intercept is appended, so constant features give exactly the clustering prior
(the penalised optimum puts all of ``pi`` in the intercept, ``pi_k = N_k / T``).
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..._docstrings import fill_doc
from ._base import _DTYPE, check_nonnegative
from .mixture import ClusteringPrior


@fill_doc
class GatingPrior(ClusteringPrior):
    """Task-gating prior: cluster probabilities ``softmax(U^T f_t)`` from task features.

    ``w_t ~ sum_k pi_tk N(mu_k, Sigma_k)`` with ``pi_tk = softmax_k(U_k^T f_t)``
    (Bakker & Heskes, 2003, Section 5), ``U``, ``mu`` and ``Sigma`` fitted by EM.

    Parameters
    ----------
    task_features : array-like of shape (T, n_features)
        Features of the tasks (e.g. the target's units, its source, or any
        description); standardised internally, an intercept is added.
    n_components : int, default=2
        Number of clusters ``K``.
    gate_penalty : float, default=1.0
        L2 penalty ``lambda / 2 ||U||^2`` on the feature coefficients of the
        gate (standardised features), which keeps them finite when the tasks'
        features separate the clusters.
    covariance_type : {"spherical", "diag", "full"}, default="spherical"
        Form of each ``Sigma_k``.
    covariance_prior : float, default=1.0
        Weight, in pseudo-tasks drawn from the base prior, of the hyper-prior
        of each ``(mu_k, Sigma_k)``.
    %(base_prior_var)s
    max_iter : int, default=200
        Most EM iterations.
    tol : float, default=1e-8
        Stop when an iteration raises the objective by less than ``tol`` per task.

    Attributes
    ----------
    gate_coef_ : Tensor of shape (n_features + 1, K)
        ``U`` for the standardised features, the intercept in the last row.
    gate_weights_ : Tensor of shape (T, K)
        The fitted prior cluster probabilities ``pi_tk``.
    means_, covariances_, responsibilities_, task_similarity_, lower_bound_, n_iter_, converged_
        As in :class:`ClusteringPrior`.

    Examples
    --------
    %(example_two_clusters)s
    >>> from sk_mtbnn.nn.task_priors import GatingPrior
    >>> features = [[0.0], [0.1], [0.2], [1.0], [1.1], [0.9]]  # one per task
    >>> prior = GatingPrior(features).fit(lik)
    >>> prior.gate_weights_.argmax(1).tolist()
    [0, 0, 0, 1, 1, 1]
    """

    def __init__(
        self,
        task_features,
        n_components: int = 2,
        *,
        gate_penalty: float = 1.0,
        covariance_type: str = "spherical",
        covariance_prior: float = 1.0,
        prior_var: float | None = None,
        max_iter: int = 200,
        tol: float = 1e-8,
    ) -> None:
        super().__init__(
            n_components,
            covariance_type=covariance_type,
            covariance_prior=covariance_prior,
            prior_var=prior_var,
            max_iter=max_iter,
            tol=tol,
        )
        self.task_features = task_features
        self.gate_penalty = gate_penalty

    def _check_params(self) -> None:
        super()._check_params()
        check_nonnegative(self.gate_penalty, "gate_penalty")
        self._design = _standardised_design(self.task_features, self.n_tasks_)
        self.gate_coef_ = torch.zeros(self._design.shape[1], self.n_components, dtype=_DTYPE)

    def _log_gate(self) -> Tensor:
        return torch.log_softmax(self._design @ self.gate_coef_, dim=-1)

    def _gate_penalty(self, coef: Tensor | None = None) -> Tensor:
        coef = self.gate_coef_ if coef is None else coef
        return 0.5 * self.gate_penalty * coef[:-1].square().sum()

    def _update_gate(self, resp: Tensor) -> None:
        self.gate_coef_ = _fit_gate(self._design, resp, self.gate_coef_, self.gate_penalty)
        self.gate_weights_ = torch.exp(self._log_gate())


def _fit_gate(design: Tensor, resp: Tensor, coef: Tensor, penalty: float) -> Tensor:
    """Penalised multinomial logistic regression of soft labels ``resp`` by Newton's method.

    Minimises ``-sum_tk r_tk log softmax(X U)_tk + penalty / 2 ||U_features||^2``
    (convex) from ``coef``, halving each step until the loss decreases. The
    softmax is unchanged by a common shift of the intercepts, so ``1e-10 I``
    keeps the Hessian invertible.
    """
    n_coef = coef.numel()
    weight = torch.ones_like(coef)
    weight[-1] = 0.0  # the intercept is not penalised

    def loss(u: Tensor) -> Tensor:
        log_pi = torch.log_softmax(design @ u, dim=-1)
        return -(resp * log_pi).sum() + 0.5 * penalty * (weight * u.square()).sum()

    current = loss(coef)
    for _ in range(100):
        prob = torch.softmax(design @ coef, dim=-1)
        grad = design.T @ (prob - resp) + penalty * weight * coef
        if float(grad.abs().max()) < 1e-10:
            break
        curvature = torch.diag_embed(prob) - prob.unsqueeze(-1) * prob.unsqueeze(-2)
        hessian = torch.einsum("ta,tb,tkl->akbl", design, design, curvature).reshape(n_coef, -1)
        hessian = hessian + torch.diag((penalty * weight).reshape(-1) + 1e-10)
        step = torch.linalg.solve(hessian, grad.reshape(-1)).reshape(coef.shape)
        for _ in range(50):
            trial = coef - step
            new = loss(trial)
            if new <= current:
                break
            step = 0.5 * step
        else:
            break
        coef, current = trial, new
    return coef


def _standardised_design(task_features, n_tasks: int) -> Tensor:
    """Standardised features with an intercept column, ``(T, n_features + 1)``."""
    try:
        features = torch.as_tensor(task_features, dtype=_DTYPE)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise ValueError("task_features must be a numeric array of shape (T, n_features).") from exc
    if features.ndim == 1:
        features = features.unsqueeze(-1)
    if features.ndim != 2 or features.shape[0] != n_tasks:
        raise ValueError(
            f"task_features must have shape (T, n_features) with T={n_tasks} tasks, "
            f"got {tuple(features.shape)}."
        )
    if not torch.isfinite(features).all():
        raise ValueError("task_features contains NaN or infinite values.")
    centred = features - features.mean(0)
    std = centred.square().mean(0).sqrt()
    # A constant feature carries no information about the tasks: it becomes 0.
    scaled = torch.where(std > 0, centred / std.clamp_min(1e-300), torch.zeros_like(centred))
    return torch.cat([scaled, torch.ones(n_tasks, 1, dtype=_DTYPE)], dim=1)
