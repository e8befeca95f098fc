"""Cluster-based expected-gradient-length sampling (Xiong et al. 2025; ``docs/algorithms.rst``)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.metrics import pairwise_distances_argmin
from sklearn.utils import check_random_state

from .._docstrings import fill_doc
from .._validation import check_choice, check_fraction, check_positive_float, check_positive_int
from ._diversity import exclusion_box, extend_picks, first_allowed
from ._labelled import labelled_set
from ._model import pool_scores, prepare_pool, standardised_inputs, task_columns
from .egl import expected_gradient_length


@dataclass(eq=False, repr=False)
class ClusterEGLSampling:
    """Cluster-based expected-gradient-length query strategy for modAL.

    After Xiong et al. (2025) (``docs/algorithms.rst``, cluster-based EGL):

    1. ``sigma(x)``: predictive standard deviation on the pool, epistemic
       (default) or total, in standardised units, summed over the tasks
       (or one task);
    2. centre candidates: the top ``candidate_fraction`` of the pool by
       ``sigma``; cluster members: the top ``member_fraction``;
    3. centres, greedily: first the highest ``sigma``, then the candidate
       maximising ``d_min / max d_min + sigma / max sigma`` (``d_min``: distance
       to the centres so far, standardised inputs); members join their
       nearest centre;
    4. each member is scored by its expected gradient length of the data-fit
       term (never the KL regulariser), summed over the scored tasks: for
       each task, the expected norm of the gradient of that task's data-fit
       term (:func:`expected_gradient_length`); in closed form for the heads'
       means, or by autograd over all parameters with pseudo-labels;
    5. candidates close to a labelled point (a learner's training row with
       labels for every scored task) or to a point already picked this round
       are skipped. Close means inside the box of half-widths ``thr_d``
       (:func:`distance_thresholds` of the labelled inputs) along every
       dimension, all in the model's standardised inputs, so the choice does
       not depend on the units of a column; along a dimension where
       ``thr_d`` is zero (labelled inputs constant along it), only an exact
       tie is close. A batch never holds two rows closer than that;
    6. each cluster contributes its best remaining member; an empty cluster,
       or one whose members are all excluded, gives its place to the best
       remaining point of the whole member set (then of the pool) -- never a
       silent index 0. Only when fewer than ``n_instances`` pool rows lie
       outside the exclusion is it relaxed, for the rest of the batch.

    Returns ``n_instances`` distinct pool indices, as modAL's
    ``ActiveLearner.query`` expects of a query strategy.

    Parameters
    ----------
    task : int or None, default=None
        Score one task, or sum over all tasks.
    candidate_fraction : float, default=0.2
        Fraction of the pool (highest ``sigma``) eligible as cluster centres.
    member_fraction : float, default=0.4
        Fraction of the pool (highest ``sigma``) assigned to clusters.
    uncertainty : {"epistemic", "total"}, default="epistemic"
        Which predictive standard deviation ranks the pool.
    egl : {"head", "full"}, default="head"
        Closed-form EGL over the head means, or autograd over all parameters
        (both sum the per-task expected gradient norms over the scored tasks).
    n_pseudo_labels : int, default=16
        Pseudo-labels per member for ``egl="full"``.
    alpha : float, default=0.02
        Scale of the exclusion threshold (0 keeps out exact duplicates only).
    random_state : int, RandomState instance or None, default=None
        Seeds the pseudo-labels of ``egl="full"``.
    verbose : int or None, default=None
        2 or more: a progress bar while a pool of several chunks is scored;
        None: the model's ``verbose`` decides (as ``fit``'s progress bar).

    References
    ----------
    .. [1] F. Xiong, B. Wang, C. Li, J. Yin, H. Wang. "A comprehensive multi-source
       uncertainty quantification method for RANS-CFD based on sparse
       multi-task deep active learning", Aerospace Science and Technology
       165:110483, 2025.

    Examples
    --------
    >>> import numpy as np
    >>> from modAL.models import ActiveLearner
    >>> from sk_mtbnn import SparseMultiTaskBNNRegressor
    >>> from sk_mtbnn.active_learning import ClusterEGLSampling
    >>> rng = np.random.RandomState(0)
    >>> X_pool = rng.uniform(-3, 3, size=(500, 1))
    >>> learner = ActiveLearner(
    ...     SparseMultiTaskBNNRegressor(max_epochs=30, random_state=0),
    ...     query_strategy=ClusterEGLSampling(random_state=0),
    ...     X_training=X_pool[:10], y_training=np.sin(X_pool[:10, 0]),
    ... )
    >>> idx, X_new = learner.query(X_pool, n_instances=3)
    >>> len(set(idx.tolist()))
    3
    >>> learner.teach(X_new, np.sin(X_new[:, 0]))
    """

    # The parameters, stored as given (validated when called), in this order.
    task: int | None = None
    candidate_fraction: float = 0.2
    member_fraction: float = 0.4
    uncertainty: str = "epistemic"
    egl: str = "head"
    n_pseudo_labels: int = 16
    alpha: float = 0.02
    random_state: int | np.random.RandomState | None = None
    verbose: int | None = None

    def __repr__(self) -> str:
        keys = ("task", "candidate_fraction", "member_fraction", "uncertainty", "egl", "alpha")
        return f"ClusterEGLSampling({', '.join(f'{k}={getattr(self, k)!r}' for k in keys)})"

    def _check(self, n_instances):
        n_instances = check_positive_int(n_instances, "n_instances")
        check_fraction(self.candidate_fraction, "candidate_fraction")
        check_fraction(self.member_fraction, "member_fraction")
        check_choice(self.uncertainty, "uncertainty", ("epistemic", "total"))
        check_choice(self.egl, "egl", ("head", "full"))
        check_positive_int(self.n_pseudo_labels, "n_pseudo_labels")
        check_positive_float(self.alpha, "alpha", allow_zero=True)
        return n_instances

    @fill_doc
    def __call__(self, learner, X_pool, n_instances=1, X_labelled=None):
        """Indices of the pool rows to label next.

        Parameters
        ----------
        learner : modAL learner or fitted sk_mtbnn regressor
            The model (a learner's ``X_training`` are the labelled inputs).
        %(X_pool)s
        %(X_labelled)s

        %(query_returns)s
        """
        n_instances = self._check(n_instances)
        estimator, transform, X, n_instances = prepare_pool(learner, X_pool, n_instances)
        tasks = task_columns(self.task, estimator.n_tasks_)
        labelled = labelled_set(learner, estimator, transform, tasks, X_labelled)
        scores = pool_scores(estimator, X, self.verbose)
        sigma = scores.summed_std(self.uncertainty, tasks)

        order = np.argsort(-sigma, kind="stable")
        n_cand = max(n_instances, int(np.ceil(self.candidate_fraction * len(X))))
        n_memb = max(n_cand, int(np.ceil(self.member_fraction * len(X))))
        candidates, members = order[:n_cand], order[:n_memb]
        Z = standardised_inputs(estimator, X)
        centres = self._centres(Z, sigma, candidates, n_instances)
        nearest = pairwise_distances_argmin(Z[members], Z[centres])  # members join their centre

        if self.egl == "head":
            egl = scores.egl[members][:, tasks].sum(1)
        else:
            egl = expected_gradient_length(
                estimator,
                X[members],
                task=self.task,
                parameters="all",
                n_pseudo_labels=self.n_pseudo_labels,
                random_state=check_random_state(self.random_state),
                verbose=self.verbose,
            )
        box = exclusion_box(Z, labelled.Z, self.alpha)
        return self._pick(box, members, nearest, egl, order, n_instances)

    @staticmethod
    def _centres(Z, sigma, candidates, n):
        chosen = [candidates[0]]
        d_min = np.linalg.norm(Z[candidates] - Z[candidates[0]], axis=1)
        s = sigma[candidates]
        s_max = s.max() if s.max() > 0 else 1.0
        while len(chosen) < n:
            d_max = d_min.max() if d_min.max() > 0 else 1.0
            value = d_min / d_max + s / s_max
            value[np.isin(candidates, chosen)] = -np.inf
            best = int(np.argmax(value))
            chosen.append(candidates[best])
            d_min = np.minimum(d_min, np.linalg.norm(Z[candidates] - Z[candidates[best]], axis=1))
        return np.array(chosen)

    @staticmethod
    def _pick(box, members, nearest, egl, order, n):
        by_egl = np.argsort(-egl, kind="stable")
        ranked, cluster_of = members[by_egl], nearest[by_egl]
        picked: list[int] = []
        for c in range(n):
            rows = ranked[cluster_of == c]
            position = first_allowed(rows, picked, box)
            if position is not None:
                picked.append(int(rows[position]))
        # An empty or fully excluded cluster gives its place to the best
        # remaining member by EGL, then to the rest of the pool by sigma; only
        # when too few rows lie outside the exclusion is it relaxed.
        for rows, check in ((ranked, box), (order, box), (order, None)):
            extend_picks(picked, rows, n, check)
        return np.array(picked, dtype=int)


@fill_doc
def cluster_egl_sampling(learner, X_pool, n_instances=1, **options):
    """Cluster-based EGL query strategy for modAL (function form).

    ``cluster_egl_sampling(learner, X_pool, n_instances, **options)`` is
    ``ClusterEGLSampling(**options)(learner, X_pool, n_instances)``; pass
    it directly as ``ActiveLearner(query_strategy=cluster_egl_sampling)``.
    ``X_labelled`` may be given among the options for a bare estimator.

    Parameters
    ----------
    %(learner)s
    %(X_pool)s
    **options
        Parameters of :class:`ClusterEGLSampling`, and ``X_labelled``.

    %(query_returns)s

    Examples
    --------
    %(example_al_regressor)s
    >>> from sk_mtbnn.active_learning import ClusterEGLSampling, cluster_egl_sampling
    >>> idx = cluster_egl_sampling(reg, X, n_instances=2, X_labelled=X[:5], alpha=0.05)
    >>> strategy = ClusterEGLSampling(alpha=0.05)
    >>> bool(np.array_equal(idx, strategy(reg, X, n_instances=2, X_labelled=X[:5])))
    True
    """
    X_labelled = options.pop("X_labelled", None)
    return ClusterEGLSampling(**options)(learner, X_pool, n_instances, X_labelled=X_labelled)
