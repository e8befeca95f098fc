"""The private skorch net of the multi-task estimators, and its two training steps.

Customised only at skorch's documented override points: ``train_step_single``
and ``get_loss``. The step depends on the kind of aggregator:

* a :class:`~sk_mtbnn.aggregators.GradientAggregator` receives the task losses
  and writes the gradients of the parameters (:meth:`MultiTaskNet.parameter_step`);
* a :class:`~sk_mtbnn.aggregators.RepresentationAggregator` (BayesAgg-MTL)
  combines per-sample gradient moments on the shared representation, supplied
  by the heads (:meth:`MultiTaskNet.representation_step`).

:class:`MultiTaskNet` trains the VBLL network
(:class:`~sk_mtbnn.nn.network.MultiTaskNetwork`); subclasses for other heads
override its hooks ``shared_representation``, ``representation_losses`` and
``gradient_moments``.
"""

from __future__ import annotations

import numpy as np
import torch
from skorch import NeuralNet
from skorch.dataset import unpack_data
from skorch.utils import to_tensor
from torch import Tensor, nn

from ..aggregators.base import GradientMoments, RepresentationAggregator
from ..nn.blr import with_bias
from ..nn.heads import masked_task_mean
from .callbacks import diverged_error


class TaskLosses(nn.Module):
    """Per-task negative ELBO of a batch of a VBLL head.

    ``loss_t = mean over task t's labelled rows of -E_q[log p(y | phi)]
    + reg_weight_t * (KL(q || p) - log p(noise))``, the VBLL objective of
    Harrison, Willes & Snoek (2024). Rows where ``y`` is NaN are unlabelled for
    that task. Returns the losses ``(T,)`` and the tasks with at least one
    label in the batch.
    """

    def __init__(self, reg_weight: Tensor) -> None:
        super().__init__()
        self.register_buffer("reg_weight", torch.as_tensor(reg_weight, dtype=torch.float32))

    def forward(self, head: nn.Module, phi: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        labelled = ~torch.isnan(y)
        nll = head.expected_nll(phi, torch.where(labelled, y, torch.zeros_like(y)))
        data, present = masked_task_mean(nll, labelled)
        return data + self.reg_weight.to(data.dtype) * head.regularizer(), present

    def validation_loss(self, head: nn.Module, phi: Tensor, y: Tensor) -> Tensor:
        """Mean predictive NLL per task over labelled rows, summed over tasks."""
        labelled = ~torch.isnan(y)
        nll = head.predictive_nll(phi, torch.where(labelled, y, torch.zeros_like(y)))
        per_task, present = masked_task_mean(nll, labelled)
        return per_task[present].sum()


def regression_gradient_moments(
    h: Tensor, y: Tensor, mean: Tensor, cov: Tensor
) -> tuple[Tensor, Tensor]:
    """Mean and variance of ``g = d (y - w^T [h, 1])^2 / dh`` under ``w ~ N(mean, cov)``.

    Per dimension ``d``, ``g_d = 2 a b`` with ``a = w_d`` and
    ``b = w^T [h, 1] - y`` jointly Gaussian: means ``m_d`` and ``r``, variances
    ``S_dd`` and ``q = [h, 1]^T S [h, 1]``, covariance ``c_d = (S [h, 1])_d``.
    So ``E[g_d] = 2 (m_d r + c_d)`` (Eq. 4 of Achituve et al., 2024, with the
    bias) and, the variance of a product of jointly Gaussian variables with its
    cross term completed to a square,

    ``Var[g_d] = 4 [(r sqrt(S_dd) + m_d c_d / sqrt(S_dd))^2
    + m_d^2 (q - c_d^2 / S_dd) + S_dd q + c_d^2]``,

    a sum of non-negative terms (``q - c_d^2 / S_dd >= 0`` by Cauchy-Schwarz).
    ``E[g^2] - E[g]^2`` would cancel in float32 when the posterior is tight.
    O(D) memory per sample and task: no ``D x D`` tensor per sample.

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
    c = torch.einsum("tde,be->btd", cov, hb)  # S h, (B, T, D)
    r = (hb @ mean.T - y).unsqueeze(-1)  # (B, T, 1)
    q = (c * hb.unsqueeze(1)).sum(-1, keepdim=True).clamp_min(0.0)  # h^T S h, (B, T, 1)
    s_dd = torch.diagonal(cov, dim1=-2, dim2=-1).clamp_min(0.0)  # (T, D)
    sd = s_dd.sqrt()
    positive = sd > 0
    ratio = torch.where(positive, c / torch.where(positive, sd, 1.0), 0.0)  # c_d / sqrt(S_dd)
    e_g = 2.0 * (mean * r + c)
    var = 4.0 * (
        (r * sd + mean * ratio).square()
        + mean.square() * (q - ratio.square()).clamp_min(0.0)
        + s_dd * q
        + c.square()
    )
    return e_g[..., :-1], var[..., :-1]


class MultiTaskNet(NeuralNet):
    """skorch ``NeuralNet`` whose train step combines task gradients.

    The criterion is called as ``criterion_(head, outputs, y)`` and returns
    the task losses ``(T,)`` and the tasks present in the batch; its
    ``validation_loss(head, outputs, y)`` is the loss on held-out rows.

    Parameters
    ----------
    aggregator : GradientAggregator or RepresentationAggregator
        Decides the update of the shared (backbone) parameters.
    aggregator_seed : int
        Seeds the aggregator's generator, reset at the start of training.
    **kwargs
        Passed to :class:`skorch.NeuralNet`.
    """

    def __init__(self, *args, aggregator=None, aggregator_seed=0, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.aggregator = aggregator
        self.aggregator_seed = aggregator_seed

    def on_train_begin(self, net, X=None, y=None, **kwargs) -> None:
        """Reset the aggregator with the labels per task of the training rows."""
        super().on_train_begin(net, X=X, y=y, **kwargs)
        n_labelled = (~np.isnan(np.asarray(y, dtype=float))).sum(0)
        generator = torch.Generator().manual_seed(int(self.aggregator_seed))
        self.aggregator.reset(n_labelled, generator)

    def on_epoch_end(self, net, **kwargs) -> None:
        """Tell the aggregator that an epoch ended."""
        super().on_epoch_end(net, **kwargs)
        self.aggregator.end_epoch()

    def shared_parameters(self) -> list[Tensor]:
        return list(self.module_.backbone.parameters())

    def task_parameters(self) -> list[Tensor]:
        """Every trainable parameter outside the backbone (branches, heads).

        Fixed parameters (a network's private random features) are left out.
        """
        return [
            p
            for name, p in self.module_.named_parameters()
            if p.requires_grad and not name.startswith("backbone.")
        ]

    # ---------------------------------------------------------------- steps
    def train_step_single(self, batch, **fit_params):
        self._set_training(True)
        Xi, yi = unpack_data(batch)
        x = to_tensor(Xi, device=self.device)
        y = to_tensor(yi, device=self.device)
        if isinstance(self.aggregator, RepresentationAggregator):
            return self.representation_step(x, y)
        return self.parameter_step(x, y, **fit_params)

    def parameter_step(self, x: Tensor, y: Tensor, **fit_params) -> dict:
        """The aggregator turns the batch's task losses into parameter gradients."""
        outputs = self.infer(x, **fit_params)
        losses, present = self.criterion_(self.module_.head, outputs, y)
        self.aggregator.backward(losses, present, self.shared_parameters(), self.task_parameters())
        return {"loss": losses[present].sum().detach(), "y_pred": outputs}

    def representation_step(self, x: Tensor, y: Tensor) -> dict:
        """BayesAgg-MTL's step on the shared representation ``h`` (Algorithm 1 of the paper).

        The heads' own losses on the detached ``h`` train the heads (when they
        have trainable parameters) and give ``dl/dh`` of their sum. The
        backbone receives ``h.backward(g)``: during the warm-up ``g`` is that
        gradient of the summed task losses; afterwards ``g`` is the
        aggregator's combination of the heads' per-sample gradient moments,
        divided by the batch size.
        """
        h = self.shared_representation(x)
        if not bool(torch.isfinite(h).all()):
            # A step too large sent the representation to infinity: say so before
            # a head's Cholesky factorisation fails on it.
            raise diverged_error(self)
        leaf = h.detach().requires_grad_()
        losses, present, y_pred = self.representation_losses(leaf, y)
        if not bool(present.any()):
            return {"loss": losses.sum().detach() * 0, "y_pred": y_pred}
        losses[present].sum().backward()  # heads' own gradients; leaf.grad = sum_t dl_t/dh
        if self.aggregator.warming_up:
            g = leaf.grad
        else:
            with torch.no_grad():
                g = self.aggregator.combine(self.gradient_moments(leaf.detach(), y)) / len(x)
        h.backward(gradient=g.to(h.dtype))
        return {"loss": losses[present].sum().detach(), "y_pred": y_pred}

    # ------------------------------------------------- representation hooks
    def shared_representation(self, x: Tensor) -> Tensor:
        """The last shared representation ``(B, H)`` of a batch, with its graph."""
        module = self.module_
        return module.backbone.shared_forward(x[:, module.backbone_columns])

    def representation_losses(self, h: Tensor, y: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """The heads' task losses ``(T,)`` on ``h``, the tasks present, and the outputs."""
        phi = h.unsqueeze(0).expand(self.module_.n_tasks, *h.shape)
        losses, present = self.criterion_(self.module_.head, phi, y)
        return losses, present, phi

    def gradient_moments(self, h: Tensor, y: Tensor) -> GradientMoments:
        """Closed-form moments of the VBLL data term's gradient under ``q(w) = N(m, S)``.

        The data term ``(y - w^T h)^2 / (2 sigma_t^2)`` scales the squared-loss
        gradient by ``1 / (2 sigma_t^2)``.
        """
        head = self.module_.head
        labelled = ~torch.isnan(y)
        mu, var = regression_gradient_moments(
            h, torch.where(labelled, y, 0.0), head.mean, head.covariance.matrix()
        )
        scale = (0.5 / head.noise_var())[None, :, None]
        return GradientMoments(mu * scale, var * scale.square(), labelled, "regression")

    # ----------------------------------------------------------------- loss
    def get_loss(self, y_pred, y_true, X=None, training=False):
        y_true = to_tensor(y_true, device=self.device)
        if training:
            losses, present = self.criterion_(self.module_.head, y_pred, y_true)
            return losses[present].sum()
        return self.criterion_.validation_loss(self.module_.head, y_pred, y_true)
