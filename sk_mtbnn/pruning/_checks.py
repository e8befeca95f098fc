"""Parameter checks of the pruning meta-estimator: clear errors that say what to change."""

from __future__ import annotations

import numbers

from sklearn.base import is_classifier

from .._param_validation import validate_params
from .._validation import check_choice, check_fraction, check_positive_int
from ..aggregators import resolve_aggregator
from ..aggregators.bayesagg import BayesAgg
from ..estimators._base import layer_sizes

SCOPES = ("layer", "global")
REWINDS = ("init", "warmup", "none")
SELECTIONS = ("best", "last")
SCORINGS = ("default", "nll", "r2", "log_loss", "accuracy")


def check_params(imp) -> None:
    """The meta-estimator's own parameters."""
    ratio = imp.prune_ratio
    ok = isinstance(ratio, numbers.Real) and not isinstance(ratio, bool) and 0 < ratio < 1
    if not ok:
        raise ValueError(f"prune_ratio must be in (0, 1); got {ratio!r}.")
    check_positive_int(imp.n_rounds, "n_rounds")
    check_positive_int(imp.rewind_epoch, "rewind_epoch")
    if imp.retrain_epochs is not None:
        check_positive_int(imp.retrain_epochs, "retrain_epochs")
    check_choice(imp.scope, "scope", SCOPES)
    check_choice(imp.rewind, "rewind", REWINDS)
    check_choice(imp.select, "select", SELECTIONS)
    check_fraction(imp.validation_fraction, "validation_fraction")
    if not (callable(imp.scoring) or (isinstance(imp.scoring, str) and imp.scoring in SCORINGS)):
        raise ValueError(
            "scoring must be 'default', 'nll', 'r2', 'log_loss', 'accuracy' or a callable "
            f"scoring(estimator, X, y, task); got {imp.scoring!r}."
        )
    if not (isinstance(imp.verbose, numbers.Integral) and imp.verbose >= 0):
        raise ValueError(f"verbose must be a non-negative integer; got {imp.verbose!r}.")


def check_scoring(scoring, base) -> None:
    """A named score of the other estimator type is an error."""
    regression, classification = {"nll", "r2"}, {"log_loss", "accuracy"}
    wrong = classification if not is_classifier(base) else regression
    if isinstance(scoring, str) and scoring in wrong:
        kind = "classifier" if is_classifier(base) else "regressor"
        allowed = sorted(regression if kind == "regressor" else classification)
        raise ValueError(
            f"scoring={scoring!r} does not apply to a {kind}; use 'default' or one of {allowed}."
        )


def check_estimator(base) -> None:
    """An sk_mtbnn estimator of one network with hidden layers and per-task masks."""
    needed = ("_prepare", "_build_module", "_train")
    if not all(hasattr(base, name) for name in needed):
        raise TypeError(
            "IterativeMagnitudePruning needs an sk_mtbnn estimator with a masked backbone "
            f"(SparseMultiTaskBNNRegressor, BayesAggMTLClassifier); got {type(base).__name__}."
        )
    validate_params(base)
    params = base.get_params()
    if params.get("n_estimators", 1) not in (1, "auto"):
        raise ValueError(
            "IterativeMagnitudePruning prunes one network: set n_estimators=1 on the "
            "estimator (prune first, then ensemble the pruned model if needed)."
        )
    if not layer_sizes(params["hidden_layer_sizes"]):
        raise ValueError(
            "The estimator has no hidden layer (hidden_layer_sizes=()), so there is no "
            "backbone weight to prune: give it at least one hidden layer."
        )
    aggregator = params.get("aggregator", "bayesagg")
    if not base._supports_task_masks or isinstance(resolve_aggregator(aggregator), BayesAgg):
        raise ValueError(
            "BayesAgg trains one representation shared by all tasks, so tasks cannot have "
            "their own masks: prune an estimator with aggregator='mean' (or 'pcgrad', ...)."
        )
