"""sk_mtbnn: Bayesian multi-task neural networks for scikit-learn."""

from .estimators import SparseMultiTaskBNNRegressor

__version__ = "0.1.0.dev0"

__all__ = ["SparseMultiTaskBNNRegressor", "__version__"]
