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


def posterior_samples(
    mean: Tensor, precision: Tensor, n_samples: int, generator=None, *, cholesky=None
) -> Tensor:
    """Draws of ``N(mean, precision^-1)``, shape ``(..., J, D)`` for ``mean`` ``(..., D)``.

    With ``precision = L L^T``, ``w = mean + L^-T eps`` has covariance
    ``precision^-1``: one triangular solve, no inverse. Pass ``cholesky=L``
    when the factor is already known.
    """
    chol = torch.linalg.cholesky(precision) if cholesky is None else cholesky
    eps = torch.randn(
        (*mean.shape, n_samples), generator=generator, dtype=mean.dtype, device=mean.device
    )
    noise = torch.linalg.solve_triangular(chol.transpose(-2, -1), eps, upper=True)
    return (mean.unsqueeze(-1) + noise).transpose(-2, -1)


def binary_gradient_moments(h: Tensor, y: Tensor, w: Tensor) -> tuple[Tensor, Tensor]:
    """Monte Carlo moments of ``g = w (sigmoid(w^T [h, 1]) - y)`` for binary tasks.

    With ``J`` posterior draws ``w_j`` and residuals ``r_bj``, ``E[g] = r w / J``
    and ``E[g^2] = r^2 w^2 / J`` are matrix products: no ``(B, J, F)`` tensor.

    Parameters
    ----------
    h : Tensor (B, F)
        Shared representation.
    y : Tensor (B, T)
        0/1 labels of ``T`` binary tasks (any value where unlabelled).
    w : Tensor (T, J, F + 1)
        Posterior draws of each task's head weights, bias last.

    Returns
    -------
    mu, var : Tensor of shape (B, T, F)
    """
    n_samples = w.shape[1]
    resid = torch.sigmoid(torch.einsum("bd,tjd->tbj", with_bias(h), w)) - y.T.unsqueeze(-1)
    w_h = w[..., :-1]  # (T, J, F)
    mu = resid @ w_h / n_samples  # (T, B, F)
    var = resid.square() @ w_h.square() / n_samples - mu.square()
    return mu.transpose(0, 1), var.transpose(0, 1)


def multiclass_gradient_moments(h: Tensor, y: Tensor, w: Tensor) -> tuple[Tensor, Tensor]:
    """Monte Carlo moments of ``g = sum_c w_c (softmax_c - onehot_c)`` for one task.

    ``E[g_f^2] = sum_{c,c'} E_j[r_bjc r_bjc' w_jcf w_jc'f]``: matrix products over
    ``(j, c, c')``, no ``(B, J, F)`` tensor.

    Parameters
    ----------
    h : Tensor (B, F)
        Shared representation.
    y : Tensor (B,)
        Class indices.
    w : Tensor (J, C, F + 1)
        Posterior draws of the head weights, bias last.

    Returns
    -------
    mu, var : Tensor of shape (B, F)
    """
    n_samples, n_classes, _ = w.shape
    logits = torch.einsum("bd,jcd->bjc", with_bias(h), w)
    onehot = torch.nn.functional.one_hot(y, n_classes).to(w.dtype).unsqueeze(1)
    resid = torch.softmax(logits, -1) - onehot  # (B, J, C)
    w_h = w[..., :-1]  # (J, C, F)
    mu = resid.reshape(len(h), -1) @ w_h.reshape(-1, w_h.shape[-1]) / n_samples
    pairs_r = (resid.unsqueeze(-1) * resid.unsqueeze(-2)).reshape(len(h), -1)  # (B, J C C)
    pairs_w = (w_h.unsqueeze(2) * w_h.unsqueeze(1)).reshape(-1, w_h.shape[-1])  # (J C C, F)
    return mu, pairs_r @ pairs_w / n_samples - mu.square()


