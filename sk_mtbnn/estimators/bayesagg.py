"""Former module of the BayesAgg estimators, kept for ``pruning/_imp.py``'s import.

The estimators live in :mod:`.bayesagg_regressor` and
:mod:`.bayesagg_classifier`, the label helpers in :mod:`._labels`.
Remove this module once nothing imports it.
"""

from ._labels import missing_mask as _missing_mask
from .bayesagg_classifier import BayesAggMTLClassifier
from .bayesagg_regressor import BayesAggMTLRegressor

__all__ = ["BayesAggMTLClassifier", "BayesAggMTLRegressor", "_missing_mask"]
