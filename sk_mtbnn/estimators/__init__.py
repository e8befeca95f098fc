"""The public scikit-learn estimators."""

from .bayesagg import BayesAggMTLClassifier, BayesAggMTLRegressor
from .sparse_mtbnn import SparseMultiTaskBNNRegressor

__all__ = ["BayesAggMTLClassifier", "BayesAggMTLRegressor", "SparseMultiTaskBNNRegressor"]
