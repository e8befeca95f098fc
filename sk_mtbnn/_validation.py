"""Input validation shared by the estimators: clear errors that say what to change."""

from __future__ import annotations

import numbers
from collections.abc import Sequence

import numpy as np
from sklearn.utils.validation import check_consistent_length


def _names_of(y) -> list | None:
    """The task labels of a DataFrame's columns or a Series' name, as given (or None)."""
    columns = getattr(y, "columns", None)
    if columns is not None:
        return list(columns)
    name = getattr(y, "name", None)
    return None if name is None else [name]


def task_label(t: int, names: Sequence | None) -> str:
    """``"task 2 ('y_uts')"`` or ``"task 2"`` (a column label in its own repr)."""
    return f"task {t} ({names[t]!r})" if names else f"task {t}"


#: The error for complex targets (scikit-learn's wording, then what to pass instead).
COMPLEX_TARGETS = (
    "Complex data not supported: the targets have complex values. Pass real-valued "
    "targets, e.g. the real and imaginary parts as two tasks (np.c_[y.real, y.imag])."
)
_COMPLEX_TYPES = (complex, np.complexfloating)


def _holds_complex(a: np.ndarray) -> bool:
    """Whether ``a`` is complex, or an object array holding a complex number.

    An object array is read once, for the set of its entries' types (a few
    times faster than an ``isinstance`` test of each entry).
    """
    if a.dtype.kind == "c":
        return True
    if a.dtype.kind != "O":
        return False
    return any(issubclass(kind, _COMPLEX_TYPES) for kind in set(map(type, a.ravel(order="K"))))


def as_array(y, name: str = "y") -> np.ndarray:
    """``np.asarray(y)``, or a ``ValueError`` for a ragged ``y`` (rows of different lengths)."""
    try:
        return np.asarray(y)
    except ValueError:
        raise ValueError(
            f"{name} is ragged: its rows have different lengths. Pass a rectangular array of "
            f"shape (n_samples,) or (n_samples, n_tasks), with NaN for a missing label."
        ) from None


def pandas_dtypes(y) -> list | None:
    """The dtypes of a pandas DataFrame's columns or of a Series, else None."""
    if not (hasattr(y, "iloc") and hasattr(y, "to_numpy")):
        return None
    if hasattr(y, "columns"):
        return list(y.dtypes)
    dtype = getattr(y, "dtype", None)
    return None if dtype is None else [dtype]


def _nullable_as_float(y) -> np.ndarray:
    """``y`` as an array; pandas' nullable numbers (``Float64``, ``Int64``) with NA as NaN.

    Complex targets raise a ``ValueError`` (:data:`COMPLEX_TARGETS`) here, before any
    cast could drop their imaginary parts. Each object entry is read once: of a
    DataFrame, only its object columns.
    """
    dtypes = pandas_dtypes(y)
    if dtypes is None:
        y_arr = as_array(y)
        if _holds_complex(y_arr):
            raise ValueError(COMPLEX_TARGETS)
        return y_arr
    kinds = [getattr(d, "kind", "O") for d in dtypes]
    if "c" in kinds:
        raise ValueError(COMPLEX_TARGETS)
    objects = [j for j, kind in enumerate(kinds) if kind == "O"]
    scanned = None
    if len(objects) == len(kinds):
        scanned = y.to_numpy(dtype=object)
    elif objects:
        scanned = y.iloc[:, objects].to_numpy(dtype=object)
    if scanned is not None and _holds_complex(scanned):
        raise ValueError(COMPLEX_TARGETS)
    if any(not isinstance(d, np.dtype) and k in "biuf" for d, k in zip(dtypes, kinds)):
        try:
            return y.to_numpy(dtype=np.float64, na_value=np.nan)
        except (TypeError, ValueError):  # beside non-numeric columns: the caller says which
            return y.to_numpy(dtype=object, na_value=np.nan)
    if all(d == np.dtype(object) for d in dtypes):
        return scanned  # what np.asarray(y) would give, without a second conversion
    return np.asarray(y)


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