# ------------------------------------------------------------------------ posteriors
def binary_curvature(h: Tensor, y: Tensor, weight: Tensor) -> tuple[Tensor, Tensor]:
    """Gradient and GGN of the summed NLL of ``T`` binary linear heads at once.

    Parameters
    ----------
    h : Tensor (B, F)
        Shared representation.
    y : Tensor (B, T)
        0/1 labels, NaN where missing (those rows do not count for the task).
    weight : Tensor (T, F + 1)
        Current head weights, bias last.

    Returns
    -------
    grad : Tensor (T, F + 1), ggn : Tensor (T, F + 1, F + 1)
        ``sum_n (p_n - y_n) [h_n, 1]`` and ``sum_n p_n (1 - p_n) [h_n, 1] [h_n, 1]^T``
        over each task's labelled rows.
    """
    hb = with_bias(h)
    labelled = ~torch.isnan(y)
    p = torch.sigmoid(hb @ weight.T)  # (B, T)
    resid = torch.where(labelled, p - torch.nan_to_num(y), 0.0)
    curvature = torch.where(labelled, p * (1 - p), 0.0)
    ggn = (curvature.T.unsqueeze(-1) * hb).transpose(1, 2) @ hb  # (T, D, D)
    return resid.T @ hb, ggn


def classification_curvature(h: Tensor, y: Tensor, weight: Tensor) -> tuple[Tensor, Tensor]:
    """Gradient and generalised Gauss-Newton matrix of one linear head's summed NLL.

    ``GGN = sum_n J_n^T H_n J_n`` with ``J_n = I_C (x) [h_n, 1]^T`` and
    ``H_n = diag(p) - p p^T`` (softmax) or ``p (1 - p)`` (sigmoid, ``C = 1``);
    ``grad = sum_n J_n^T (p_n - y_n)``. Both in row-major ``vec(W)`` order, so
    sums over row chunks add up. Memory is ``O(B C^2 D)``, never ``O(B D^2)``.

    Parameters
    ----------
    h : Tensor (B, F); y : Tensor (B,) labels (0/1, or class indices);
    weight : Tensor (C, F + 1), bias last.

    Returns
    -------
    grad : Tensor (C (F + 1),), ggn : Tensor (C (F + 1), C (F + 1))
    """
    n_classes, dim = weight.shape
    if n_classes == 1:
        grad, ggn = binary_curvature(h, y.to(h.dtype).unsqueeze(-1), weight)
        return grad[0], ggn[0]
    hb = with_bias(h)
    p = torch.softmax(hb @ weight.T, -1)  # (B, C)
    resid = p - torch.nn.functional.one_hot(y, n_classes).to(p.dtype)
    curvature = torch.diag_embed(p) - p.unsqueeze(-1) * p.unsqueeze(-2)  # (B, C, C)
    weighted = curvature.unsqueeze(-1) * hb[:, None, None, :]  # (B, C, C, D)
    blocks = weighted.reshape(len(hb), -1).T @ hb  # (C C D, D): sum_b H_bij h_bd h_be
    ggn = blocks.reshape(n_classes, n_classes, dim, dim).permute(0, 2, 1, 3)
    return (resid.T @ hb).reshape(-1), ggn.reshape(n_classes * dim, n_classes * dim)


def newton_step(weight, grad, ggn, prior_mean, prior_precision) -> tuple[Tensor, Tensor]:
    """Posterior ``N(W - Lambda^-1 a, Lambda^-1)`` of ALGORITHMS.md §4.

    ``Lambda = GGN + Lambda_0`` and ``a = grad + Lambda_0 (W - mu_0)``; works on
    one head (vectors ``(P,)``) or a batch of heads (``(T, P)``).
    Returns the mean and the precision.
    """
    mean, precision, _ = factorised_newton_step(weight, grad, ggn, prior_mean, prior_precision)
    return mean, precision


def factorised_newton_step(weight, grad, ggn, prior_mean, prior_precision):
    """:func:`newton_step` that also returns the precision's Cholesky factor."""
    w = weight.reshape(grad.shape)
    precision = ggn + prior_precision
    a = grad + (prior_precision @ (w - prior_mean).unsqueeze(-1)).squeeze(-1)
    chol = torch.linalg.cholesky(precision)
    step = torch.cholesky_solve(a.unsqueeze(-1), chol).squeeze(-1)
    return w - step, precision, chol


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
    posterior ``N(W - Lambda^-1 a, Lambda^-1)`` (ALGORITHMS.md §4), with ``L``
    the summed negative log-likelihood of the rows given.

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
    grad, ggn = classification_curvature(h, y, weight)
    return newton_step(weight, grad, ggn, prior_mean, prior_precision)


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
    tau : float or "auto", default="auto"
        Standard deviation of the observation noise of the regression
        posteriors during training (targets are standardised). ``"auto"``
        starts at 1 and sets it, after every epoch, to the residual standard
        deviation of the full-data posterior.
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
        tau: float | str = "auto",
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
        if name == "tau" and value == "auto":
            continue
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
