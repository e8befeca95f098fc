"""The private skorch net that trains a multi-task VBLL network.

Customised only at skorch's documented override points: ``train_step_single``
(the task losses go through a gradient aggregator instead of one
``loss.backward()``) and ``get_loss`` (the validation loss is the predictive
negative log-likelihood).
"""

from __future__ import annotations

import torch
from skorch import NeuralNet
from skorch.dataset import unpack_data
from skorch.utils import to_tensor
from torch import Tensor, nn

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


class MultiTaskNet(NeuralNet):
    """skorch ``NeuralNet`` whose train step combines task gradients.

    Parameters
    ----------
    aggregator : GradientAggregator
        Decides the update of the shared (backbone) parameters.
    **kwargs
        Passed to :class:`skorch.NeuralNet`.
    """

    def __init__(self, *args, aggregator=None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.aggregator = aggregator

    def shared_parameters(self) -> list[Tensor]:
        return list(self.module_.backbone.parameters())

    def task_parameters(self) -> list[Tensor]:
        return list(self.module_.branches.parameters()) + list(self.module_.head.parameters())

    def train_step_single(self, batch, **fit_params):
        self._set_training(True)
        Xi, yi = unpack_data(batch)
        phi = self.infer(Xi, **fit_params)
        yi = to_tensor(yi, device=self.device)
        losses, present = self.criterion_(self.module_.head, phi, yi)
        self.aggregator.backward(losses, present, self.shared_parameters(), self.task_parameters())
        return {"loss": losses[present].sum().detach(), "y_pred": phi}

    def get_loss(self, y_pred, y_true, X=None, training=False):
        y_true = to_tensor(y_true, device=self.device)
        if training:
            losses, present = self.criterion_(self.module_.head, y_pred, y_true)
            return losses[present].sum()
        return predictive_nll(self.module_.head, y_pred, y_true)
