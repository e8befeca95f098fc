"""Group-sparsity prior: a matrix-variate Gaussian scale mixture over the task heads.

Archambeau, Guo and Zoeter ("Sparse Bayesian multi-task learning", NIPS 2011,
Eqs. 2-4) split the weight matrix ``W`` ``(T, D)`` into blocks ``W_i``
``(T, D_i)`` of head inputs (here: groups of the shared features, the same for
every task) and give each block a latent precision ``gamma_i``,

    vec(W_i) | gamma_i ~ N(0, gamma_i^-1 I_{D_i} (x) Sigma),
    gamma_i ~ GIG(omega, chi, phi) ∝ gamma^(omega - 1) exp(-(chi / gamma + phi gamma) / 2),

with ``Sigma`` ``(T, T)`` the covariance of the tasks. Integrating
``gamma_i`` out gives a matrix-variate generalised hyperbolic prior that
switches whole groups of inputs off for all tasks at once. Variational EM
(their Section 3) alternates:

* ``q(W)``: given ``E[gamma]`` and ``Sigma`` the prior of ``vec(W)`` is Gaussian
  with precision ``Sigma^-1 (x) diag(E[gamma])``, and with the tasks'
  Gaussian likelihoods the posterior is a joint Gaussian over all ``T D``
  weights (solved exactly, ``O((T D)^3)``);
* ``q(gamma_i) = GIG(omega + T D_i / 2, chi, phi + E tr(W_i^T Sigma^-1 W_i))``,
  whose mean ``E[gamma] = sqrt(chi / phi) K_{omega+1}(sqrt(chi phi)) /
  K_omega(sqrt(chi phi))`` needs modified Bessel functions of the second kind;
* ``Sigma = (nu I + sum_j E[gamma_j] E[w_j w_j^T]) / (nu + D)`` over the columns
  ``w_j``: the MAP under an inverse-Wishart prior worth ``nu`` columns
  (``task_covariance_prior``), which also fixes the scale that ``Sigma`` and
  ``gamma`` otherwise trade against each other.

The heads are independent Gaussians, so each task gets the Gaussian prior
whose conditioning on its own likelihood reproduces the joint posterior's
marginal ``N(m_t, C_tt)``: precision ``C_tt^-1 - G_t`` (positive definite: it
is at least the prior's marginal precision) and mean
``(C_tt^-1 - G_t)^-1 (C_tt^-1 m_t - h_t)``. It carries the other tasks'
information through ``Sigma``.
"""

from __future__ import annotations

from dataclasses import KW_ONLY, dataclass

import numpy as np
import torch
from numpy.typing import ArrayLike
from scipy.special import kve
from torch import Tensor

from ._base import (
    _DTYPE,
    TaskPrior,
    _mv,
    _symmetric,
    check_nonnegative,
    check_positive_int,
    correlation,
    inverse_spd,
)


