"""pandas DataFrames and Series as plain data, for :mod:`._codec`.

A DataFrame is stored as one numpy array per column (which records its
dtype: the file holds it once), its column labels and its index; a Series as
its values, name and index.
An index is a ``range`` (a RangeIndex), a numeric array, or a JSON list of
labels (strings, numbers) with its dtype's name from a fixed list. Columns and
values must have a numeric or boolean numpy dtype (a ``category``, ``object``,
string or nullable extension dtype is refused when saving, with what to
change), so that loading builds the frame from arrays read with
``allow_pickle=False`` and JSON scalars only: no dtype, class or object named
by the file is looked up beyond these fixed lists.

pandas is not imported to save (a DataFrame exists only once pandas has been
imported, so it is read from :data:`sys.modules`) and is imported to load only
when the file holds one.
"""

from __future__ import annotations

import math
import sys

import numpy as np

from ._codec import FormatError, UnrepresentableError

#: numpy dtype kinds of the columns and values stored: bool, int, uint, float, complex.
_VALUE_KINDS = "biufc"
#: numpy dtype kinds of an index stored as an array: bool, int, uint, float.
_INDEX_KINDS = "biuf"
#: dtypes of an index stored as labels, by name (pandas' string dtypes and object).
_LABEL_DTYPES = ("object", "str", "string")
#: The advice of every refusal.
_ADVICE = (
    "The safe format stores DataFrames and Series of numeric or boolean numpy columns "
    "(bool, int, uint, float, complex) with a RangeIndex, a numeric index or labels that are "
    "strings or numbers: convert it (e.g. frame.astype('float64'), "
    "frame.reset_index(drop=True)) or pass it as a numpy array (frame.to_numpy(dtype=float))."
)
#: What to change for a label or name that the format cannot store, by what it is.
_RENAME = {
    "name": "rename the Series with series.rename('a_name') (or series.rename(None))",
    "axis": (
        "rename the axis with obj.rename_axis('a_name') for the index, "
        "frame.rename_axis('a_name', axis=1) for the columns (or None instead of a name)"
    ),
    "labels": (
        "replace the labels with strings or Python numbers, e.g. "
        "frame.columns = [str(c) for c in frame.columns], obj.index = obj.index.astype(str) "
        "or obj.reset_index(drop=True)"
    ),
}


def pandas_tag(value) -> str | None:
    """``"__dataframe__"`` or ``"__series__"`` for a pandas DataFrame or Series, else None."""
    pd = sys.modules.get("pandas")
    if pd is None:
        return None
    if type(value) is pd.DataFrame:
        return "__dataframe__"
    if type(value) is pd.Series:
        return "__series__"
    return None


# ------------------------------------------------------------------ saving
def encode_dataframe(frame, encoder, where: str) -> dict:
    _check_no_attrs(frame, where)
    values = []
    for i, label in enumerate(frame.columns):
        column = frame.iloc[:, i]
        _check_value_dtype(column.dtype, f"{where} (column {label!r})")
        values.append(encoder.array(column.to_numpy()))
    return {
        "columns": _encode_index(frame.columns, encoder, f"{where}.columns"),
        "index": _encode_index(frame.index, encoder, f"{where}.index"),
        "values": values,
    }


def encode_series(series, encoder, where: str) -> dict:
    _check_no_attrs(series, where)
    _check_value_dtype(series.dtype, where)
    return {
        "name": _label(series.name, f"{where}.name", "name"),
        "index": _encode_index(series.index, encoder, f"{where}.index"),
        "values": encoder.array(series.to_numpy()),
    }


def _check_no_attrs(obj, where: str) -> None:
    if obj.attrs:
        raise UnrepresentableError(
            f"{where} is a pandas {type(obj).__name__} with attrs {sorted(obj.attrs)}, which "
            "the safe format does not store: clear them (obj.attrs = {}) before saving."
        )


def _check_value_dtype(dtype, where: str) -> None:
    if not isinstance(dtype, np.dtype) or dtype.kind not in _VALUE_KINDS:
        raise UnrepresentableError(
            f"{where} has the dtype {str(dtype)!r}, which the safe format cannot store. {_ADVICE}"
        )


def _encode_index(index, encoder, where: str) -> dict:
    pd = sys.modules["pandas"]
    name = _label(index.name, f"{where}.name", "axis")
    if type(index) is pd.RangeIndex:
        return {"range": [index.start, index.stop, index.step], "name": name}
    if type(index) is pd.Index:
        dtype = index.dtype
        if isinstance(dtype, np.dtype) and dtype.kind in _INDEX_KINDS:
            return {"array": encoder.array(index.to_numpy()), "name": name}
        if str(dtype) in _LABEL_DTYPES:
            labels = [_label(x, f"{where}[{i}]", "labels") for i, x in enumerate(index)]
            return {"labels": labels, "dtype": str(dtype), "name": name}
    raise UnrepresentableError(
        f"{where} is a {type(index).__name__}"
        + (f" of dtype {str(index.dtype)!r}" if type(index) is pd.Index else "")
        + f", which the safe format cannot store. {_ADVICE}"
    )


