"""Gradient-combination rules for multi-task training.

Pass one of these, or its name, as the ``aggregator`` of an estimator. Every
rule returns the update for the *sum* of the task losses (so all of them
agree when the tasks' gradients agree):

=========================== =================================================
``'mean'``                  :class:`MeanAggregator` (linear scalarisation)
``'pcgrad'``                :class:`PCGrad`
``'task_sampling'``         :class:`TaskSampling` (weighted by label counts)
``'uniform_task_sampling'`` :class:`TaskSampling` ``(weighted=False)``
``'bayesagg'``              :class:`BayesAgg` (BayesAgg-MTL)
torchjd aggregator          wrapped in :class:`TorchJDAggregator`
=========================== =================================================
"""

from __future__ import annotations

import copy

from .base import (
    Aggregator,
    GradientAggregator,
    GradientMoments,
    JacobianAggregator,
    RepresentationAggregator,
)
from .bayesagg import BayesAgg
from .mean import MeanAggregator
from .pcgrad import PCGrad, project_conflicting
from .task_sampling import TaskSampling
from .torchjd import TorchJDAggregator, is_torchjd_aggregator

__all__ = [
    "Aggregator",
    "BayesAgg",
    "GradientAggregator",
    "GradientMoments",
    "JacobianAggregator",
    "MeanAggregator",
    "PCGrad",
    "RepresentationAggregator",
    "TaskSampling",
    "TorchJDAggregator",
    "project_conflicting",
    "resolve_aggregator",
]

_BY_NAME = {
    "mean": MeanAggregator,
    "pcgrad": PCGrad,
    "task_sampling": lambda: TaskSampling(weighted=True),
    "uniform_task_sampling": lambda: TaskSampling(weighted=False),
    "bayesagg": BayesAgg,
}


def resolve_aggregator(spec) -> Aggregator:
    """A fresh aggregator for ``spec`` (a name, an aggregator, or a torchjd one).

    Objects are deep-copied, so fitting never alters what the user passed.

    Parameters
    ----------
    spec : str, Aggregator or torchjd aggregator
        ``"mean"``, ``"pcgrad"``, ``"task_sampling"``, ``"uniform_task_sampling"``,
        ``"bayesagg"``, or an aggregator object (a
        :class:`GradientAggregator` or a :class:`RepresentationAggregator`).

    Returns
    -------
    aggregator : GradientAggregator or RepresentationAggregator

    Examples
    --------
    >>> from sk_mtbnn.aggregators import resolve_aggregator
    >>> resolve_aggregator("pcgrad")
    PCGrad()
    """
    if isinstance(spec, str):
        try:
            return _BY_NAME[spec]()
        except KeyError:
            names = sorted(_BY_NAME)
            raise ValueError(
                f"aggregator must be one of {names}, an sk_mtbnn aggregator or a "
                f"torchjd aggregator; got {spec!r}."
            ) from None
    if isinstance(spec, Aggregator):
        return copy.deepcopy(spec)
    if is_torchjd_aggregator(spec):
        return TorchJDAggregator(copy.deepcopy(spec))
    raise TypeError(
        "aggregator must be a name such as 'mean' or 'pcgrad', an "
        "sk_mtbnn aggregator (GradientAggregator, RepresentationAggregator) or a torchjd "
        f"aggregator; got {type(spec).__name__}."
    )
