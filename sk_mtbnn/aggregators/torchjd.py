"""Adapter for the aggregators of the ``torchjd`` package (optional extra)."""

from __future__ import annotations

from torch import Tensor

from .base import JacobianAggregator


def is_torchjd_aggregator(obj) -> bool:
    """Whether ``obj`` is a ``torchjd.aggregation.Aggregator`` (without importing torchjd)."""
    return any(
        cls.__module__.startswith("torchjd") and cls.__name__ == "Aggregator"
        for cls in type(obj).__mro__
    )


class TorchJDAggregator(JacobianAggregator):
    """Use any ``torchjd`` aggregator (MGDA, CAGrad, IMTL-G, UPGrad, ...).

    The Jacobian of the ``k`` present tasks over all shared parameters is
    passed to the torchjd aggregator. Most torchjd aggregators (``Mean``,
    ``UPGrad``, ``MGDA``, ``IMTLG``, ``DualProj``, ``CAGrad``, ...) return a
    combination at the scale of the mean of the task gradients; the adapter
    multiplies their result by ``k``, so that, like every sk_mtbnn aggregator,
    the update is the one for the sum of the task losses (``UPGrad`` on
    non-conflicting gradients returns their sum). torchjd's ``Sum`` and
    ``PCGrad`` already sum: for those use ``"mean"`` or ``"pcgrad"``.

    Parameters
    ----------
    aggregator : torchjd.aggregation.Aggregator
        For instance ``torchjd.aggregation.UPGrad()``.

    Examples
    --------
    >>> import torch
    >>> from torchjd.aggregation import MGDA
    >>> agg = TorchJDAggregator(MGDA())
    >>> agg.combine(torch.tensor([[1.0, 0.0], [0.0, 1.0]]))  # 2 x min-norm convex combination
    tensor([1., 1.])
    """

    def __init__(self, aggregator) -> None:
        self.aggregator = aggregator

    def combine(self, jacobian: Tensor) -> Tensor:
        return jacobian.shape[0] * self.aggregator(jacobian)

    def __repr__(self) -> str:
        return f"TorchJDAggregator({self.aggregator!r})"
