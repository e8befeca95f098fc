"""Class labels of multi-task classification: missing entries, types, clear errors.

Each column of ``y`` is a task with labels of one type (strings, or
numbers); a missing label is ``missing_label``, and with the default NaN every
missing value of NumPy and pandas (None, NaN, ``pd.NA``).
"""

from __future__ import annotations

import numbers

import numpy as np
from sklearn.utils.multiclass import check_classification_targets

from .._validation import (
    COMPLEX_TARGETS,
    _holds_complex,
    as_array,
    check_structured,
    is_none_or_na,
    targets_2d,
)


def is_na(value) -> bool:
    """None, a float NaN or pandas' ``NA``: the missing values of NumPy and pandas columns."""
    if is_none_or_na(value):
        return True
    return isinstance(value, (float, np.floating)) and bool(np.isnan(value))


def missing_mask(column: np.ndarray, missing_label) -> np.ndarray:
    """Entries equal to ``missing_label``; for NaN, every missing value (None, NaN, ``pd.NA``)."""
    if is_na(missing_label):
        if column.dtype.kind == "f":
            return np.isnan(column)
        if column.dtype == object:
            return np.array([is_na(v) for v in column], dtype=bool)
        return np.zeros(column.shape, dtype=bool)  # integers, strings, booleans
    if column.dtype != object:
        return np.asarray(column == missing_label, dtype=bool)
    return np.array([not is_na(v) and bool(v == missing_label) for v in column], dtype=bool)


def _has_pandas_extension_dtype(y) -> bool:
    """Whether ``y`` is a pandas object with a nullable column (``Int64``, ``string``, ...)."""
    if not hasattr(y, "to_numpy"):
        return False
    dtypes = list(y.dtypes) if hasattr(y, "columns") else [getattr(y, "dtype", None)]
    return any(dtype is not None and not isinstance(dtype, np.dtype) for dtype in dtypes)


def label_array(y) -> np.ndarray:
    """``y`` as a 2-D array, one column per task (values and types as given).

    Nullable pandas columns keep their values' type (integers stay integers)
    and give NaN for ``pd.NA``.
    """
    given = y
    if _has_pandas_extension_dtype(y):
        y = y.to_numpy(dtype=object, na_value=np.nan)
    y_arr = as_array(y)
    if _holds_complex(y_arr):  # the one pass over an object array's entries
        raise ValueError(COMPLEX_TARGETS)
    check_structured(y_arr)
    return targets_2d(y_arr, given)


def _kind(label) -> str:
    if isinstance(label, str):
        return "string"
    if isinstance(label, bytes):
        return "bytes"
    return "number" if isinstance(label, numbers.Number) else type(label).__name__


def task_labels(column: np.ndarray, missing: np.ndarray, where: str, missing_label):
    """The labels of one task, with their own type, or a clear error."""
    labels = column[~missing]
    if missing_mask(labels, np.nan).any():
        raise ValueError(
            f"{where} contains missing values (None, NaN or pd.NA), but "
            f"missing_label={missing_label!r}: mark missing labels with missing_label, "
            "or keep the default missing_label=np.nan."
        )
    if labels.dtype == object:
        kinds = sorted({_kind(v) for v in labels}, key=lambda k: (k != "string", k))
        if len(kinds) > 1:
            raise ValueError(
                f"Mix of label input types ({' and '.join(kinds)}) in {where}: every label of "
                "a task must be a string, or every label a number."
            )
        labels = np.array(labels.tolist())  # the labels' own type (ints, floats, strings)
    if labels.ndim != 1:
        raise ValueError(f"Unknown label type in {where}: each label must be a scalar.")
    if labels.dtype == object and len(labels):  # e.g. Decimal, Timestamp: no numpy type
        raise ValueError(
            f"Unknown label type in {where}: its labels are of type "
            f"{type(labels[0]).__name__}, but labels must be strings, integers or booleans. "
            "Convert them, e.g. with y.astype(str) or y.astype(int)."
        )
    check_classification_targets(labels)
    return labels
