"""Declarative parameter constraints, through scikit-learn's validation machinery.

scikit-learn validates estimator parameters from a class attribute
``_parameter_constraints`` (``{name: [constraint, ...]}``); the machinery lives
in the private module ``sklearn.utils._param_validation``. This module is the
only place in sk_mtbnn that imports it, so a change of that private API is
mended here once. Errors are scikit-learn's ``InvalidParameterError`` (a
``ValueError`` and a ``TypeError``), whose message names the parameter, the
accepted values and the value given.
"""

from __future__ import annotations

import numbers
from numbers import Integral, Real

from sklearn.utils._param_validation import (
    HasMethods,
    Hidden,
    Interval,
    InvalidParameterError,
    Options,
    StrOptions,
    validate_parameter_constraints,
)

__all__ = [
    "HasMethods",
    "Hidden",
    "Integral",
    "Interval",
    "InvalidParameterError",
    "LayerSizes",
    "Options",
    "Real",
    "StrOptions",
    "positive_float",
    "positive_int",
    "validate_parameter_constraints",
    "validate_params",
]


class LayerSizes(HasMethods):
    """A sequence of positive integers (or one positive integer): layer widths.

    scikit-learn accepts only its own constraint classes; this one reuses the
    ``HasMethods`` slot with its own test and description.
    """

    def __init__(self, min_length: int = 0) -> None:
        super().__init__(methods=[])
        self.min_length = min_length

    def is_satisfied_by(self, val) -> bool:
        if isinstance(val, numbers.Integral) and not isinstance(val, bool):
            val = (val,)
        if isinstance(val, (str, bytes)):
            return False
        try:
            sizes = tuple(val)
        except TypeError:
            return False
        return len(sizes) >= self.min_length and all(
            isinstance(s, numbers.Integral) and not isinstance(s, bool) and s > 0 for s in sizes
        )

    def __str__(self) -> str:
        least = f" with at least {self.min_length} entry" if self.min_length else ""
        return f"a sequence of positive integers{least}"


def positive_float(*, allow_zero: bool = False) -> Interval:
    """A real number in ``(0, inf)`` (or ``[0, inf)``)."""
    return Interval(Real, 0, None, closed="left" if allow_zero else "neither")


def positive_int(low: int = 1) -> Interval:
    """An integer ``>= low``."""
    return Interval(Integral, low, None, closed="left")


def validate_params(estimator) -> None:
    """Check ``estimator``'s parameters against its ``_parameter_constraints``."""
    validate_parameter_constraints(
        estimator._parameter_constraints,
        estimator.get_params(deep=False),
        caller_name=type(estimator).__name__,
    )