def targets_2d(y_arr: np.ndarray, y) -> np.ndarray:
    """``y_arr`` of shape ``(n_samples, n_tasks)``, ``n_tasks >= 1``, or a clear error."""
    if y_arr.ndim == 0:
        what = f"{y!r}" if np.isscalar(y) else "an object"
        what += f" of type {type(y).__name__}"
        raise ValueError(
            f"y must be an array-like of shape (n_samples,) or (n_samples, n_tasks); got "
            f"{what}. Pass a list, a numpy array, a pandas Series or a DataFrame."
        )
    if y_arr.ndim == 1:
        y_arr = y_arr[:, None]
    if y_arr.ndim != 2:
        raise ValueError(
            f"y must have shape (n_samples,) or (n_samples, n_tasks); got shape {y_arr.shape}."
        )
    if y_arr.shape[1] == 0:
        raise ValueError(
            f"y has shape {y_arr.shape}: no task. Pass at least one column of targets."
        )
    return y_arr


def _where(y, row: int, col: int, names) -> str:
    """``"row 3, task 1 ('b')"``; with a pandas index that is not 0..n-1, the row's label too."""
    index = getattr(y, "index", None)
    at = f"row {row}"
    if index is not None and not index.equals(_default_index(len(index))):
        at += f" (index label {index[row]!r})"
    return f"{at}, {task_label(col, names)}"


def _default_index(n: int):
    import pandas as pd  # a pandas y was given: pandas is imported

    return pd.RangeIndex(n)


def _check_temporal(y, y_arr: np.ndarray) -> None:
    kinds = {getattr(d, "kind", "O") for d in pandas_dtypes(y) or [y_arr.dtype]}
    if kinds & set("mM"):
        raise ValueError(
            "y holds dates or durations (a datetime64 or timedelta64 dtype), not numbers. "
            "Convert them to numbers in a unit you choose, e.g. days since a reference date "
            "((y - y.min()) / np.timedelta64(1, 'D')) or seconds (y.dt.total_seconds())."
        )
    check_structured(y_arr)


def check_structured(y_arr: np.ndarray) -> None:
    """Refuse a structured (record) array, naming its fields."""
    if y_arr.dtype.kind == "V":
        fields = ", ".join(f"y[{f!r}]" for f in y_arr.dtype.names or ())
        raise ValueError(
            f"y is a structured array (dtype {y_arr.dtype}): pass its fields as the columns "
            f"of a plain array, e.g. np.c_[{fields}]."
        )


def is_none_or_na(value) -> bool:
    """None or pandas' ``NA`` (the missing values that ``float()`` refuses)."""
    return value is None or type(value).__name__ == "NAType"


def _float_entries(values: np.ndarray) -> tuple[np.ndarray, int | None]:
    """``values`` as float64 with None and ``pd.NA`` as NaN, and the flat position of the
    first entry that is neither a number nor missing (None when there is none).

    The entries are read one by one only when numpy's own cast fails.
    """
    try:
        return values.astype(np.float64), None
    except (TypeError, ValueError):
        pass
    flat = values.ravel()
    out = np.full(flat.shape, np.nan)
    for i, v in enumerate(flat):
        if is_none_or_na(v):
            continue
        try:
            out[i] = float(v)
        except (TypeError, ValueError):
            return out, i
    return out.reshape(values.shape), None


def _as_float(y_arr: np.ndarray, y, names, estimator_name: str) -> np.ndarray:
    """Non-numeric ``y_arr`` (object, strings) as float64; None and ``pd.NA`` become NaN."""
    out, bad = _float_entries(y_arr)
    if bad is None:
        return out
    row, col = np.unravel_index(bad, y_arr.shape)
    v = y_arr[row, col]
    raise ValueError(
        f"{estimator_name} is a regressor and needs numeric targets, but y holds {v!r} (of "
        f"type {type(v).__name__}) at {_where(y, row, col, names)}. Encode the targets as "
        "numbers (NaN, None or pd.NA mark a missing label), or use BayesAggMTLClassifier "
        "for class labels."
    )


