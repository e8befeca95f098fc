"""BayesAgg-MTL: Bayesian uncertainty over the task heads weights the task gradients.

Achituve, Diamant, Netzer, Chechik & Fetaya, "Bayesian Uncertainty for Gradient
Aggregation in Multi-Task Learning", ICML 2024; formulas of ALGORITHMS.md §4.

A Gaussian posterior over each task's linear head induces a distribution over
the per-sample gradient ``g = dl/dh`` of that task's loss with respect to the
last shared representation ``h``. Its mean and (diagonal) variance are matched,
and the task gradients are combined per sample and per dimension by precision
weighting; the result is back-propagated through the shared network with
``h.backward(gradient=g / batch_size)``.

Unlike the original code, the regression moments include the head's bias (the
features get a constant 1 appended) and are computed in O(D) memory per sample
and task: no ``D x D`` tensor per sample is formed.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from ..nn.blr import with_bias
from .base import GradientAggregator

#: Floor of the gradient variances before the precision exponent (ALGORITHMS.md §4).
MIN_VARIANCE = 1e-8


# --------------------------------------------------------------------------- moments
def regression_gradient_moments(
    h: Tensor, y: Tensor, mean: Tensor, cov: Tensor
) -> tuple[Tensor, Tensor]:
    """Mean and variance of ``g = d (y - w^T [h, 1])^2 / dh`` under ``w ~ N(mean, cov)``.

    Closed form (ALGORITHMS.md §4) with ``A = cov + mean mean^T``:
    ``E[g] = 2 (A h - y mu)``, ``E[g g^T] = 4 (y^2 A - 2 y E[(w^T h) w w^T] +
    E[(w^T h)^2 w w^T])``, of which only the diagonal is formed.

    Parameters
    ----------
    h : Tensor of shape (B, F)
        Shared representation (without the bias input).
    y : Tensor of shape (B, T)
        Targets (any finite value where unlabelled; mask afterwards).
    mean : Tensor of shape (T, F + 1)
        Posterior means of the heads, bias last.
    cov : Tensor of shape (T, F + 1, F + 1)
        Posterior covariances.

    Returns
    -------
    mu, var : Tensor of shape (B, T, F)
        Per sample and task, the mean and variance of each gradient entry.
    """
    hb = with_bias(h)  # (B, D)
    a = torch.einsum("tde,be->btd", cov, hb)  # Sigma h, (B, T, D)
    s = hb @ mean.T  # mu^T h, (B, T)
    q = (a * hb.unsqueeze(1)).sum(-1)  # h^T Sigma h, (B, T)
    Ah = a + s.unsqueeze(-1) * mean  # (B, T, D)
    diag_cov = torch.diagonal(cov, dim1=-2, dim2=-1)  # (T, D)
    diag_A = diag_cov + mean.square()
    centred = diag_cov - mean.square()  # diag(Sigma - mu mu^T)
    yy = y.unsqueeze(-1)
    e_g = 2.0 * (Ah - yy * mean)
    third = 2.0 * mean * Ah + s.unsqueeze(-1) * centred  # diag E[(w^T h) w w^T]
    fourth = 2.0 * Ah.square() + s.square().unsqueeze(-1) * centred + q.unsqueeze(-1) * diag_A
    e_gg = 4.0 * (yy.square() * diag_A - 2.0 * yy * third + fourth)
    var = e_gg - e_g.square()
    return e_g[..., :-1], var[..., :-1]


def _weight_samples(mean: Tensor, cov: Tensor, n: int, generator) -> Tensor:
    """``n`` draws of ``N(mean, cov)`` (last two axes), shape ``(n, *mean.shape)``."""
    chol = torch.linalg.cholesky(cov)
    eps = torch.randn((n, *mean.shape), generator=generator, dtype=mean.dtype, device=mean.device)
    return mean + torch.einsum("...ij,n...j->n...i", chol, eps)


def binary_gradient_moments(
    h: Tensor, y: Tensor, mean: Tensor, cov: Tensor, n_samples: int, generator=None
) -> tuple[Tensor, Tensor]:
    """Monte Carlo moments of ``g = w (sigmoid(w^T [h, 1]) - y)`` for one binary task.

    Parameters
    ----------
    h : Tensor (B, F); y : Tensor (B,) of 0/1; mean : Tensor (F + 1,);
    cov : Tensor (F + 1, F + 1); n_samples : int (J).

    Returns
    -------
    mu, var : Tensor of shape (B, F)
    """
    w = _weight_samples(mean, cov, n_samples, generator)  # (J, D)
    z = with_bias(h) @ w.T  # (B, J)
    resid = torch.sigmoid(z) - y.unsqueeze(-1)  # (B, J)
    g = resid.unsqueeze(-1) * w[:, :-1]  # (B, J, F)
    mu = g.mean(1)
    return mu, (g.square().mean(1) - mu.square())


def multiclass_gradient_moments(
    h: Tensor, y: Tensor, mean: Tensor, cov: Tensor, n_samples: int, generator=None
) -> tuple[Tensor, Tensor]:
    """Monte Carlo moments of ``g = sum_c w_c (softmax_c - onehot_c)`` for one task.

    Parameters
    ----------
    h : Tensor (B, F); y : Tensor (B,) of class indices; mean : Tensor (C, F + 1);
    cov : Tensor (C (F + 1), C (F + 1)) over the row-major flattened weights;
    n_samples : int (J).

    Returns
    -------
    mu, var : Tensor of shape (B, F)
    """
    n_classes = mean.shape[0]
    w = _weight_samples(mean.reshape(-1), cov, n_samples, generator)
    w = w.reshape(n_samples, n_classes, -1)  # (J, C, D)
    logits = torch.einsum("bd,jcd->bjc", with_bias(h), w)
    resid = torch.softmax(logits, -1) - torch.nn.functional.one_hot(y, n_classes).unsqueeze(1)
    g = torch.einsum("bjc,jcf->bjf", resid.to(w.dtype), w[..., :-1])
    mu = g.mean(1)
    return mu, (g.square().mean(1) - mu.square())


# ------------------------------------------------------------------------ posteriors
def classification_posterior(
    h: Tensor,
    y: Tensor,
    weight: Tensor,
    prior_mean: Tensor,
    prior_precision: Tensor,
) -> tuple[Tensor, Tensor]:
    """One Newton / generalised Gauss-Newton step around the current head weights.

    ``Lambda = sum_n J_n^T H_n J_n + Lambda_0`` with ``H_n = diag(p) - p p^T``
    (softmax) or ``p (1 - p)`` (sigmoid), ``a = grad L(W) + Lambda_0 (W - mu_0)``,
    posterior ``N(W - Lambda^-1 a, Lambda^-1)`` (ALGORITHMS.md §4). ``L`` is the
    summed negative log-likelihood of the batch.

    Parameters
    ----------
    h : Tensor (B, F)
        Representation of the labelled rows.
    y : Tensor (B,)
        Labels: 0/1 for a binary head, class indices for a multiclass head.
    weight : Tensor (C, F + 1)
        Current head weights, bias last; ``C = 1`` means a binary (sigmoid) head.
    prior_mean : Tensor (C (F + 1),); prior_precision : Tensor (C (F + 1), C (F + 1))

    Returns
    -------
    mean : Tensor (C (F + 1),), precision : Tensor (C (F + 1), C (F + 1))
    """
    hb = with_bias(h)
    logits = hb @ weight.T  # (B, C)
    if weight.shape[0] == 1:  # binary: sigmoid likelihood
        p = torch.sigmoid(logits)
        resid = p - y.unsqueeze(-1).to(p.dtype)
        curvature = (p * (1 - p)).unsqueeze(-1)  # (B, 1, 1)
    else:
        p = torch.softmax(logits, -1)
        resid = p - torch.nn.functional.one_hot(y, weight.shape[0]).to(p.dtype)
        curvature = torch.diag_embed(p) - p.unsqueeze(-1) * p.unsqueeze(-2)  # (B, C, C)
    # J_n = I_C (x) h_n^T, so J^T H J = H (x) h h^T, in row-major vec(W) order.
    ggn = torch.einsum("bij,bd,be->idje", curvature, hb, hb).reshape(
        prior_precision.shape
    )
    grad = (resid.T @ hb).reshape(-1)  # d L / d vec(W)
    precision = ggn + prior_precision
    a = grad + prior_precision @ (weight.reshape(-1) - prior_mean)
    step = torch.cholesky_solve(a.unsqueeze(-1), torch.linalg.cholesky(precision)).squeeze(-1)
    return weight.reshape(-1) - step, precision


# ----------------------------------------------------------------------- aggregation
def precision_weighted_mean(
    mu: Tensor, var: Tensor, labelled: Tensor, s: Tensor | float
) -> tuple[Tensor, Tensor]:
    """Combine task gradients per sample and dimension by precision weighting.

    ``g_bd = sum_t (mu_btd / v_btd) / sum_t (1 / v_btd)`` with
    ``v = max(var, 1e-8)^s`` (Eq. 7 of the paper); tasks without a label at
    sample ``b`` take no part there.

    Parameters
    ----------
    mu, var : Tensor of shape (B, T, D)
        Gradient means and variances.
    labelled : bool Tensor of shape (B, T)
    s : float or Tensor of shape (T,)
        Precision exponent in (0, 1]; ``s -> 0`` gives the plain mean.

    Returns
    -------
    g : Tensor of shape (B, D)
        Combined gradient (zero for a sample without labels).
    weights : Tensor of shape (B, T, D)
        The weights ``alpha_btd`` (zero for unlabelled tasks).
    """
    s = torch.as_tensor(s, dtype=var.dtype, device=var.device)
    exponent = s.reshape(1, -1, 1) if s.dim() else s
    precision = var.clamp_min(MIN_VARIANCE).pow(-exponent) * labelled.unsqueeze(-1)
    total = precision.sum(1, keepdim=True)
    weights = torch.where(total > 0, precision / total.clamp_min(1e-300), 0.0)
    mu = torch.where(labelled.unsqueeze(-1), mu, 0.0)
    return (weights * mu).sum(1), weights


class BayesAgg(GradientAggregator):
    """BayesAgg-MTL gradient aggregation (``aggregator='bayesagg'``).

    Parameters
    ----------
    gamma : float, default=1.0
        Prior variance of the head weights, ``N(0, gamma I)``, of the
        posteriors BayesAgg forms itself (in
        :class:`~sk_mtbnn.BayesAggMTLRegressor` and
        :class:`~sk_mtbnn.BayesAggMTLClassifier`). The paper's experiments
        used 5e-3 on their (large) representations.
    tau : float, default=1.0
        Standard deviation of the observation noise of the regression
        posteriors during training (targets are standardised).
    s_regression : float, default=0.5
        Precision exponent for regression tasks, in (0, 1].
    s_classification : float, default=0.5
        Precision exponent for classification tasks, in (0, 1].
    n_mc_samples : int, default=64
        Monte Carlo samples of the classification moments (the paper's 1024
        is far too many on a CPU).
    ls_epochs : int, default=1
        Epochs of linear scalarisation before BayesAgg starts (features for
        the Bayesian heads to work with).

    Attributes
    ----------
    task_weights_ : list of ndarray of shape (n_tasks,)
        Per epoch after the warm-up, each task's weight ``alpha`` averaged over
        the samples where it is labelled and over the dimensions (Figure 3 of
        the paper); NaN for a task never labelled in the epoch.

    Examples
    --------
    >>> import torch
    >>> from sk_mtbnn.aggregators.bayesagg import precision_weighted_mean
    >>> mu = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])  # one sample, two tasks
    >>> var = torch.tensor([[[1.0, 100.0], [100.0, 1.0]]])  # each sure of one dimension
    >>> g, _ = precision_weighted_mean(mu, var, torch.tensor([[True, True]]), s=1.0)
    >>> g.round(decimals=3)
    tensor([[0.9900, 0.9900]])
    """

    space = "representation"

    def __init__(
        self,
        gamma: float = 1.0,
        tau: float = 1.0,
        s_regression: float = 0.5,
        s_classification: float = 0.5,
        n_mc_samples: int = 64,
        ls_epochs: int = 1,
    ) -> None:
        self.gamma = gamma
        self.tau = tau
        self.s_regression = s_regression
        self.s_classification = s_classification
        self.n_mc_samples = n_mc_samples
        self.ls_epochs = ls_epochs

    def reset(self, n_labelled, generator) -> None:
        super().reset(n_labelled, generator)
        self.epoch_ = 0
        self.task_weights_ = []
        self._weight_sum = np.zeros(self.n_tasks_)
        self._weight_count = np.zeros(self.n_tasks_)

    @property
    def warming_up(self) -> bool:
        """True during the linear-scalarisation epochs."""
        return self.epoch_ < self.ls_epochs

    def combine(self, mu: Tensor, var: Tensor, labelled: Tensor, s: Tensor | float) -> Tensor:
        """Precision-weighted gradient ``(B, D)``; records the weights for inspection."""
        g, weights = precision_weighted_mean(mu, var, labelled, s)
        lab = labelled.to(weights.dtype)
        self._weight_sum += (weights.mean(-1) * lab).sum(0).detach().cpu().numpy()
        self._weight_count += lab.sum(0).cpu().numpy()
        return g

    def end_epoch(self) -> None:
        """Close an epoch: record the mean weights, advance the warm-up counter."""
        if not self.warming_up:
            with np.errstate(invalid="ignore"):
                self.task_weights_.append(self._weight_sum / self._weight_count)
        self._weight_sum[:] = 0.0
        self._weight_count[:] = 0.0
        self.epoch_ += 1

    def backward(self, losses, present, shared_params, task_params) -> None:
        """Linear scalarisation; the BayesAgg step itself works on the representation."""
        if bool(present.any()):
            losses[present].sum().backward()

    def __repr__(self) -> str:
        return (
            f"BayesAgg(gamma={self.gamma}, tau={self.tau}, s_regression={self.s_regression}, "
            f"s_classification={self.s_classification}, n_mc_samples={self.n_mc_samples}, "
            f"ls_epochs={self.ls_epochs})"
        )


def check_bayesagg(agg: BayesAgg) -> None:
    """Validate the hyper-parameters of a BayesAgg aggregator, with clear errors."""
    for name in ("gamma", "tau"):
        value = getattr(agg, name)
        if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
            raise ValueError(f"BayesAgg {name} must be a positive number; got {value!r}.")
    for name in ("s_regression", "s_classification"):
        value = getattr(agg, name)
        if not (isinstance(value, (int, float)) and 0 < value <= 1):
            raise ValueError(f"BayesAgg {name} must be in (0, 1]; got {value!r}.")
    for name, low in (("n_mc_samples", 1), ("ls_epochs", 0)):
        value = getattr(agg, name)
        if not (isinstance(value, int) and not isinstance(value, bool) and value >= low):
            raise ValueError(f"BayesAgg {name} must be an integer >= {low}; got {value!r}.")
