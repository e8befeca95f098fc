"""Linear scalarisation: the gradient of the sum of the task losses."""

from __future__ import annotations

from .base import GradientAggregator


class MeanAggregator(GradientAggregator):
    """Linear scalarisation (``aggregator='mean'``).

    The update is the gradient of ``sum_t loss_t`` over the tasks labelled in
    the batch, each ``loss_t`` the mean over that task's labelled rows: the
    convention of every aggregator (equal weights; the name says that every
    task counts the same, not that the losses are divided by their number).
    One backward pass, whatever the number of tasks.

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
    tensor([2., 3.])
    """

    def backward(self, losses, present, shared_params, task_params) -> None:
        if bool(present.any()):
            losses[present].sum().backward()
