"""Common bases of the task-combination rules.

Two protocols, one per place where the tasks meet:

* :class:`GradientAggregator` -- in parameter space. The rule receives the
  per-task losses of a batch and writes ``.grad`` of the shared parameters;
  task-specific parameters (branches, heads) always receive their own task's
  gradient. :class:`JacobianAggregator` is the rule that reduces the Jacobian
  of the shared parameters to one vector.
* :class:`RepresentationAggregator` -- in the space of the last shared
  representation ``h``. Every head supplies, per sample, the mean and variance
  of its task's gradient with respect to ``h`` (:class:`GradientMoments`);
  the rule combines them into one gradient per sample, which the training
  step back-propagates through the backbone (BayesAgg-MTL).

Convention of every rule (:ref:`alg-gradients`): the update is the one for
the **sum** of the task losses. When the tasks' gradients agree (are identical), every rule returns
their sum; with SGD all rules then take the same step. Aggregators know
nothing of skorch, heads or estimators.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import ClassVar, NamedTuple

import numpy as np
import torch
from torch import Tensor


class Aggregator:
    """What every task-combination rule has: per-fit state and the epoch clock.

    :meth:`reset` is called once at the start of every fit with the number of
    labelled training points per task and a seeded generator; :meth:`end_epoch`
    after every epoch.

    Examples
    --------
    >>> import torch
    >>> from sk_mtbnn.aggregators import MeanAggregator
    >>> agg = MeanAggregator()
    >>> agg.reset([10, 5], torch.Generator().manual_seed(0))
    >>> agg.end_epoch()
    >>> agg.records_task_weights
    False
    """

    #: Whether the rule records ``task_weights_`` (per epoch, one weight per task).
    records_task_weights: ClassVar[bool] = False

    def reset(self, n_labelled: Sequence[int], generator: torch.Generator) -> None:
        """Start a new fit: ``n_labelled[t]`` labelled points for task ``t``."""
        self.n_labelled_ = np.asarray(n_labelled, dtype=float)
        self.n_tasks_ = len(self.n_labelled_)
        self.generator_ = generator

    def end_epoch(self) -> None:
        """Close an epoch (a no-op unless the rule keeps per-epoch state)."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class GradientAggregator(Aggregator, ABC):
    """Base class of the rules that combine task gradients in parameter space.

    Subclasses implement :meth:`backward`.

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


class GradientMoments(NamedTuple):
    """Per-sample moments of each task's gradient with respect to ``h``.

    Parameters
    ----------
    mean : Tensor of shape (B, T, H)
        Expected gradient of each sample and task.
    var : Tensor of shape (B, T, H)
        Its variance (the diagonal of the covariance).
    labelled : Tensor of shape (B, T)
        Where a task has a label (its moments elsewhere are ignored).
    loss : {"regression", "classification"}
        The loss family, for rules that treat them differently.

    Examples
    --------
    >>> import torch
    >>> from sk_mtbnn.aggregators import GradientMoments
    >>> m = GradientMoments(
    ...     torch.zeros(4, 2, 3), torch.ones(4, 2, 3), torch.ones(4, 2, dtype=torch.bool),
    ...     "regression",
    ... )
    >>> m.mean.shape, m.loss
    (torch.Size([4, 2, 3]), 'regression')
    """

    mean: Tensor
    var: Tensor
    labelled: Tensor
    loss: str


class RepresentationAggregator(Aggregator, ABC):
    """Base class of the rules that combine task gradients on the shared representation.

    The training step computes the shared representation ``h`` of a batch,
    lets every head supply the :class:`GradientMoments` of its task's
    per-sample gradient ``dl/dh``, and back-propagates ``combine(moments) / B``
    through the backbone. During the warm-up (:attr:`warming_up`) the step
    follows the plain gradient of the sum of the task losses instead.

    Examples
    --------
    A rule that sums the mean gradients, ignoring their variance:

    >>> import torch
    >>> from sk_mtbnn.aggregators.base import GradientMoments, RepresentationAggregator
    >>> class SumOfMeans(RepresentationAggregator):
    ...     def combine(self, moments):
    ...         return (moments.mean * moments.labelled.unsqueeze(-1)).sum(1)
    >>> mean = torch.tensor([[[1.0, 0.0], [0.0, 2.0]]])  # one sample, two tasks
    >>> labelled = torch.tensor([[True, True]])
    >>> moments = GradientMoments(mean, torch.ones(1, 2, 2), labelled, "regression")
    >>> SumOfMeans().combine(moments)
    tensor([[1., 2.]])
    """

    @property
    def warming_up(self) -> bool:
        """True while the step should follow the plain gradient of the summed losses."""
        return False

    @abstractmethod
    def combine(self, moments: GradientMoments) -> Tensor:
        """The gradient ``(B, H)`` for the sum of the task losses, per sample.

        A sample without any label receives zero.
        """


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
