"""Common base of the gradient-combination rules (ALGORITHMS.md §3).

An aggregator turns the per-task losses of one batch into ``.grad`` values:
task-specific parameters (branches, heads) always receive their own task's
gradient; the rule decides what the shared parameters receive. Aggregators
know nothing of skorch or of the estimators.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor


class GradientAggregator(ABC):
    """Base class of all gradient-combination rules.

    Subclasses implement :meth:`backward`. :meth:`reset` is called once at the
    start of every fit with the number of labelled training points per task
    and a seeded generator, so a rule may keep per-fit state.

    Examples
    --------
    A rule that follows only the first task's gradient:

    >>> import torch
    >>> from sk_mtbnn.aggregators import GradientAggregator
    >>> class FirstTask(GradientAggregator):
    ...     def backward(self, losses, present, shared_params, task_params):
    ...         losses[0].backward()
    >>> w = torch.tensor([1.0, 1.0], requires_grad=True)
    >>> agg = FirstTask()
    >>> agg.reset([3, 3], torch.Generator())
    >>> agg.backward(torch.stack([2 * w[0], 5 * w[1]]), torch.tensor([True, True]), [w], [])
    >>> w.grad
    tensor([2., 0.])
    """

    def reset(self, n_labelled: Sequence[int], generator: torch.Generator) -> None:
        """Start a new fit: ``n_labelled[t]`` labelled points for task ``t``."""
        self.n_labelled_ = np.asarray(n_labelled, dtype=float)
        self.n_tasks_ = len(self.n_labelled_)
        self.generator_ = generator

    @abstractmethod
    def backward(
        self,
        losses: Tensor,
        present: Tensor,
        shared_params: Sequence[Tensor],
        task_params: Sequence[Tensor],
    ) -> None:
        """Accumulate gradients for one batch.

        Parameters
        ----------
        losses : Tensor of shape (T,)
            Task losses of the batch (any value where ``present`` is False).
        present : bool Tensor of shape (T,)
            Tasks with at least one label in the batch; the others contribute
            no gradient.
        shared_params, task_params : sequences of Tensor
            Parameters shared by all tasks, and parameters that belong to one
            task each (stacked over tasks).
        """

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class JacobianAggregator(GradientAggregator):
    """A rule that maps the Jacobian of the shared parameters to one update.

    :meth:`backward` computes one gradient per present task with respect to
    *all* shared parameters flattened into one vector (the rows of the
    Jacobian), lets :meth:`combine` reduce them to one vector, and writes it
    into ``.grad``. Task-specific parameters receive their own task's
    gradient.

    Examples
    --------
    A rule that sums the task gradients:

    >>> import torch
    >>> from sk_mtbnn.aggregators import JacobianAggregator
    >>> class Sum(JacobianAggregator):
    ...     def combine(self, jacobian):
    ...         return jacobian.sum(0)
    >>> w = torch.tensor([1.0, 1.0], requires_grad=True)
    >>> agg = Sum()
    >>> agg.reset([3, 3], torch.Generator())
    >>> agg.backward(torch.stack([2 * w[0], 5 * w[1]]), torch.tensor([True, True]), [w], [])
    >>> w.grad
    tensor([2., 5.])
    """

    @abstractmethod
    def combine(self, jacobian: Tensor) -> Tensor:
        """Reduce the ``(k, P)`` Jacobian of ``k`` present tasks to ``(P,)``."""

    def backward(self, losses, present, shared_params, task_params) -> None:
        tasks = torch.nonzero(present).flatten().tolist()
        if not tasks:
            return
        shared_params = list(shared_params)
        task_params = list(task_params)
        rows = []
        task_grads = [torch.zeros_like(p) for p in task_params]
        for i, t in enumerate(tasks):
            grads = torch.autograd.grad(
                losses[t],
                shared_params + task_params,
                retain_graph=i < len(tasks) - 1,
                allow_unused=True,
            )
            shared = grads[: len(shared_params)]
            rows.append(torch.cat([_flat(g, p) for g, p in zip(shared, shared_params)]))
            for acc, g in zip(task_grads, grads[len(shared_params) :]):
                if g is not None:
                    acc += g
        update = self.combine(torch.stack(rows))
        offset = 0
        for p in shared_params:
            n = p.numel()
            _accumulate(p, update[offset : offset + n].view_as(p))
            offset += n
        for p, g in zip(task_params, task_grads):
            _accumulate(p, g)


def _flat(grad: Tensor | None, param: Tensor) -> Tensor:
    return (
        torch.zeros(param.numel(), dtype=param.dtype, device=param.device)
        if grad is None
        else grad.reshape(-1)
    )


def _accumulate(param: Tensor, grad: Tensor) -> None:
    if param.grad is None:
        param.grad = grad.detach().clone()
    else:
        param.grad += grad.detach()