def _is_label(x) -> bool:
    """A JSON scalar that reads back as itself: None, bool, int, str or a finite float."""
    return x is None or type(x) in (bool, int, str) or (type(x) is float and math.isfinite(x))


def _label(x, where: str, what: str):
    """``x`` if the format stores it as a label or name; ``what`` keys the advice."""
    if not _is_label(x):
        python = (
            " (int(x) or float(x) turns a numpy number into one)"
            if isinstance(x, np.number)
            else ""
        )
        raise UnrepresentableError(
            f"{where} is {x!r} (of type {type(x).__qualname__}), but the safe format stores "
            f"names and labels that are strings, Python ints, finite floats, booleans or None"
            f"{python}: {_RENAME[what]}, or pass the values as a numpy array "
            "(obj.to_numpy(dtype=float))."
        )
    return x


# ------------------------------------------------------------------ loading
def _import_pandas():
    try:
        import pandas
    except ImportError:
        raise ImportError(
            "This file holds a pandas DataFrame or Series (e.g. task_features given to fit as "
            "a DataFrame): install pandas to load it (pip install pandas)."
        ) from None
    return pandas


def decode_dataframe(node, decoder):
    pd = _import_pandas()
    _check_keys(node, {"columns", "index", "values"}, "DataFrame")
    index = _decode_index(node["index"], decoder, pd)
    columns = _decode_index(node["columns"], decoder, pd)
    values = node["values"]
    if type(values) is not list:
        raise FormatError("a stored DataFrame whose values are not a JSON list.")
    if len(values) != len(columns):
        raise FormatError(
            f"a stored DataFrame with {len(columns)} column labels and {len(values)} columns."
        )
    arrays = [_values(decoder, key, len(index)) for key in values]
    frame = pd.DataFrame(dict(enumerate(arrays)), index=index)
    frame.columns = columns
    return frame


def decode_series(node, decoder):
    pd = _import_pandas()
    _check_keys(node, {"name", "index", "values"}, "Series")
    index = _decode_index(node["index"], decoder, pd)
    values = _values(decoder, node["values"], len(index))
    return pd.Series(values, index=index, name=_stored_label(node["name"]))


def _check_keys(node, keys: set, what: str) -> None:
    if type(node) is not dict or set(node) != keys:
        found = sorted(node) if type(node) is dict else type(node).__name__
        raise FormatError(f"a stored {what} with the entries {found}, expected {sorted(keys)}.")


def _values(decoder, key, n_rows: int) -> np.ndarray:
    """A column of ``n_rows`` values, of the dtype its array records."""
    array = decoder.array(key)
    if array.dtype.kind not in _VALUE_KINDS:
        raise FormatError(
            f"a stored pandas column holds an array of dtype {str(array.dtype)!r} (only "
            "numeric and boolean columns are stored)."
        )
    if array.shape != (n_rows,):
        raise FormatError(
            f"a stored pandas column of shape {array.shape} for an index of {n_rows} rows."
        )
    return array


def _decode_index(node, decoder, pd):
    if type(node) is not dict:
        raise FormatError("a stored pandas index that is not a JSON object.")
    kinds = [k for k in ("range", "array", "labels") if k in node]
    if len(kinds) != 1 or set(node) - {kinds[0], "name", "dtype"}:
        raise FormatError(f"a stored pandas index with the entries {sorted(node)}.")
    name = _stored_label(node.get("name"))
    if kinds == ["range"]:
        bounds = node["range"]
        if type(bounds) is not list or len(bounds) != 3 or any(type(b) is not int for b in bounds):
            raise FormatError("a stored RangeIndex that is not three integers.")
        if bounds[2] == 0:
            raise FormatError("a stored RangeIndex with a step of 0.")
        return pd.RangeIndex(*bounds, name=name)
    if kinds == ["array"]:
        array = decoder.array(node["array"])
        if array.ndim != 1 or array.dtype.kind not in _INDEX_KINDS:
            raise FormatError(
                f"a stored pandas index of shape {array.shape} and dtype {str(array.dtype)!r} "
                "(only 1-d numeric indexes are stored as arrays)."
            )
        return pd.Index(array, name=name)
    labels, dtype = node["labels"], node.get("dtype")
    if type(labels) is not list:
        raise FormatError("a stored pandas index whose labels are not a JSON list.")
    for label in labels:
        _stored_label(label)
    if dtype not in _LABEL_DTYPES:
        raise FormatError(
            f"a stored pandas index of dtype {dtype!r}; labels are stored with the dtypes "
            f"{list(_LABEL_DTYPES)} only."
        )
    if dtype != "object" and not all(type(label) is str for label in labels):
        raise FormatError(
            f"a stored pandas index of dtype {dtype!r} with labels other than strings."
        )
    return pd.Index(labels, dtype=dtype, name=name)


def _stored_label(x):
    """A label or name read from the file: plain JSON scalars only, never a tagged object."""
    if not _is_label(x):
        raise FormatError(
            f"a stored pandas label or name {x!r} that is not a string, a number or null."
        )
    return x
