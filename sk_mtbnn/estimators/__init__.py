"""The public scikit-learn estimators."""

from .sparse_mtbnn import SparseMultiTaskBNNRegressor

__all__ = ["SparseMultiTaskBNNRegressor"]
