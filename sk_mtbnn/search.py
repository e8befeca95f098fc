"""Search spaces for Bayesian hyper-parameter search with Optuna or scikit-optimize.

:func:`search_space` returns, for one of sk_mtbnn's estimators, the
parameters most worth tuning with ranges centred on the defaults, as
distributions of the chosen library: ``param_distributions`` for
``optuna_integration.OptunaSearchCV`` or ``search_spaces`` for
``skopt.BayesSearchCV``. The libraries are optional (``pip install
'sk_mtbnn[search]'``) and imported only when a space is built.

Read more in the :ref:`User Guide <hyperparameter_search>`.
"""

from __future__ import annotations

import importlib
import numbers
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sklearn.pipeline import Pipeline

__all__ = ["Architecture", "search_space"]

BACKENDS = ("optuna", "skopt")

#: Default choices of ``hidden_layer_sizes``: one or two layers around the default (128, 128).
DEFAULT_ARCHITECTURES = ((64,), (128,), (64, 64), (128, 128), (256, 256))


class Architecture:
    """Hidden-layer widths as one categorical value of a search space.

    Behaves like the tuple of widths for the estimators (they iterate over
    it), for ``==`` and ``hash`` and when printed, but is not a sequence to
    NumPy, so scikit-optimize keeps it whole instead of turning a list of
    tuples of different lengths into a ragged array (which fails).

    Parameters
    ----------
    sizes : iterable of int
        Widths of the hidden layers.

    Examples
    --------
    >>> a = Architecture((64, 64))
    >>> a, a == (64, 64), tuple(a)
    ((64, 64), True, (64, 64))
    """

    __slots__ = ("sizes",)

    def __init__(self, sizes: Iterable[int]) -> None:
        self.sizes = _check_architecture(sizes)

    def __iter__(self):
        return iter(self.sizes)

    def __eq__(self, other) -> bool:
        if isinstance(other, (Architecture, tuple, list)):
            return self.sizes == tuple(other)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.sizes)

    def __repr__(self) -> str:
        return repr(self.sizes)


def _check_architecture(sizes) -> tuple[int, ...]:
    try:
        out = tuple(sizes)
    except TypeError:
        out = None
    if not out or not all(
        isinstance(s, numbers.Integral) and not isinstance(s, bool) and s > 0 for s in out
    ):
        raise ValueError(
            f"Every architecture must be a non-empty sequence of positive integers, e.g. (64, 64); "
            f"got {sizes!r}."
        )
    return tuple(int(s) for s in out)


# ------------------------------------------------------------ the spaces
@dataclass(frozen=True)
class _Range:
    """A numeric range; ``log`` samples it uniformly in log scale."""

    low: float
    high: float
    log: bool = False
    integer: bool = False


@dataclass(frozen=True)
class _Choice:
    choices: tuple


_ARCHITECTURE = "hidden_layer_sizes"

_NETWORK = {
    _ARCHITECTURE: _Choice(DEFAULT_ARCHITECTURES),
    "activation": _Choice(("silu", "tanh", "gelu")),
    # A decade either side of the default 3e-3.
    "learning_rate": _Range(3e-4, 3e-2, log=True),
    # Two decades either side of the default 1e-4.
    "weight_decay": _Range(1e-6, 1e-2, log=True),
    "validation_fraction": _Range(0.1, 0.3),
}

_BAYESAGG = {
    # Prior variance of the head weights, a decade either side of 1.
    "gamma": _Range(0.1, 10.0, log=True),
    # Precision exponent in (0, 1]: near 0 is plain averaging.
    "s": _Range(0.05, 1.0),
}

_SPACES = {
    "SparseMultiTaskBNNRegressor": {
        **_NETWORK,
        # Prior N(0, prior_scale / D) of the head weights, a decade either side of 1.
        "prior_scale": _Range(0.1, 10.0, log=True),
        # Inverse-Wishart scale of the noise prior (normalised units), around 1e-2.
        "wishart_scale": _Range(1e-3, 1e-1, log=True),
    },
    "BayesAggMTLRegressor": {**_NETWORK, **_BAYESAGG},
    # The classifier's default s=0.01: from a tenth of it to 1, on a log scale.
    "BayesAggMTLClassifier": {**_NETWORK, **_BAYESAGG, "s": _Range(1e-3, 1.0, log=True)},
    "IterativeMagnitudePruning": {
        "prune_ratio": _Range(0.1, 0.5),
        "n_rounds": _Range(1, 5, integer=True),
    },
}


def _spaces_of(estimator, prefix: str = "") -> dict[str, Any]:
    """``{prefixed name: _Range | _Choice}`` for ``estimator`` and what it wraps."""
    if isinstance(estimator, Pipeline):
        name, last = estimator.steps[-1]
        return _spaces_of(last, f"{prefix}{name}__")
    name = type(estimator).__name__ if not isinstance(estimator, type) else estimator.__name__
    if name not in _SPACES:
        raise TypeError(
            f"search_space knows the estimators {sorted(_SPACES)} (alone or as the last step "
            f"of a Pipeline); got {name}. Build the distributions for it by hand."
        )
    space = {prefix + key: value for key, value in _SPACES[name].items()}
    inner = getattr(estimator, "estimator", None)
    if name == "IterativeMagnitudePruning" and inner is not None:
        space.update(_spaces_of(inner, f"{prefix}estimator__"))
    return space