def gig_moments(omega, chi, phi) -> tuple[np.ndarray, np.ndarray]:
    """``E[gamma]`` and ``E[1 / gamma]`` of ``GIG(omega, chi, phi)``.

    The density is proportional to ``gamma^(omega - 1) exp(-(chi / gamma + phi gamma) / 2)``.
    With ``x = sqrt(chi phi)``, ``E[gamma] = sqrt(chi / phi) K_{omega+1}(x) / K_omega(x)``
    and ``E[1/gamma] = sqrt(phi / chi) K_{omega-1}(x) / K_omega(x)`` (Jorgensen,
    *Statistical properties of the generalized inverse Gaussian distribution*,
    1982). ``chi = 0`` is the gamma distribution (shape ``omega``, rate
    ``phi / 2``), ``phi = 0`` the inverse gamma (shape ``-omega``, scale
    ``chi / 2``); an infinite moment is returned as ``inf``.

    Parameters
    ----------
    omega, chi, phi : array-like
        Index, and the non-negative parameters (broadcast together).

    Returns
    -------
    mean, inverse_mean : ndarray

    Examples
    --------
    >>> from sk_mtbnn.nn.task_priors import gig_moments
    >>> mean, inverse_mean = gig_moments(2.0, 0.0, 1.0)  # Gamma(shape 2, rate 1/2)
    >>> float(mean), float(inverse_mean)
    (4.0, 0.5)
    """
    omega, chi, phi = np.broadcast_arrays(*(np.asarray(a, dtype=float) for a in (omega, chi, phi)))
    if (chi < 0).any() or (phi < 0).any() or ((chi == 0) & (omega <= 0)).any():
        raise ValueError("GIG needs chi >= 0, phi >= 0, omega > 0 when chi = 0.")
    if ((phi == 0) & (omega >= 0)).any() or ((chi == 0) & (phi == 0)).any():
        raise ValueError("GIG needs omega < 0 when phi = 0, and chi, phi not both 0.")
    with np.errstate(divide="ignore", invalid="ignore"):
        gamma_mean, gamma_inv = 2 * omega / phi, np.where(omega > 1, phi / (2 * omega - 2), np.inf)
        igam_inv, igam_mean = -2 * omega / chi, np.where(omega < -1, chi / (-2 * omega - 2), np.inf)
        x = np.sqrt(chi * phi)
        general = x > 0
        ratio = np.ones_like(x)
        ratio_below = np.ones_like(x)
        ratio[general] = _bessel_ratio(omega[general], x[general])
        ratio_below[general] = _bessel_ratio(omega[general] - 1.0, x[general])
        mean = np.sqrt(chi / phi) * ratio
        inverse_mean = np.sqrt(phi / chi) / ratio_below
    mean = np.where(chi == 0, gamma_mean, np.where(phi == 0, igam_mean, mean))
    inverse_mean = np.where(chi == 0, gamma_inv, np.where(phi == 0, igam_inv, inverse_mean))
    return mean, inverse_mean


