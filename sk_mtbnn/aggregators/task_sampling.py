"""Task sampling: each step trains one task."""

from __future__ import annotations

import torch

from .base import GradientAggregator


class TaskSampling(GradientAggregator):
    """One task per step (``'task_sampling'`` / ``'uniform_task_sampling'``).

    At every step one of the ``k`` tasks labelled in the batch is drawn, with
    probability proportional to its number of labelled training points
    (``weighted=True``) or uniformly, and the step follows ``k`` times that
    task's loss only. With uniform draws the step's expectation is then the
    gradient of the sum of the task losses (the convention of every
    aggregator); with weighted draws it is the gradient of
    ``sum_t k p_t loss_t``, weights ``k p_t`` that average one.

    Parameters
    ----------
    weighted : bool, default=True
        Draw tasks in proportion to their number of labels.

    Examples
    --------
    >>> import torch
    >>> w = torch.tensor([1.0, 1.0], requires_grad=True)
    >>> agg = TaskSampling(weighted=True)
    >>> agg.reset([100, 0], torch.Generator().manual_seed(0))
    >>> agg.backward(torch.stack([w[0], w[1]]), torch.tensor([True, True]), [w], [])
    >>> w.grad  # task 1 has no labels, so task 0 is always drawn (twice: two tasks)
    tensor([2., 0.])
    """

    def __init__(self, weighted: bool = True) -> None:
        self.weighted = weighted

    def backward(self, losses, present, shared_params, task_params) -> None:
        if not bool(present.any()):
            return
        probs = present.to(torch.float64)
        if self.weighted:
            probs = probs * torch.as_tensor(self.n_labelled_, dtype=torch.float64)
        if float(probs.sum()) == 0.0:
            probs = present.to(torch.float64)
        t = int(torch.multinomial(probs, 1, generator=self.generator_))
        (losses[t] * int(present.sum())).backward()

    def __repr__(self) -> str:
        return f"TaskSampling(weighted={self.weighted})"