def check_regression_targets(y, X, estimator_name: str) -> np.ndarray:
    """Validate regression targets with missing labels.

    Returns a float64 array of shape ``(n_samples, n_tasks)``; NaN marks a
    missing label (as do None and ``pd.NA``). Raises ``ValueError`` for
    ``None``, non-numeric, complex, temporal, infinite, ragged or wrongly
    shaped targets, for a task without any label and for entries too large to
    standardise (:func:`check_magnitude`).
    """
    if y is None:
        raise ValueError(f"{estimator_name} requires y to be passed, but the target y is None.")
    names = _names_of(y)
    y_arr = _nullable_as_float(y)  # refuses complex targets
    one_task = y_arr.ndim == 1
    y_arr = targets_2d(y_arr, y)
    _check_temporal(y, y_arr)
    if y_arr.dtype.kind not in "biuf":
        y_arr = _as_float(y_arr, y, names, estimator_name)
    y_arr = np.array(y_arr, dtype=np.float64)  # a copy: the caller's y is never touched
    check_consistent_length(X, y_arr)
    if np.isinf(y_arr).any():
        rows, cols = np.nonzero(np.isinf(y_arr))
        raise ValueError(
            f"y contains infinity (first at {_where(y, rows[0], cols[0], names)}). "
            "Remove those rows or mark the labels as missing with NaN."
        )
    n_labelled = (~np.isnan(y_arr)).sum(0)
    for t in np.flatnonzero(n_labelled == 0):
        raise ValueError(_no_label_message(t, names, one_task))
    check_magnitude(y_arr, "y")
    return y_arr


def _no_label_message(t: int, names, one_task: bool) -> str:
    if one_task:  # no column to drop
        series = "" if names is None else f" (the Series {names[0]!r})"
        return (
            f"y{series} has no label: every entry is NaN (or None, pd.NA), and NaN marks a "
            "missing label. Provide at least one label."
        )
    return (
        f"{task_label(t, names)} has no label: every entry of y[:, {t}] is NaN. "
        "Drop that column or provide at least one label for it."
    )


def check_input_frame(X, name: str = "X") -> None:
    """Refuse a DataFrame that scikit-learn's ``validate_data`` would fail on with a pandas,
    numpy or narwhals message, saying which column and what to change.

    Refused: duplicate column names; dates, durations, periods and intervals; entries of
    object, string or category columns that are not numbers (strings, complex numbers) or
    are missing (None, ``pd.NA``). Anything else (arrays, numeric frames) is left to
    ``validate_data``; numeric columns are not read, object columns once by numpy's cast.

    Parameters
    ----------
    X : object
        The input as given to ``fit`` or ``predict``.
    name : str, default="X"
        How the message calls ``X``.
    """
    columns = getattr(X, "columns", None)
    if columns is None or not hasattr(X, "iloc"):
        return
    duplicated = sorted({repr(c) for c in columns[columns.duplicated()]})
    if duplicated:
        raise ValueError(
            f"{name} has duplicate column names ({', '.join(duplicated)}): give each column "
            f"its own name (e.g. {name}.columns = [f'x{{i}}' for i in range({name}.shape[1])]) "
            f"or pass {name}.to_numpy()."
        )
    for j, dtype in enumerate(X.dtypes):
        where = f"column {columns[j]!r} of {name}"
        if getattr(dtype, "kind", "O") in "mM" or type(dtype).__name__ in _TEMPORAL_DTYPES:
            raise ValueError(
                f"{where} has the dtype {dtype} (dates, durations, periods or intervals), not "
                "numbers: convert it to numbers in a unit you choose (e.g. days since a "
                "reference date) or drop it."
            )
        if getattr(dtype, "kind", "O") == "O":
            _check_input_column(X.iloc[:, j].to_numpy(dtype=object), where)


#: pandas dtypes of temporal values whose numpy kind is "O".
_TEMPORAL_DTYPES = ("PeriodDtype", "IntervalDtype")


def _check_input_column(column: np.ndarray, where: str) -> None:
    if _holds_complex(column):  # before a cast that would drop the imaginary parts
        raise ValueError(
            f"Complex data not supported: {where} holds complex numbers. Pass real values, "
            "e.g. the real and imaginary parts as two columns."
        )
    try:
        column.astype(np.float64)
        return  # numbers only (NaN is validate_data's to refuse)
    except (TypeError, ValueError):
        pass
    _, bad = _float_entries(column)
    if bad is not None:
        v = column[bad]
        raise ValueError(
            f"{where} holds {v!r} (of type {type(v).__name__}) at row {bad}, but the inputs "
            "must be numbers. Encode that column as numbers (e.g. with "
            "sklearn.preprocessing.OneHotEncoder or OrdinalEncoder in a ColumnTransformer) "
            "or drop it."
        )
    missing = next(i for i, v in enumerate(column) if is_none_or_na(v))  # numpy refused one
    raise ValueError(
        f"{where} holds a missing value ({column[missing]!r}) at row {missing}, but the "
        "inputs must be complete. Impute them (e.g. with sklearn.impute.SimpleImputer) "
        "or drop those rows."
    )


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