def _bessel_ratio(nu: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``K_{nu+1}(x) / K_nu(x)`` for any real order, without overflow.

    ``K_nu`` overflows for large orders, so the ratio starts at an order
    ``nu0`` in ``[-1/2, 1/2)`` from scipy's exponentially scaled ``kve`` and
    climbs with ``r(mu) = 1 / r(mu - 1) + 2 mu / x`` (from
    ``K_{mu+1} = K_{mu-1} + (2 mu / x) K_mu``, stable upwards, Eq. 10.29.1 of
    the DLMF). Negative orders use ``K_{-nu} = K_nu``:
    ``K_{nu+1} / K_nu = 1 / r(-nu - 1)``.
    """
    reflect = nu < -0.5
    order = np.where(reflect, -nu - 1.0, nu)
    steps = np.floor(order + 0.5)
    start = order - steps
    ratio = kve(start + 1.0, x) / kve(start, x)
    for i in range(1, int(steps.max(initial=0)) + 1):
        ratio = np.where(i <= steps, 1.0 / ratio + 2.0 * (start + i) / x, ratio)
    return np.where(reflect, 1.0 / ratio, ratio)


@dataclass(eq=False, repr=False)
class GroupSparsityPrior(TaskPrior):
    """Group-sparse matrix-variate prior with a GIG hyper-prior (Archambeau et al., 2011).

    Blocks of head inputs share a latent precision ``gamma_i`` across all
    tasks; the tasks share a covariance ``Sigma``. See the module docstring for
    the model and its variational EM.

    Parameters
    ----------
    groups : array-like of shape (D,), default=None
        Group label of every head input (the bias is the last input); None:
        every input is its own group (relevance determination per input).
    omega : float, default=1.0
        Index of the GIG hyper-prior.
    chi : float, default=None
        GIG parameter ``chi >= 0`` (0: a gamma hyper-prior, a Student-t-like
        marginal); None: ``1 / prior_var``.
    phi : float, default=None
        GIG parameter ``phi >= 0``; None: ``prior_var``. With the defaults the
        hyper-prior has scale ``sqrt(chi / phi) = 1 / prior_var``, the base
        prior's precision, and concentration ``sqrt(chi phi) = 1``.
    task_covariance_prior : float, default=None
        Weight ``nu``, in head inputs (columns of ``W``), of an inverse-Wishart
        prior pulling ``Sigma`` towards ``I`` (independent tasks at the base
        prior's scale): ``Sigma = (nu I + sum_j E[gamma_j] E[w_j w_j^T]) / (nu + D)``.
        Estimated from ``D`` columns alone, ``Sigma`` has ``T (T + 1) / 2``
        entries and overfits (unrelated tasks look correlated, which transfers
        noise); None: ``nu = T``.
    prior_var : float, default=None
        Variance of the heads' independent base prior; None: ``1 / D``.
    max_iter : int, default=200
        Most variational EM iterations.
    tol : float, default=1e-4
        Stop when the prior covariances ``Sigma / E[gamma_i]`` change by less
        than ``tol`` (relative). EM creeps when tasks are nearly collinear
        (``Sigma`` nearly singular), so a tighter tolerance mostly costs time.

    Attributes
    ----------
    groups_ : Tensor of shape (D,)
        Group index (0 to n_groups - 1) of each head input.
    group_precision_ : Tensor of shape (n_groups,)
        ``E[gamma_i]`` under ``q(gamma_i)``.
    group_variance_ : Tensor of shape (n_groups,)
        ``E[1 / gamma_i]``: small for a group that the prior switches off.
    task_covariance_ : Tensor of shape (T, T)
        ``Sigma``.
    task_similarity_ : Tensor of shape (T, T)
        The correlation matrix of ``Sigma``.
    n_iter_ : int
    converged_ : bool

    References
    ----------
    C. Archambeau, S. Guo and O. Zoeter. Sparse Bayesian multi-task learning.
    NIPS 2011.

    Examples
    --------
    >>> import torch
    >>> from sk_mtbnn.nn.task_priors import GroupSparsityPrior, TaskLikelihood
    >>> w = torch.tensor([[1.0, 0.0, 0.5], [1.2, 0.0, 0.4]], dtype=torch.float64)
    >>> eye = torch.eye(3, dtype=torch.float64).expand(2, 3, 3)
    >>> prior = GroupSparsityPrior(groups=[0, 1, 2]).fit(TaskLikelihood(50.0 * eye, 50.0 * w))
    >>> bool(prior.group_variance_[1] < prior.group_variance_[0])  # input 1 unused
    True
    """

    # The parameters, stored as given and validated in ``fit``.
    groups: ArrayLike | None = None
    _: KW_ONLY
    omega: float = 1.0
    chi: float | None = None
    phi: float | None = None
    task_covariance_prior: float | None = None
    prior_var: float | None = None
    max_iter: int = 200
    tol: float = 1e-4

    def _fit(self, gram: Tensor, shift: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        check_positive_int(self.max_iter, "max_iter")
        check_nonnegative(self.tol, "tol")
        labels = self._group_labels()
        s0 = self.base_var_
        chi = check_nonnegative(1.0 / s0 if self.chi is None else self.chi, "chi")
        phi = check_nonnegative(s0 if self.phi is None else self.phi, "phi")
        gig_moments(self.omega, chi, phi)  # validates the hyper-prior
        nu = self.task_covariance_prior
        nu = check_nonnegative(self.n_tasks_ if nu is None else nu, "task_covariance_prior")

        precision = torch.full((int(labels.max()) + 1,), 1.0 / s0, dtype=_DTYPE)
        task_cov = torch.eye(self.n_tasks_, dtype=_DTYPE)
        self.converged_ = False
        for it in range(1, self.max_iter + 1):
            mean, cov = self._joint_posterior(gram, shift, precision[labels], task_cov)
            new_precision, inverse, new_cov = self._hyper_step(
                mean, cov, task_cov, labels, (chi, phi, nu)
            )
            # Only Sigma / gamma_i enters the prior: judge convergence on that ratio.
            change = _relative_change(
                new_cov.unsqueeze(-1) / new_precision, task_cov.unsqueeze(-1) / precision
            )
            precision, task_cov, self.n_iter_ = new_precision, new_cov, it
            if change <= self.tol:
                self.converged_ = True
                break
        self.groups_, self.group_precision_, self.group_variance_ = labels, precision, inverse
        self.task_covariance_ = task_cov
        mean, cov = self._joint_posterior(gram, shift, precision[labels], task_cov)
        prior_mean, prior_precision = _marginal_priors(gram, shift, mean, cov)
        return prior_mean, prior_precision, correlation(task_cov)

    def _hyper_step(self, mean, cov, task_cov, labels, hyper) -> tuple[Tensor, Tensor, Tensor]:
        """``q(gamma)`` and ``Sigma`` given ``q(W)``: ``(E[gamma], E[1/gamma], Sigma)``."""
        chi, phi, nu = hyper
        n_groups = int(labels.max()) + 1
        sizes = torch.bincount(labels, minlength=n_groups).to(_DTYPE)
        # E[w_j w_j^T] over the tasks, one (T, T) matrix per input j.
        second = torch.einsum("tj,sj->jts", mean, mean) + torch.einsum("tjsj->jts", cov)
        trace = torch.einsum("ts,jst->j", inverse_spd(task_cov), second)
        rate = phi + torch.zeros(n_groups, dtype=_DTYPE).index_add_(0, labels, trace)
        omega = self.omega + 0.5 * self.n_tasks_ * sizes.numpy()
        moments = gig_moments(omega, chi, rate.numpy())
        precision, inverse = (torch.as_tensor(a, dtype=_DTYPE) for a in moments)
        scatter = torch.einsum("j,jts->ts", precision[labels], second)
        eye = torch.eye(self.n_tasks_, dtype=_DTYPE)
        return precision, inverse, _symmetric(nu * eye + scatter) / (nu + self.dim_)

    def _group_labels(self) -> Tensor:
        if self.groups is None:
            return torch.arange(self.dim_)
        groups = np.asarray(self.groups)
        if groups.shape != (self.dim_,):
            raise ValueError(
                f"groups must give one label per head input, shape ({self.dim_},) "
                f"(the bias last), got shape {groups.shape}."
            )
        return torch.as_tensor(np.unique(groups, return_inverse=True)[1].reshape(-1))

    def _joint_posterior(
        self, gram: Tensor, shift: Tensor, input_precision: Tensor, task_cov: Tensor
    ) -> tuple[Tensor, Tensor]:
        """Posterior of all heads: mean ``(T, D)`` and covariance ``(T, D, T, D)``."""
        n, d = self.n_tasks_, self.dim_
        # vec(W) in task-major order: the prior precision is Sigma^-1 (x) diag(gamma).
        joint = torch.kron(inverse_spd(task_cov), torch.diag(input_precision))
        joint = joint + torch.block_diag(*gram)
        cov = inverse_spd(joint, "joint posterior precision")
        mean = _mv(cov, shift.reshape(-1))
        return mean.reshape(n, d), cov.reshape(n, d, n, d)


def _marginal_priors(
    gram: Tensor, shift: Tensor, mean: Tensor, cov: Tensor
) -> tuple[Tensor, Tensor]:
    """Per task, the Gaussian prior whose conditioning gives the marginal ``N(m_t, C_tt)``."""
    marginal = torch.einsum("tdte->tde", cov)
    marginal_precision = inverse_spd(_symmetric(marginal))
    prior_precision = _symmetric(marginal_precision - gram)
    rhs = _mv(marginal_precision, mean) - shift
    prior_mean = torch.linalg.solve(prior_precision, rhs.unsqueeze(-1)).squeeze(-1)
    return prior_mean, prior_precision


def _relative_change(new: Tensor, old: Tensor) -> float:
    return float((new - old).abs().max() / old.abs().max().clamp_min(1e-300))