def search_space(
    estimator,
    backend: str = "optuna",
    *,
    params: Sequence[str] | None = None,
    hidden_layer_sizes: Sequence[Iterable[int]] | None = None,
) -> dict[str, Any]:
    """Distributions of the hyper-parameters worth tuning, for Optuna or scikit-optimize.

    The ranges are centred on the estimators' defaults (see their
    docstrings): ``hidden_layer_sizes`` one of one or two layers of 64 to
    256 units; ``activation`` among the smooth ones; ``learning_rate``
    log-uniform on [3e-4, 3e-2]; ``weight_decay`` log-uniform on [1e-6,
    1e-2]; ``validation_fraction`` uniform on [0.1, 0.3]. Then per
    estimator: :class:`~sk_mtbnn.SparseMultiTaskBNNRegressor`'s
    ``prior_scale`` log-uniform on [0.1, 10] and ``wishart_scale`` on [1e-3,
    1e-1]; the BayesAgg estimators' ``gamma`` log-uniform on [0.1, 10] and
    ``s`` uniform on [0.05, 1]; :class:`~sk_mtbnn.IterativeMagnitudePruning`'s
    ``prune_ratio`` uniform on [0.1, 0.5] and ``n_rounds`` in 1..5, plus its
    inner estimator's space (as ``estimator__<name>``). The result is a
    plain dict: replace or delete entries to change the space.

    Parameters
    ----------
    estimator : estimator instance or class
        One of sk_mtbnn's estimators, or a :class:`~sklearn.pipeline.Pipeline`
        ending in one (the names then carry the step's prefix,
        ``"<step>__<name>"``).
    backend : {"optuna", "skopt"}, default="optuna"
        ``"optuna"``: ``optuna.distributions`` objects for
        ``optuna_integration.OptunaSearchCV(param_distributions=...)``.
        ``"skopt"``: ``skopt.space`` dimensions for
        ``skopt.BayesSearchCV(search_spaces=...)``.
    params : sequence of str, default=None
        Keep only these parameters (names without a pipeline prefix). None
        keeps all of them.
    hidden_layer_sizes : sequence of tuple of int, default=None
        The architectures to choose from, e.g. ``[(16,), (32, 32)]``. None
        uses ``(64,), (128,), (64, 64), (128, 128), (256, 256)``.

    Returns
    -------
    space : dict
        ``{parameter name: distribution}``. With ``backend="optuna"`` the
        architectures are plain tuples (fine for OptunaSearchCV's default
        in-memory study; a persistent RDB storage cannot store tuple
        choices). With ``backend="skopt"`` they are :class:`Architecture`
        values, which the estimators accept like tuples.

    Raises
    ------
    ImportError
        If the backend's library is not installed; ``pip install
        'sk_mtbnn[search]'`` installs both.

    Examples
    --------
    >>> from sk_mtbnn import SparseMultiTaskBNNRegressor
    >>> space = search_space(SparseMultiTaskBNNRegressor(), "optuna")
    >>> sorted(space)[:3]
    ['activation', 'hidden_layer_sizes', 'learning_rate']
    >>> space["learning_rate"]
    FloatDistribution(high=0.03, log=True, low=0.0003, step=None)
    >>> search_space(SparseMultiTaskBNNRegressor(), "skopt", params=["weight_decay"])
    {'weight_decay': Real(low=1e-06, high=0.01, prior='log-uniform', transform='identity')}
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {list(BACKENDS)}; got {backend!r}.")
    space = _spaces_of(estimator)
    if hidden_layer_sizes is not None:
        choices = tuple(_check_architecture(a) for a in hidden_layer_sizes)
        if not choices:
            raise ValueError("hidden_layer_sizes must list at least one architecture.")
        space = {k: _Choice(choices) if _short(k) == _ARCHITECTURE else v for k, v in space.items()}
    if params is not None:
        space = _select(space, params)
    convert = _to_optuna if backend == "optuna" else _to_skopt
    return {name: convert(spec, _short(name) == _ARCHITECTURE) for name, spec in space.items()}


def _short(name: str) -> str:
    return name.rsplit("__", 1)[-1]


def _select(space: dict, params: Sequence[str]) -> dict:
    if isinstance(params, str):
        raise TypeError(f"params must be a list of parameter names; got the string {params!r}.")
    known = {_short(k) for k in space}
    unknown = sorted(set(params) - known)
    if unknown:
        raise ValueError(
            f"params {unknown} are not in the search space; choose among {sorted(known)}."
        )
    return {k: v for k, v in space.items() if _short(k) in set(params)}


def _import(module: str, package: str):
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(
            f"This search space needs {package}: pip install 'sk_mtbnn[search]' "
            f"(or pip install {package})."
        ) from exc


def _to_optuna(spec, is_architecture: bool):
    distributions = _import("optuna.distributions", "optuna")
    if isinstance(spec, _Choice):
        with warnings.catch_warnings():
            # Optuna warns that tuple choices cannot go to a persistent (RDB) storage;
            # OptunaSearchCV's default in-memory study stores them as they are.
            warnings.filterwarnings("ignore", message="Choices for a categorical distribution")
            return distributions.CategoricalDistribution(spec.choices)
    if spec.integer:
        return distributions.IntDistribution(int(spec.low), int(spec.high), log=spec.log)
    return distributions.FloatDistribution(spec.low, spec.high, log=spec.log)


def _to_skopt(spec, is_architecture: bool):
    space = _import("skopt.space", "scikit-optimize")
    if isinstance(spec, _Choice):
        choices = [Architecture(c) for c in spec.choices] if is_architecture else spec.choices
        return space.Categorical(list(choices))
    if spec.integer:
        return space.Integer(int(spec.low), int(spec.high))
    return space.Real(spec.low, spec.high, prior="log-uniform" if spec.log else "uniform")
