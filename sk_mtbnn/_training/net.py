"""The private skorch net that trains a multi-task VBLL network.

Customised only at skorch's documented override points: ``train_step_single``
(the task losses go through a gradient aggregator instead of one
``loss.backward()``) and ``get_loss`` (the validation loss is the predictive
negative log-likelihood).
"""

from __future__ import annotations

import numpy as np
import torch
from skorch import NeuralNet
from skorch.dataset import unpack_data
from skorch.utils import to_tensor
from torch import Tensor, nn

from ..aggregators.bayesagg import regression_gradient_moments
from ..nn.heads import masked_task_mean


class TaskLosses(nn.Module):
    """Per-task negative ELBO of a batch, ALGORITHMS.md §1.

    ``loss_t = mean over task t's labelled rows of -E_q[log p(y | phi)]
    + reg_weight_t * (KL(q || p) - log p(noise))``. Rows where ``y`` is NaN are
    unlabelled for that task. Returns the losses ``(T,)`` and the tasks with
    at least one label in the batch.
    """

    def __init__(self, reg_weight: Tensor) -> None:
        super().__init__()
        self.register_buffer("reg_weight", torch.as_tensor(reg_weight, dtype=torch.float32))

    def forward(self, head: nn.Module, phi: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        labelled = ~torch.isnan(y)
        nll = head.expected_nll(phi, torch.where(labelled, y, torch.zeros_like(y)))
        data, present = masked_task_mean(nll, labelled)
        return data + self.reg_weight.to(data.dtype) * head.regularizer(), present


def predictive_nll(head: nn.Module, phi: Tensor, y: Tensor) -> Tensor:
    """Mean predictive NLL per task over labelled rows, summed over tasks."""
    labelled = ~torch.isnan(y)
    nll = head.predictive_nll(phi, torch.where(labelled, y, torch.zeros_like(y)))
    per_task, present = masked_task_mean(nll, labelled)
    return per_task[present].sum()


def reset_aggregator(net, y) -> None:
    """Reset ``net.aggregator`` for training targets ``y`` (NaN where missing)."""
    n_labelled = (~np.isnan(np.asarray(y, dtype=float))).sum(0)
    net.aggregator.reset(n_labelled, torch.Generator().manual_seed(int(net.aggregator_seed)))


class MultiTaskNet(NeuralNet):
    """skorch ``NeuralNet`` whose train step combines task gradients.

    Parameters
    ----------
    aggregator : GradientAggregator
        Decides the update of the shared (backbone) parameters. An aggregator
        with ``space = "representation"`` (BayesAgg) combines per-sample
        gradients with respect to the shared representation instead.
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
        reset_aggregator(self, y)

    def on_epoch_end(self, net, **kwargs) -> None:
        """Tell an aggregator with per-epoch state (BayesAgg) that an epoch ended."""
        super().on_epoch_end(net, **kwargs)
        end_epoch = getattr(self.aggregator, "end_epoch", None)
        if end_epoch is not None:
            end_epoch()

    def shared_parameters(self) -> list[Tensor]:
        return list(self.module_.backbone.parameters())

    def task_parameters(self) -> list[Tensor]:
        return list(self.module_.branches.parameters()) + list(self.module_.head.parameters())

    def train_step_single(self, batch, **fit_params):
        self._set_training(True)
        Xi, yi = unpack_data(batch)
        x = to_tensor(Xi, device=self.device)
        y = to_tensor(yi, device=self.device)
        if getattr(self.aggregator, "space", "parameters") == "representation":
            return self.representation_step(x, y)
        phi = self.infer(x, **fit_params)
        losses, present = self.criterion_(self.module_.head, phi, y)
        self.aggregator.backward(losses, present, self.shared_parameters(), self.task_parameters())
        return {"loss": losses[present].sum().detach(), "y_pred": phi}

    def representation_step(self, x: Tensor, y: Tensor) -> dict:
        """BayesAgg on the VBLL heads (ALGORITHMS.md §4), heads on the shared output.

        The heads are trained by their own loss on the detached representation
        ``h``; the backbone receives ``h.backward(g / B)`` with ``g`` the
        precision-weighted combination of the per-sample gradients of each
        task's data term ``(y - w^T h)^2 / (2 sigma_t^2)``, whose moments under
        the head posterior ``q(w) = N(m, S)`` are exact. During the warm-up
        epochs ``g`` is the gradient of the mean task loss.
        """
        module = self.module_
        h = module.backbone.shared_forward(x[:, module.backbone_columns])
        leaf = h.detach().requires_grad_()
        phi = leaf.unsqueeze(0).expand(module.n_tasks, *leaf.shape)
        losses, present = self.criterion_(module.head, phi, y)
        if not bool(present.any()):
            return {"loss": losses.sum().detach() * 0, "y_pred": phi}
        losses[present].sum().backward()  # heads' own gradients; leaf.grad = sum_t dl_t/dh
        agg = self.aggregator
        if agg.warming_up:
            g = leaf.grad / module.n_tasks
        else:
            head = module.head
            labelled = ~torch.isnan(y)
            with torch.no_grad():
                mu, var = regression_gradient_moments(
                    leaf.detach(),
                    torch.where(labelled, y, torch.zeros_like(y)),
                    head.mean,
                    head.covariance.matrix(),
                )
                scale = (0.5 / head.noise_var())[None, :, None]
                g = agg.combine(mu * scale, var * scale**2, labelled, agg.s_regression)
                g = g / len(x)
        h.backward(gradient=g)
        return {"loss": losses[present].sum().detach(), "y_pred": phi}

    def get_loss(self, y_pred, y_true, X=None, training=False):
        y_true = to_tensor(y_true, device=self.device)
        if training:
            losses, present = self.criterion_(self.module_.head, y_pred, y_true)
            return losses[present].sum()
        return predictive_nll(self.module_.head, y_pred, y_true)
