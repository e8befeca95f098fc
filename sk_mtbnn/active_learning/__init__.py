"""Active learning with modAL: cluster-EGL and the query strategies to beat.

Every strategy has modAL's query-strategy signature
``strategy(learner, X_pool, n_instances=1, **options) -> indices`` and works
with an ``ActiveLearner`` around a :class:`~sk_mtbnn.SparseMultiTaskBNNRegressor`
(or a Pipeline ending in one, an :class:`~sk_mtbnn.IterativeMagnitudePruning`
of one, or :class:`~sk_mtbnn.BayesAggMTLRegressor`), with one task or several.

Importing this module makes modAL 0.4.1 work with scikit-learn >= 1.8 and
pandas >= 2 (:func:`patch_modal`); with missing labels (NaN) in the targets,
create the learner with ``force_all_finite=False``.
"""

from ._diversity import distance_thresholds, mean_abs_pairwise_difference
from ._modal_compat import patch_modal
from .cluster_egl import ClusterEGLSampling, cluster_egl_sampling
from .egl import expected_gradient_length
from .strategies import (
    gsx_sampling,
    gsy_sampling,
    igs_sampling,
    max_std_sampling,
    random_sampling,
)

patch_modal()

__all__ = [
    "ClusterEGLSampling",
    "cluster_egl_sampling",
    "distance_thresholds",
    "expected_gradient_length",
    "gsx_sampling",
    "gsy_sampling",
    "igs_sampling",
    "max_std_sampling",
    "mean_abs_pairwise_difference",
    "patch_modal",
    "random_sampling",
]
