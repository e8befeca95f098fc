"""Cluster-based expected-gradient-length sampling (Xiong et al. 2025; ``docs/algorithms.rst``)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.metrics import pairwise_distances_argmin
from sklearn.utils import check_random_state

from .._docstrings import fill_doc
from .._validation import check_choice, check_fraction, check_positive_float, check_positive_int
from ._coverage import COVERAGE_ROWS, coverage_clusters, greedy_centres, pool_sample
from ._diversity import exclusion_box, extend_picks, first_allowed
from ._labelled import labelled_set
from ._model import pool_scores, prepare_pool, standardised_inputs, task_columns
from .egl import expected_gradient_length


@dataclass(eq=False, repr=False)
class ClusterEGLSampling:
    """Cluster-based expected-gradient-length query strategy for modAL.

    After Xiong et al. (2025), with the clusters of Wu (2019) by default
    (``docs/algorithms.rst``, cluster-based EGL):

    1. ``sigma(x)``: predictive standard deviation on the pool, epistemic
       (default; for an ensemble it includes the spread of the members'
       means) or total, in standardised units, summed over the tasks (or one
       task). A pool of more than ``max_candidates`` rows is represented by
       that many evenly spaced rows;
    2. clusters, ``clusters="coverage"`` (default): k-means of the pool
       together with the ``n_labelled`` labelled rows into
       ``n_labelled + n_instances`` clusters, started from the labelled rows
       and ``n_instances`` pool rows of the greedy centre rule of step 3.
       Clusters without a labelled row (the parts of the pool that no label
       represents) are drawn from first, by decreasing sum of ``sigma`` over
       their rows; the members of a cluster are its ``core_fraction`` of
       rows nearest its centre. ``clusters="uncertain"``
       (Xiong et al.): centre candidates are the top ``candidate_fraction``
       of the pool by ``sigma``, members the top ``member_fraction``;
    3. the greedy centre rule: first the highest ``sigma``, then the row
       maximising ``d_min / max d_min + sigma / max sigma`` (``d_min``:
       distance to the labelled rows and centres so far, standardised
       inputs); with ``clusters="uncertain"`` these are the centres and
       members join their nearest one;
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
    6. the clusters, in their order, contribute their best remaining member
       each until the batch is full; an empty cluster, or one whose members
       are all excluded, gives its place to the next cluster, then to the
       best remaining member (by EGL), then to the pool by ``sigma`` --
       never a silent index 0. Only when fewer than ``n_instances`` pool
       rows lie outside the exclusion is it relaxed, for the rest of the
       batch.

    Why coverage clusters: with a handful of labels the most uncertain rows
    are the fringe of the pool, and clusters drawn from them alone (the
    paper's rule) leave its bulk unlabelled; on the benchmark problems that
    made the paper's rule worse than random sampling at small budgets
    (``benchmarks/results/active_learning_default.md``).

    Returns ``n_instances`` distinct pool indices, as modAL's
    ``ActiveLearner.query`` expects of a query strategy.

    Parameters
    ----------
    task : int or None, default=None
        Score one task, or sum over all tasks.
    clusters : {"coverage", "uncertain"}, default="coverage"
        k-means of the pool and the labelled rows (step 2), or the paper's
        clusters of the most uncertain rows.
    candidate_fraction : float, default=0.2
        Fraction of the pool (highest ``sigma``) eligible as cluster centres
        (``clusters="uncertain"`` only).
    member_fraction : float, default=0.4
        Fraction of the pool (highest ``sigma``) assigned to clusters
        (``clusters="uncertain"`` only).
    uncertainty : {"epistemic", "total"}, default="epistemic"
        Which predictive standard deviation ranks the pool.
    egl : {"head", "full"}, default="head"
        Closed-form EGL over the head means, or autograd over all parameters
        (both sum the per-task expected gradient norms over the scored tasks).
    n_pseudo_labels : int, default=16
        Pseudo-labels per member for ``egl="full"``.
    alpha : float, default=0.02
        Scale of the exclusion threshold (0 keeps out exact duplicates only).
    core_fraction : float, default=0.2
        With coverage clusters, the rows each cluster may give (step 6): the
        fraction of its rows nearest its centre (at least one row); 1 lets
        EGL choose among all of them, which on the benchmark sent picks to
        the fringe of the clusters, and so of the pool.
    max_candidates : int or None, default=20000
        A larger pool is represented by this many evenly spaced rows (scored,
        clustered and picked from); None scores every row (a 5-member
        ensemble takes about 30 CPU-s for 1,000,000 rows).
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
    .. [2] D. Wu. "Pool-based sequential active learning for regression", IEEE
       Transactions on Neural Networks and Learning Systems 30(5):1348-1359, 2019.

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
    clusters: str = "coverage"
    candidate_fraction: float = 0.2
    member_fraction: float = 0.4
    uncertainty: str = "epistemic"
    egl: str = "head"
    n_pseudo_labels: int = 16
    alpha: float = 0.02
    max_candidates: int | None = COVERAGE_ROWS
    core_fraction: float = 0.2
    random_state: int | np.random.RandomState | None = None
    verbose: int | None = None

    def __repr__(self) -> str:
        keys = (
            "task",
            "clusters",
            "candidate_fraction",
            "member_fraction",
            "uncertainty",
            "egl",
            "alpha",
            "max_candidates",
        )
        return f"ClusterEGLSampling({', '.join(f'{k}={getattr(self, k)!r}' for k in keys)})"

    def _check(self, n_instances):
        n_instances = check_positive_int(n_instances, "n_instances")
        check_choice(self.clusters, "clusters", ("coverage", "uncertain"))
        check_fraction(self.candidate_fraction, "candidate_fraction")
        check_fraction(self.member_fraction, "member_fraction")
        check_choice(self.uncertainty, "uncertainty", ("epistemic", "total"))
        check_choice(self.egl, "egl", ("head", "full"))
        check_positive_int(self.n_pseudo_labels, "n_pseudo_labels")
        check_positive_float(self.alpha, "alpha", allow_zero=True)
        if self.core_fraction != 1:
            check_fraction(self.core_fraction, "core_fraction")  # (0, 1]
        if self.max_candidates is not None:
            check_positive_int(self.max_candidates, "max_candidates")
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
        estimator, transform, X_all, n_instances = prepare_pool(learner, X_pool, n_instances)
        kept = pool_sample(len(X_all), self.max_candidates)
        X = X_all[kept]
        tasks = task_columns(self.task, estimator.n_tasks_)
        labelled = labelled_set(learner, estimator, transform, tasks, X_labelled)
        scores = pool_scores(estimator, X, self.verbose)
        sigma = scores.summed_std(self.uncertainty, tasks)
        order = np.argsort(-sigma, kind="stable")
        Z = standardised_inputs(estimator, X)
        if self.clusters == "coverage":
            nearest, n_clusters, core = coverage_clusters(
                Z, sigma, n_instances, labelled.Z, self.core_fraction
            )
            members, nearest = np.flatnonzero(core), nearest[core]
        else:
            n_cand = max(n_instances, int(np.ceil(self.candidate_fraction * len(X))))
            n_memb = max(n_cand, int(np.ceil(self.member_fraction * len(X))))
            candidates, members = order[:n_cand], order[:n_memb]
            centres = candidates[greedy_centres(Z[candidates], sigma[candidates], n_instances)]
            nearest = pairwise_distances_argmin(Z[members], Z[centres])  # members join a centre
            n_clusters = n_instances

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
        return kept[self._pick(box, members, nearest, egl, order, n_instances, n_clusters)]

    @staticmethod
    def _pick(box, members, nearest, egl, order, n, n_clusters=None):
        by_egl = np.argsort(-egl, kind="stable")
        ranked, cluster_of = members[by_egl], nearest[by_egl]
        picked: list[int] = []
        for c in range(n if n_clusters is None else n_clusters):
            if len(picked) == n:
                break
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
