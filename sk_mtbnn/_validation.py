"""Input validation shared by the estimators: clear errors that say what to change."""

from __future__ import annotations

import numbers
from collections.abc import Sequence

import numpy as np
from sklearn.utils.validation import check_consistent_length


def _names_of(y) -> list[str] | None:
    columns = getattr(y, "columns", None)
    if columns is not None:
        return [str(c) for c in columns]
    name = getattr(y, "name", None)
    return None if name is None else [str(name)]


def task_label(t: int, names: Sequence[str] | None) -> str:
    """``"task 2 ('y_uts')"`` or ``"task 2"``."""
    return f"task {t} ({names[t]!r})" if names else f"task {t}"


#: The error for complex targets (scikit-learn's wording, then what to pass instead).
COMPLEX_TARGETS = (
    "Complex data not supported: the targets have complex values. Pass real-valued "
    "targets, e.g. the real and imaginary parts as two tasks (np.c_[y.real, y.imag])."
)


def _holds_complex(a: np.ndarray) -> bool:
    """Whether ``a`` is complex, or an object array holding a complex number."""
    if a.dtype.kind == "c":
        return True
    return a.dtype.kind == "O" and any(
        isinstance(v, (complex, np.complexfloating)) for v in a.ravel()
    )


def _nullable_as_float(y) -> np.ndarray:
    """``y`` as an array; pandas' nullable numbers (``Float64``, ``Int64``) with NA as NaN.

    Complex targets raise a ``ValueError`` (:data:`COMPLEX_TARGETS`) here, before any
    cast could drop their imaginary parts.
    """
    if not hasattr(y, "astype") or isinstance(y, np.ndarray):
        y_arr = np.asarray(y)
    else:
        dtypes = y.dtypes if hasattr(y, "columns") else [getattr(y, "dtype", None)]
        kinds = {getattr(d, "kind", "O") for d in dtypes if d is not None}
        if "c" in kinds or ("O" in kinds and _holds_complex(np.asarray(y, dtype=object))):
            raise ValueError(COMPLEX_TARGETS)
        numeric_nullable = [
            getattr(d, "kind", "O") in "iuf" and getattr(d, "na_value", None) is not None
            for d in dtypes
            if d is not None
        ]
        if any(numeric_nullable):
            return np.asarray(y.astype("float64"), dtype=np.float64)
        y_arr = np.asarray(y)
    if _holds_complex(y_arr):
        raise ValueError(COMPLEX_TARGETS)
    return y_arr


#: Largest magnitude of an input or target entry: standardising squares the entries, and
#: beyond ~1e154 their squares overflow float64.
MAX_MAGNITUDE = 1e150


def check_magnitude(a: np.ndarray, name: str) -> None:
    """Refuse entries too large to standardise (``|a| > 1e150``), naming the column.

    Parameters
    ----------
    a : ndarray of shape (n_samples, n_columns)
        Numeric data; NaN entries are ignored.
    name : str
        How the message calls ``a`` (``"X"``, ``"y"``).
    """
    a = np.asarray(a)
    if a.size == 0 or a.dtype.kind not in "f":
        return  # integers and booleans are far below the limit
    magnitude = np.nanmax(np.abs(a), axis=0) if a.ndim == 2 else np.nanmax(np.abs(a))
    magnitude = np.atleast_1d(magnitude)
    if not np.any(magnitude > MAX_MAGNITUDE):
        return
    j = int(np.nanargmax(magnitude))
    factor = 10.0 ** np.floor(np.log10(magnitude[j]))
    raise ValueError(
        f"{name} has entries of magnitude up to {magnitude[j]:.3g} (column {j}), too large to "
        f"standardise: their squares overflow float64 above about {MAX_MAGNITUDE:.0e}. Rescale "
        f"{name} (e.g. divide column {j} by {factor:.0e}, or express it in other units)."
    )


