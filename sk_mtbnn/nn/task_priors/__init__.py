"""Task-relatedness priors over the task heads, fitted by empirical Bayes.

Each prior is fitted to the tasks' Gaussian likelihoods of their head
weights (:class:`TaskLikelihood`), returns every task's Gaussian prior for
conditioning its head (:meth:`TaskPrior.prior`, for
:func:`sk_mtbnn.nn.blr.posterior`) and a fitted ``task_similarity_`` ``(T, T)``:

* :class:`ClusteringPrior` -- mixture of Gaussians (Bakker & Heskes, 2003);
* :class:`GatingPrior` -- mixing weights from task features (ibid.);
* :class:`HierarchicalPrior` -- a learnt shared mean and covariance;
* :class:`GumbelSoftmaxPrior` -- a mixture of the other tasks' posteriors
  (Shen et al., 2021);
* :class:`GroupSparsityPrior` -- Gaussian scale mixture with a GIG hyper-prior
  over groups of head inputs (Archambeau et al., 2011).
"""

from ._base import TaskLikelihood, TaskPrior
from .gating import GatingPrior
from .group_sparsity import GroupSparsityPrior, gig_moments
from .mixture import ClusteringPrior, HierarchicalPrior
from .relatedness import GumbelSoftmaxPrior

#: The priors by the name a ``head_prior=`` option would use.
TASK_PRIORS = {
    "clustering": ClusteringPrior,
    "gating": GatingPrior,
    "hierarchical": HierarchicalPrior,
    "gumbel_softmax": GumbelSoftmaxPrior,
    "group_sparsity": GroupSparsityPrior,
}


def make_task_prior(name: str, **params) -> TaskPrior:
    """Build the task prior called ``name`` (a key of :data:`TASK_PRIORS`).

    Parameters
    ----------
    name : str
        One of ``"clustering"``, ``"gating"``, ``"hierarchical"``,
        ``"gumbel_softmax"``, ``"group_sparsity"``.
    **params
        Constructor parameters of that prior.

    Returns
    -------
    prior : TaskPrior

    Examples
    --------
    >>> make_task_prior("hierarchical", covariance_type="diag")
    HierarchicalPrior(covariance_type='diag')
    """
    if name not in TASK_PRIORS:
        raise ValueError(f"head prior must be one of {sorted(TASK_PRIORS)}, got {name!r}.")
    return TASK_PRIORS[name](**params)


__all__ = [
    "TASK_PRIORS",
    "ClusteringPrior",
    "GatingPrior",
    "GroupSparsityPrior",
    "GumbelSoftmaxPrior",
    "HierarchicalPrior",
    "TaskLikelihood",
    "TaskPrior",
    "gig_moments",
    "make_task_prior",
]
