"""sk_mtbnn: Bayesian multi-task neural networks for scikit-learn."""

from .estimators import BayesAggMTLClassifier, BayesAggMTLRegressor, SparseMultiTaskBNNRegressor
from .pruning import IterativeMagnitudePruning

__version__ = "0.1.0.dev0"

__all__ = [
    "BayesAggMTLClassifier",
    "BayesAggMTLRegressor",
    "IterativeMagnitudePruning",
    "SparseMultiTaskBNNRegressor",
    "__version__",
]
