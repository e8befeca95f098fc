"""sk_mtbnn: Bayesian multi-task neural networks for scikit-learn."""

from importlib.metadata import PackageNotFoundError, version

from .estimators import BayesAggMTLClassifier, BayesAggMTLRegressor, SparseMultiTaskBNNRegressor
from .persistence import load, save
from .pruning import IterativeMagnitudePruning

try:
    __version__ = version("sk_mtbnn")  # the installed distribution's, from pyproject.toml
except PackageNotFoundError:  # pragma: no cover - a source tree that is not installed
    __version__ = "0.0.0+unknown"

__all__ = [
    "BayesAggMTLClassifier",
    "BayesAggMTLRegressor",
    "IterativeMagnitudePruning",
    "SparseMultiTaskBNNRegressor",
    "__version__",
    "load",
    "save",
]
