"""PCGrad: projecting conflicting gradients (Yu et al., NeurIPS 2020)."""

from __future__ import annotations

import torch
from torch import Tensor

from .base import JacobianAggregator


def project_conflicting(jacobian: Tensor, order: list[list[int]] | None = None) -> Tensor:
    """The PCGrad update ``sum_t g_t'`` for the rows ``g_t`` of ``jacobian``.

    For each task ``t``, in the given order of the other tasks ``j``: if
    ``g_t' . g_j < 0`` then ``g_t' -= (g_t' . g_j) / ||g_j||^2 g_j``, always
    projecting against the *original* ``g_j`` (Algorithm 1 of the paper).

    Parameters
    ----------
    jacobian : Tensor of shape (k, P)
        One flattened gradient per task.
    order : list of list of int, optional
        ``order[t]`` is the order in which task ``t`` visits the others;
        default ascending.

    Examples
    --------
    The reference values of :ref:`alg-pcgrad`:

    >>> import torch
    >>> project_conflicting(torch.tensor([[1.0, 0.0], [-1.0, 1.0]]))
    tensor([0.5000, 1.5000])
    """
    k = jacobian.shape[0]
    sq_norms = jacobian.square().sum(-1)
    projected = jacobian.clone()
    for t in range(k):
        others = order[t] if order is not None else range(k)
        for j in others:
            if j == t or sq_norms[j] == 0:
                continue
            dot = projected[t] @ jacobian[j]
            if dot < 0:
                projected[t] -= dot / sq_norms[j] * jacobian[j]
    return projected.sum(0)


class PCGrad(JacobianAggregator):
    """PCGrad over all shared parameters (``aggregator='pcgrad'``).

    Each task's gradient is projected onto the normal plane of every other
    task's gradient it conflicts with, visiting the others in a fresh random
    order (drawn from the fit's seeded generator), and the projections are
    summed. Unlike the original research code, which projected each
    parameter tensor separately, in place and in a fixed order, the
    projection acts on the gradient over all shared parameters at once.

    Examples
    --------
    >>> import torch
    >>> agg = PCGrad()
    >>> agg.reset([5, 5], torch.Generator().manual_seed(0))
    >>> agg.combine(torch.tensor([[1.0, 0.0], [-1.0, 1.0]]))
    tensor([0.5000, 1.5000])
    """

    def combine(self, jacobian: Tensor) -> Tensor:
        k = jacobian.shape[0]
        order = [torch.randperm(k, generator=self.generator_).tolist() for _ in range(k)]
        return project_conflicting(jacobian, order)
