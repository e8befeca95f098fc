"""Linear scalarisation: the gradient of the mean of the task losses."""

from __future__ import annotations

from .base import GradientAggregator


class MeanAggregator(GradientAggregator):
    """Linear scalarisation (``aggregator='mean'``).

    The update is the gradient of ``(1 / T) * sum_t loss_t`` over the tasks
    labelled in the batch (an unlabelled task counts as zero). One backward
    pass, whatever the number of tasks.

    Examples
    --------
    >>> import torch
    >>> from sk_mtbnn.aggregators import MeanAggregator
    >>> w = torch.tensor([1.0, 2.0], requires_grad=True)
    >>> agg = MeanAggregator()
    >>> agg.reset([10, 10], torch.Generator())
    >>> losses = torch.stack([w[0] ** 2, 3 * w[1]])
    >>> agg.backward(losses, torch.tensor([True, True]), [w], [])
    >>> w.grad
    tensor([1.0000, 1.5000])
    """

    def backward(self, losses, present, shared_params, task_params) -> None:
        if bool(present.any()):
            (losses[present].sum() / self.n_tasks_).backward()
