"""The public scikit-learn estimators."""

from .bayesagg_classifier import BayesAggMTLClassifier
from .bayesagg_regressor import BayesAggMTLRegressor
from .sparse_mtbnn import SparseMultiTaskBNNRegressor

__all__ = ["BayesAggMTLClassifier", "BayesAggMTLRegressor", "SparseMultiTaskBNNRegressor"]