def check_regression_targets(y, X, estimator_name: str) -> np.ndarray:
    """Validate regression targets with missing labels.

    Returns a float64 array of shape ``(n_samples, n_tasks)``; NaN marks a
    missing label. Raises ``ValueError`` for ``None``, non-numeric, complex,
    infinite, wrongly shaped targets, for a task without any label and for
    entries too large to standardise (:func:`check_magnitude`).
    """
    if y is None:
        raise ValueError(f"{estimator_name} requires y to be passed, but the target y is None.")
    names = _names_of(y)
    y_arr = _nullable_as_float(y)  # refuses complex targets
    if y_arr.dtype.kind not in "biuf":
        try:
            y_arr = y_arr.astype(np.float64)
        except (TypeError, ValueError):
            raise ValueError(
                f"{estimator_name} is a regressor and needs numeric targets, but y has "
                f"dtype {y_arr.dtype} (e.g. strings). Encode the targets as numbers, or "
                "use BayesAggMTLClassifier for class labels."
            ) from None
    y_arr = np.array(y_arr, dtype=np.float64)  # a copy: the caller's y is never touched
    if y_arr.ndim == 1:
        y_arr = y_arr[:, None]
    if y_arr.ndim != 2:
        raise ValueError(
            f"y must have shape (n_samples,) or (n_samples, n_tasks); got shape {y_arr.shape}."
        )
    check_consistent_length(X, y_arr)
    if np.isinf(y_arr).any():
        rows, cols = np.nonzero(np.isinf(y_arr))
        raise ValueError(
            f"y contains infinity (first at row {rows[0]}, {task_label(cols[0], names)}). "
            "Remove those rows or mark the labels as missing with NaN."
        )
    n_labelled = (~np.isnan(y_arr)).sum(0)
    for t in np.flatnonzero(n_labelled == 0):
        raise ValueError(
            f"{task_label(t, names)} has no label: every entry of y[:, {t}] is NaN. "
            "Drop that column or provide at least one label for it."
        )
    check_magnitude(y_arr, "y")
    return y_arr


def check_positive_int(value, name: str) -> int:
    if isinstance(value, numbers.Integral) and not isinstance(value, bool) and value > 0:
        return int(value)
    raise ValueError(f"{name} must be a positive integer; got {value!r}.")


def check_positive_float(value, name: str, *, allow_zero: bool = False) -> float:
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and np.isfinite(value)
    if ok and (value > 0 or (allow_zero and value == 0)):
        return float(value)
    bound = "non-negative" if allow_zero else "positive"
    raise ValueError(f"{name} must be a {bound} finite number; got {value!r}.")


def check_layer_sizes(value, name: str) -> tuple[int, ...]:
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        value = (value,)
    try:
        sizes = tuple(value)
    except TypeError:
        raise ValueError(
            f"{name} must be a sequence of positive integers; got {value!r}."
        ) from None
    for s in sizes:
        check_positive_int(s, f"every entry of {name}")
    return sizes


def check_choice(value, name: str, choices: Sequence[str]) -> str:
    if isinstance(value, str) and value in choices:
        return value
    raise ValueError(f"{name} must be one of {list(choices)}; got {value!r}.")


def check_fraction(value, name: str) -> float:
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if ok and 0.0 < value < 1.0:
        return float(value)
    raise ValueError(f"{name} must be a number strictly between 0 and 1; got {value!r}.")


def check_fitted(estimator) -> None:
    """Raise ``NotFittedError`` unless ``estimator`` has been fitted.

    Unlike :func:`sklearn.utils.validation.check_is_fitted` this does not
    defer to the ``requires_fit`` tag: the regressors predict from their prior
    before ``fit`` (as GaussianProcessRegressor does), but what needs a fitted
    network (masks, pool scores, explanations) must still refuse an unfitted one.
    """
    from sklearn.exceptions import NotFittedError

    fitted = getattr(estimator, "__sklearn_is_fitted__", None)
    if fitted is None or not fitted():
        raise NotFittedError(
            f"This {type(estimator).__name__} instance is not fitted yet. Call 'fit' with "
            "appropriate arguments before using this estimator."
        )
