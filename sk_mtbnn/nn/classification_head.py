"""Linear classification heads with Gaussian (Laplace / Gauss-Newton) posteriors.

One head per task on a representation ``h`` of width ``H``: a binary task has
one sigmoid logit, a task with ``C > 2`` classes a softmax over ``C`` logits.
Each head's weights ``W_t`` of shape ``(C_t, D)``, ``D = H + 1`` (bias last),
flattened row-major to ``P = C_t D`` entries, get a Gaussian posterior from
the generalised Gauss-Newton matrix (GGN) of the summed negative
log-likelihood and the prior ``N(0, prior_var I)``:

* :meth:`ClassificationHead.posteriors` -- one Newton step around the current
  weights (Section 3.2 of Achituve et al., 2024): the batch posteriors of
  BayesAgg-MTL during training;
* :meth:`ClassificationHead.condition_on` -- the last-layer Laplace
  approximation at the current weights, which :meth:`predict_proba` uses;
* :meth:`ClassificationHead.gradient_moments` -- Monte Carlo moments of each
  task's per-sample gradient ``dl/dh`` under a posterior.

Binary tasks form one group, handled by batched linear algebra; each
multiclass task is a group of its own. Statistics of row chunks add up
(:class:`Curvature`), like :class:`~sk_mtbnn.nn.blr.LinearStats` of the VBLL
heads.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .blr import with_bias


class Curvature(NamedTuple):
    """Per group of heads, ``grad`` ``(k, P)`` and ``ggn`` ``(k, P, P)`` of the summed NLL."""

    grad: tuple[Tensor, ...]
    ggn: tuple[Tensor, ...]

    def __add__(self, other: Curvature) -> Curvature:  # type: ignore[override]
        return Curvature(
            tuple(a + b for a, b in zip(self.grad, other.grad)),
            tuple(a + b for a, b in zip(self.ggn, other.ggn)),
        )


class GaussianPosterior(NamedTuple):
    """``N(mean, precision^-1)`` of ``k`` heads: ``(k, P)``, ``(k, P, P)``, Cholesky factor."""

    mean: Tensor
    precision: Tensor
    cholesky: Tensor


# ------------------------------------------------------------------ curvature
def binary_curvature(h: Tensor, y: Tensor, weight: Tensor) -> tuple[Tensor, Tensor]:
    """Gradient and GGN of the summed NLL of ``k`` binary linear heads at once.

    Parameters
    ----------
    h : Tensor (B, F) or (k, B, F)
        Representation shared by the heads, or one per head.
    y : Tensor (B, k)
        0/1 labels, NaN where missing (those rows do not count for the head).
    weight : Tensor (k, F + 1)
        Current head weights, bias last.

    Returns
    -------
    grad : Tensor (k, F + 1), ggn : Tensor (k, F + 1, F + 1)
        ``sum_n (p_n - y_n) [h_n, 1]`` and ``sum_n p_n (1 - p_n) [h_n, 1] [h_n, 1]^T``
        over each head's labelled rows.
    """
    hb = with_bias(h)
    hb = hb.expand(len(weight), *hb.shape[-2:]) if hb.dim() == 2 else hb  # (k, B, D)
    labelled = ~torch.isnan(y.T)  # (k, B)
    p = torch.sigmoid(torch.einsum("kbd,kd->kb", hb, weight))
    resid = torch.where(labelled, p - torch.nan_to_num(y.T), 0.0)
    curvature = torch.where(labelled, p * (1 - p), 0.0)
    ggn = (curvature.unsqueeze(-1) * hb).transpose(1, 2) @ hb
    return torch.einsum("kb,kbd->kd", resid, hb), ggn


def softmax_curvature(h: Tensor, y: Tensor, weight: Tensor) -> tuple[Tensor, Tensor]:
    """Gradient and GGN of one softmax head's summed NLL, in row-major ``vec(W)`` order.

    ``GGN = sum_n J_n^T H_n J_n`` with ``J_n = I_C (x) [h_n, 1]^T`` and
    ``H_n = diag(p_n) - p_n p_n^T``; ``grad = sum_n J_n^T (p_n - onehot(y_n))``
    (:ref:`alg-bayesagg-classification`). Memory is ``O(B C^2 D)``, never ``O(B D^2)``.

    Parameters
    ----------
    h : Tensor (B, F)
    y : Tensor (B,) of class indices
    weight : Tensor (C, F + 1), bias last.

    Returns
    -------
    grad : Tensor (C (F + 1),), ggn : Tensor (C (F + 1), C (F + 1))
    """
    n_classes, dim = weight.shape
    hb = with_bias(h)
    p = torch.softmax(hb @ weight.T, -1)  # (B, C)
    resid = p - F.one_hot(y, n_classes).to(p.dtype)
    curvature = torch.diag_embed(p) - p.unsqueeze(-1) * p.unsqueeze(-2)  # (B, C, C)
    weighted = curvature.unsqueeze(-1) * hb[:, None, None, :]  # (B, C, C, D)
    blocks = weighted.reshape(len(hb), -1).T @ hb  # (C C D, D): sum_b H_bij h_bd h_be
    ggn = blocks.reshape(n_classes, n_classes, dim, dim).permute(0, 2, 1, 3)
    return (resid.T @ hb).reshape(-1), ggn.reshape(n_classes * dim, n_classes * dim)


def newton_step(
    weight: Tensor, grad: Tensor, ggn: Tensor, prior_mean: Tensor, prior_precision: Tensor
) -> GaussianPosterior:
    """The posterior ``N(W - Lambda^-1 a, Lambda^-1)`` of one Newton step around ``W``.

    ``Lambda = GGN + Lambda_0`` and ``a = grad + Lambda_0 (W - mu_0)``
    (Section 3.2 of Achituve et al., 2024); ``weight``, ``grad`` and ``prior_mean``
    are ``(k, P)`` (a batch of heads) or ``(P,)``.
    """
    w = weight.reshape(grad.shape)
    precision = ggn + prior_precision
    a = grad + (prior_precision @ (w - prior_mean).unsqueeze(-1)).squeeze(-1)
    chol = torch.linalg.cholesky(precision)
    step = torch.cholesky_solve(a.unsqueeze(-1), chol).squeeze(-1)
    return GaussianPosterior(w - step, precision, chol)


def posterior_samples(
    mean: Tensor, cholesky: Tensor, n_samples: int, generator: torch.Generator | None = None
) -> Tensor:
    """Draws of ``N(mean, (L L^T)^-1)``, shape ``(..., J, P)`` for ``mean`` ``(..., P)``.

    With the precision's Cholesky factor ``L``, ``w = mean + L^-T eps`` has
    covariance ``precision^-1``: one triangular solve, no inverse.
    """
    eps = torch.randn(
        (*mean.shape, n_samples), generator=generator, dtype=mean.dtype, device=mean.device
    )
    noise = torch.linalg.solve_triangular(cholesky.transpose(-2, -1), eps, upper=True)
    return (mean.unsqueeze(-1) + noise).transpose(-2, -1)


# ---------------------------------------------------------- gradient moments
def binary_gradient_moments(h: Tensor, y: Tensor, w: Tensor) -> tuple[Tensor, Tensor]:
    """Monte Carlo moments of ``g = w (sigmoid(w^T [h, 1]) - y)`` for ``k`` binary heads.

    With ``J`` posterior draws ``w_j`` and residuals ``r_bj``, ``E[g] = r w / J``
    and ``E[g^2] = r^2 w^2 / J`` are matrix products: no ``(B, J, F)`` tensor.

    Parameters
    ----------
    h : Tensor (B, F)
    y : Tensor (B, k)
        0/1 labels (any value where unlabelled).
    w : Tensor (k, J, F + 1)
        Posterior draws of each head's weights, bias last.

    Returns
    -------
    mu, var : Tensor of shape (B, k, F)
    """
    n_samples = w.shape[1]
    resid = torch.sigmoid(torch.einsum("bd,tjd->tbj", with_bias(h), w)) - y.T.unsqueeze(-1)
    w_h = w[..., :-1]  # (k, J, F)
    mu = resid @ w_h / n_samples  # (k, B, F)
    var = resid.square() @ w_h.square() / n_samples - mu.square()
    return mu.transpose(0, 1), var.transpose(0, 1)


def multiclass_gradient_moments(h: Tensor, y: Tensor, w: Tensor) -> tuple[Tensor, Tensor]:
    """Monte Carlo moments of ``g = sum_c w_c (softmax_c - onehot_c)`` for one softmax head.

    ``E[g_f^2] = sum_{c,c'} E_j[r_bjc r_bjc' w_jcf w_jc'f]``: matrix products over
    ``(j, c, c')``, no ``(B, J, F)`` tensor.

    Parameters
    ----------
    h : Tensor (B, F)
    y : Tensor (B,) of class indices
    w : Tensor (J, C, F + 1)
        Posterior draws of the head weights, bias last.

    Returns
    -------
    mu, var : Tensor of shape (B, F)
    """
    n_samples, n_classes, _ = w.shape
    logits = torch.einsum("bd,jcd->bjc", with_bias(h), w)
    onehot = F.one_hot(y, n_classes).to(w.dtype).unsqueeze(1)
    resid = torch.softmax(logits, -1) - onehot  # (B, J, C)
    w_h = w[..., :-1]  # (J, C, F)
    mu = resid.reshape(len(h), -1) @ w_h.reshape(-1, w_h.shape[-1]) / n_samples
    pairs_r = (resid.unsqueeze(-1) * resid.unsqueeze(-2)).reshape(len(h), -1)  # (B, J C C)
    pairs_w = (w_h.unsqueeze(2) * w_h.unsqueeze(1)).reshape(-1, w_h.shape[-1])  # (J C C, F)
    return mu, pairs_r @ pairs_w / n_samples - mu.square()


def probit_logits(h: Tensor, weight: Tensor, blocks: Tensor) -> Tensor:
    """``mean / sqrt(1 + pi var / 8)`` of the logits ``z = W [h, 1]``, ``(B, C)``.

    ``blocks`` ``(C, D, D)`` are the posterior covariances of the rows of ``W``.
    Applying the sigmoid or softmax gives the probit approximation of the
    posterior predictive (MacKay 1992; its multiclass form: Lu, Ie & Sha
    2020). Mean and standard deviation are homogeneous in ``[h, 1]``, so the
    rows are first scaled to a largest entry of one: inputs far from the data
    (huge ``h``) give the limit instead of an overflow.
    """
    hb = with_bias(h)
    scale = hb.abs().amax(-1, keepdim=True).clamp_min(1.0)
    hs = hb / scale
    var = torch.einsum("bd,cde,be->bc", hs, blocks, hs).clamp_min(0.0)
    return (hs @ weight.T) / torch.sqrt(scale.square().reciprocal() + math.pi * var / 8)


# ---------------------------------------------------------------------- head
class ClassificationHead(nn.Module):
    """Linear classification heads of ``T`` tasks with Gaussian weight posteriors.

    Parameters
    ----------
    in_features : int
        Width ``H`` of the representation.
    n_classes : sequence of int
        Number of classes of each task (at least 2).
    prior_var : float, default=1.0
        Variance of the isotropic prior of the weights (bias included).

    Examples
    --------
    >>> import torch
    >>> head = ClassificationHead(3, [2, 4], prior_var=2.0)
    >>> h = torch.randn(50, 3, generator=torch.Generator().manual_seed(0))
    >>> y = torch.stack([h[:, 0] > 0, h[:, 1].abs() > 0.5], 1).float()
    >>> head.condition_on(head.curvature(h, y))
    >>> [tuple(p.shape) for p in head.predict_proba(h[:5])]
    [(5, 2), (5, 4)]
    """

    def __init__(self, in_features: int, n_classes: Sequence[int], prior_var: float = 1.0) -> None:
        super().__init__()
        self.n_classes = list(n_classes)
        self.n_tasks = len(self.n_classes)
        self.dim = in_features + 1
        self.prior_var = prior_var
        self.linears = nn.ModuleList(
            nn.Linear(in_features, 1 if c == 2 else c) for c in self.n_classes
        )
        binary = [t for t, c in enumerate(self.n_classes) if c == 2]
        #: Tasks whose heads are handled together: all binary tasks, then each multiclass one.
        self.groups = ([binary] if binary else []) + [
            [t] for t, c in enumerate(self.n_classes) if c > 2
        ]
        for t, linear in enumerate(self.linears):
            size = linear.out_features * self.dim
            self.register_buffer(f"covariance_{t}", prior_var * torch.eye(size))

    # ---------------------------------------------------------- weights
    def weights(self, t: int) -> Tensor:
        """Weights of head ``t`` with the bias as last column, ``(C_t, D)``."""
        linear = self.linears[t]
        return torch.cat([linear.weight, linear.bias.unsqueeze(-1)], dim=1)

    def covariance(self, t: int) -> Tensor:
        """Posterior covariance of head ``t``'s flattened weights (after :meth:`condition_on`)."""
        return getattr(self, f"covariance_{t}")

    def _group_weights(self, group: list[int]) -> Tensor:
        """``(k, P)`` flattened current weights of a group's heads, detached."""
        return torch.stack([self.weights(t).detach().reshape(-1) for t in group])

    def forward(self, h: Tensor) -> list[Tensor]:
        """Per task, logits ``(B, C_t)`` from a shared ``(B, H)`` or a ``(T, B, H)`` ``h``."""
        if h.dim() == 2:
            return [linear(h) for linear in self.linears]
        return [linear(h[t]) for t, linear in enumerate(self.linears)]

    # -------------------------------------------------------- posteriors
    def curvature(self, h: Tensor, y: Tensor) -> Curvature:
        """Gradient and GGN of each group's summed NLL at the current weights.

        ``h`` is ``(B, H)`` (shared) or ``(T, B, H)`` (one per task); ``y``
        ``(B, T)`` holds class indices, NaN where missing. Sums over row
        chunks add up.
        """
        grads, ggns = [], []
        for group in self.groups:
            weight = self._group_weights(group)
            if self.n_classes[group[0]] == 2:
                h_g = h if h.dim() == 2 else h[group]
                grad, ggn = binary_curvature(h_g, y[:, group].to(weight.dtype), weight)
            else:
                t = group[0]
                rows = ~torch.isnan(y[:, t])
                h_t = (h if h.dim() == 2 else h[t])[rows]
                grad, ggn = softmax_curvature(
                    h_t, y[rows, t].long(), weight.reshape(self.n_classes[t], -1)
                )
                grad, ggn = grad.unsqueeze(0), ggn.unsqueeze(0)
            grads.append(grad)
            ggns.append(ggn)
        return Curvature(tuple(grads), tuple(ggns))

    def isotropic_prior(self) -> list[tuple[Tensor, Tensor]]:
        """Per group, the mean ``(k, P)`` and precision ``(k, P, P)`` of ``N(0, prior_var I)``."""
        prior = []
        for group in self.groups:
            w = self._group_weights(group)
            eye = torch.eye(w.shape[1], dtype=w.dtype, device=w.device)
            prior.append((torch.zeros_like(w), (eye / self.prior_var).expand(len(w), -1, -1)))
        return prior

    def posteriors(self, curvature: Curvature, prior=None) -> list[GaussianPosterior]:
        """Per group, one Newton step around the current weights (isotropic prior by default)."""
        prior = self.isotropic_prior() if prior is None else prior
        return [
            newton_step(self._group_weights(group), grad, ggn, *p)
            for group, grad, ggn, p in zip(self.groups, curvature.grad, curvature.ggn, prior)
        ]

    def condition_on(self, curvature: Curvature) -> None:
        """Set each head's covariance to that of the Laplace approximation at its weights.

        ``(GGN + I / prior_var)^-1``, the GGN summed over the rows the
        curvature was gathered on; the posterior mean stays the current weights.
        """
        with torch.no_grad():
            for group, ggn in zip(self.groups, curvature.ggn):
                eye = torch.eye(ggn.shape[-1], dtype=ggn.dtype, device=ggn.device)
                precision = ggn + eye / self.prior_var
                cov = torch.cholesky_inverse(torch.linalg.cholesky(precision))
                for i, t in enumerate(group):
                    self.covariance(t).copy_(cov[i])

    # -------------------------------------------------------- prediction
    def predict_proba(self, h: Tensor) -> list[Tensor]:
        """Posterior predictive class probabilities per task, ``(B, C_t)`` (probit approximation).

        ``h`` is ``(B, H)`` (shared) or ``(T, B, H)`` (one per task).
        """
        out = []
        for t, linear in enumerate(self.linears):
            n_out = linear.out_features
            cov = self.covariance(t).reshape(n_out, self.dim, n_out, self.dim)
            blocks = torch.diagonal(cov, dim1=0, dim2=2).permute(2, 0, 1)  # (C, D, D)
            z = probit_logits(h if h.dim() == 2 else h[t], self.weights(t), blocks)
            if n_out == 1:
                p = torch.sigmoid(z)
                out.append(torch.cat([1 - p, p], dim=1))
            else:
                out.append(torch.softmax(z, dim=1))
        return out

    # -------------------------------------------------- gradient moments
    def gradient_moments(
        self,
        h: Tensor,
        y: Tensor,
        posteriors: Sequence[GaussianPosterior],
        n_samples: int,
        generator: torch.Generator | None = None,
    ) -> tuple[Tensor, Tensor]:
        """Monte Carlo mean and variance of each task's per-sample ``dl/dh``, ``(B, T, H)``.

        ``n_samples`` draws of every head's weights from ``posteriors`` (one
        per group, :meth:`posteriors`); the moments of binary heads are those
        of ``w (sigmoid(z) - y)``, of softmax heads of ``sum_c w_c (softmax_c -
        onehot_c)`` (Section 3.2 of Achituve et al., 2024). Where a task has no
        label the mean is 0 and the variance 1 (ignored by the aggregation).
        """
        labelled = ~torch.isnan(y)
        shape = (len(h), self.n_tasks, h.shape[1])
        mu, var = h.new_zeros(shape), h.new_ones(shape)
        for group, post in zip(self.groups, posteriors):
            w = posterior_samples(post.mean, post.cholesky, n_samples, generator)  # (k, J, P)
            if self.n_classes[group[0]] == 2:
                mu[:, group], var[:, group] = binary_gradient_moments(
                    h, torch.nan_to_num(y[:, group]), w
                )
                continue
            t = group[0]
            rows = labelled[:, t]
            if bool(rows.any()):
                mu[rows, t], var[rows, t] = multiclass_gradient_moments(
                    h[rows], y[rows, t].long(), w[0].reshape(n_samples, self.n_classes[t], -1)
                )
        return mu, var
