"""sk_mtbnn.save / sk_mtbnn.load of pandas values: DataFrames and Series as plain data."""

import io
import json
import sys

import numpy as np
import pandas as pd
import pytest
from persistence_helpers import (
    NETWORK,
    S,
    X,
    Y,
    _fit,
    _members,
    _rewrite,
    _round_trip,
    assert_same_fitted_state,
    assert_same_params,
)

import sk_mtbnn


@pytest.fixture(scope="module")
def network_regressor():
    return _fit(NETWORK, X, Y)


# Mixed numeric and boolean columns, string labels for the tasks and columns.
TASK_FRAME = pd.DataFrame(
    {"size": [0.5, 2.0], "n_layers": [1, 3], "pretrained": [True, False]}, index=["sin", "sq"]
)


@pytest.mark.parametrize("n_estimators", [1, 2])
def test_dataframe_task_features_round_trip(n_estimators, tmp_path):
    reg = _fit(
        S((8,), head_prior="gating", n_estimators=n_estimators, max_epochs=3, random_state=0),
        X,
        Y,
        task_features=TASK_FRAME,
    )
    loaded = _round_trip(reg, tmp_path)
    assert_same_fitted_state(reg, loaded)  # the frame too, by assert_frame_equal
    pd.testing.assert_frame_equal(loaded._task_features_input, TASK_FRAME, check_exact=True)
    for a, b in zip(reg.predict(X, return_std=True), loaded.predict(X, return_std=True)):
        np.testing.assert_array_equal(a, b)
    # The loaded frame is the one a refit of the members is given.
    assert loaded._member_fit_params()["task_features"] is loaded._task_features_input


@pytest.mark.parametrize(
    "value",
    [
        pd.Series(np.full(40, 1e-3), name="alpha"),
        pd.Series(np.arange(3, dtype=np.int32), index=pd.Index([0.5, 1.5, 2.5], name="at")),
        pd.Series([True, False], index=pd.Index(["a", 1], dtype=object)),
        pd.DataFrame(np.full((40, 2), 1e-3), columns=pd.RangeIndex(2, name="task")),
        pd.DataFrame([[1.0, 2.0j]], columns=["x", "x"], index=pd.Index([7], dtype=np.uint8)),
        pd.DataFrame(index=pd.RangeIndex(3, 9, 2)),
    ],
    ids=["named", "float_index", "object_labels", "named_columns", "duplicates", "no_column"],
)
def test_pandas_parameters_round_trip(value, tmp_path):
    est = S(alpha=value)
    loaded = _round_trip(est, tmp_path)
    assert_same_params(est, loaded)  # assert_frame_equal / assert_series_equal, exactly


# Every numpy dtype the format stores (bool, int, uint, float, complex), each width, and a
# non-native byte order: each column keeps its own dtype through the round trip.
VALUE_DTYPES = [
    np.dtype(code)
    for code in ("?", "i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8", "f2", "f4", "f8", "c8")
] + [np.dtype("c16"), np.dtype(">f8")]


def _column(dtype, n=3):
    values = np.array([0, 1, 1][:n]) if dtype.kind == "b" else np.arange(n) * 3 + 1
    column = values.astype(dtype)
    return column + 0.5j * np.arange(n).astype(dtype) if dtype.kind == "c" else column


def test_every_stored_dtype_round_trips_in_one_dataframe(tmp_path):
    frame = pd.DataFrame({str(d): _column(d) for d in VALUE_DTYPES})
    loaded = _round_trip(S(alpha=frame), tmp_path).alpha
    assert list(loaded.dtypes) == VALUE_DTYPES  # names equal dtypes: no silent cast
    pd.testing.assert_frame_equal(loaded, frame, check_exact=True, check_column_type=True)


@pytest.mark.parametrize("dtype", VALUE_DTYPES, ids=str)
def test_every_stored_dtype_round_trips_as_a_series(dtype, tmp_path):
    series = pd.Series(_column(dtype), name=str(dtype), index=pd.Index([2.5, -1.0, 7.0]))
    loaded = _round_trip(S(alpha=series), tmp_path).alpha
    assert loaded.dtype == dtype
    pd.testing.assert_series_equal(loaded, series, check_exact=True, check_index_type=True)


def _stored(tmp_path, value, tag):
    path = tmp_path / "m.skmtbnn"
    sk_mtbnn.save(S(alpha=value), path)
    meta = json.loads(_members(path)["metadata.json"])
    with np.load(io.BytesIO(_members(path)["arrays.npz"])) as arrays:
        return meta["tree"]["params"]["alpha"][tag], {k: arrays[k] for k in arrays.files}


def test_the_dtype_is_stored_once_by_the_arrays(tmp_path):
    # The JSON tree holds no dtype of a column: the .npy header of its array is the record.
    frame = pd.DataFrame({"a": np.arange(2, dtype=np.int16), "b": [0.5, 1.5]})
    node, arrays = _stored(tmp_path, frame, "__dataframe__")
    assert set(node) == {"columns", "index", "values"}
    assert [arrays[k].dtype for k in node["values"]] == [np.int16, np.float64]
    node, arrays = _stored(tmp_path, pd.Series([1, 2], dtype=np.uint8, name="s"), "__series__")
    assert set(node) == {"name", "index", "values"}
    assert arrays[node["values"]].dtype == np.uint8


@pytest.mark.parametrize(
    ("frame", "match"),
    [
        (TASK_FRAME.assign(kind=pd.Categorical(["a", "b"])), r"\(column 'kind'\) has the dtype "),
        (TASK_FRAME.astype(object), r"\(column 'size'\) has the dtype 'object'"),
        (TASK_FRAME.astype({"n_layers": "Int64"}), "the dtype 'Int64'"),
        (TASK_FRAME.astype({"pretrained": "boolean"}), "the dtype 'boolean'"),
        (TASK_FRAME.assign(kind=pd.array(["a", None], dtype="string")), "the dtype 'string'"),
        (TASK_FRAME.assign(at=pd.to_datetime(["2020", "2021"]).tz_localize("UTC")), ", UTC]'"),
        (TASK_FRAME.assign(at=pd.to_datetime(["2020", "2021"])), "the dtype 'datetime64"),
        (TASK_FRAME.astype({"size": pd.SparseDtype(float)}), r"the dtype 'Sparse\[float64"),
        (TASK_FRAME.set_index([["a", "b"], [1, 2]]), r"\.index is a MultiIndex, which"),
        (TASK_FRAME.set_axis(pd.to_datetime(["2020", "2021"])), r"\.index is a DatetimeIndex"),
        (
            TASK_FRAME.set_axis(pd.Index([np.int64(1), "a"], dtype=object)),
            r"\.index\[0\] is .* \(of type int64\), but .*int\(x\) or float\(x\).*"
            r"obj\.index = obj\.index\.astype\(str\)",
        ),
    ],
    ids=[
        "category",
        "object",
        "nullable",
        "nullable_boolean",
        "string",
        "datetime_tz",
        "datetime_column",
        "sparse",
        "multiindex",
        "datetime",
        "numpy_labels",
    ],
)
def test_save_refuses_pandas_values_it_cannot_store(frame, match, tmp_path):
    with pytest.raises(TypeError, match=match) as error:
        sk_mtbnn.save(S(alpha=frame), tmp_path / "m")
    assert "to_numpy(dtype=float)" in str(error.value)  # says what to pass instead
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("value", "match"),
    [
        (
            pd.Series([1.0], name=("a", 1)),
            r"alpha\.name is \('a', 1\) \(of type tuple\).*rename the Series with "
            r"series\.rename\('a_name'\)",
        ),
        (
            pd.Series([1.0], name=np.int64(3)),
            r"alpha\.name is np\.int64\(3\).*int\(x\).*series\.rename\('a_name'\)",
        ),
        (
            pd.Series([1.0], index=pd.Index([0], name=("i", 0))),
            r"alpha\.index\.name is .*obj\.rename_axis\('a_name'\) for the index",
        ),
        (
            pd.DataFrame([[1.0]], columns=pd.Index(["a"], name=np.nan)),
            r"alpha\.columns\.name is nan .*rename_axis\('a_name', axis=1\)",
        ),
        (
            pd.DataFrame([[1.0, 2.0]], columns=pd.Index([("a", 1), "b"], tupleize_cols=False)),
            r"alpha\.columns\[0\] is \('a', 1\).*frame\.columns = \[str\(c\) for c",
        ),
    ],
    ids=["series_tuple", "series_numpy_int", "index_name", "columns_name", "column_label"],
)
def test_save_says_how_to_rename_a_name_or_label_it_cannot_store(value, match, tmp_path):
    # These used to end in the advice for dtypes (astype('float64'), reset_index), which
    # leaves the name as it was.
    with pytest.raises(TypeError, match=match) as error:
        sk_mtbnn.save(S(alpha=value), tmp_path / "m")
    assert "astype('float64')" not in str(error.value)
    assert list(tmp_path.iterdir()) == []


def test_save_refuses_pandas_attrs(tmp_path):
    series = pd.Series([1.0, 2.0])
    series.attrs["source"] = "lab"  # metadata the format would lose
    with pytest.raises(TypeError, match=r"attrs \['source'\].*obj\.attrs = \{\}"):
        sk_mtbnn.save(S(alpha=series), tmp_path / "m")


@pytest.fixture(scope="module")
def saved_frame(tmp_path_factory):
    """The file of a fitted model whose task features were a DataFrame."""
    path = tmp_path_factory.mktemp("frame") / "m.skmtbnn"
    gating = S((8,), head_prior="gating", max_epochs=2, random_state=0)
    reg = _fit(gating, X, Y, task_features=TASK_FRAME)
    sk_mtbnn.save(reg, path)
    return path.read_bytes()


def _frame(meta):
    return meta["tree"]["state"]["attributes"]["_task_features_input"]["__dataframe__"]


_ESTIMATOR = {"__estimator__": "SparseMultiTaskBNNRegressor", "params": {}}


@pytest.mark.parametrize(
    ("tamper", "match"),
    [
        (lambda f: f.update(dtypes=["object"] * 3), "DataFrame with the entries"),
        (lambda f: f["columns"]["labels"].__setitem__(0, _ESTIMATOR), "not a string, a number"),
        (lambda f: f["index"].update(name={"__optimizer__": "SGD"}), "name .* not a string"),
        (lambda f: f["index"].update(dtype="category"), "labels are stored with the dtypes"),
        (lambda f: f["values"].__setitem__(0, _ESTIMATOR), "names an array"),
        (lambda f: f["index"].update(__import__="os"), "index with the entries"),
        (lambda f: f.update(reduce="os.system"), "DataFrame with the entries"),
        (lambda f: f["values"].pop(), "3 column labels and 2 columns"),
        (lambda f: f.update(values={"0": f["values"][0]}), "values are not a JSON list"),
        # Two that pandas itself would have refused (step) or silently cast to strings.
        (lambda f: f.update(index={"range": [0, 2, 0], "name": None}), "RangeIndex with a step"),
        (lambda f: f["columns"]["labels"].__setitem__(0, 1), "labels other than strings"),
    ],
    ids=[
        "dtypes",
        "label",
        "name",
        "index_dtype",
        "values",
        "index_key",
        "key",
        "count",
        "list",
        "range_step",
        "string_labels",
    ],
)
def test_load_refuses_a_tampered_dataframe(saved_frame, tamper, match, tmp_path):
    path = tmp_path / "m.skmtbnn"
    path.write_bytes(saved_frame)
    _rewrite(path, metadata=lambda meta: tamper(_frame(meta)))
    with pytest.raises(ValueError, match=rf"is not a valid sk_mtbnn file: .*{match}"):
        sk_mtbnn.load(path)


def test_load_refuses_a_non_numeric_array_as_a_dataframe_column(saved_frame, tmp_path):
    # The arrays member is replaced (with its checksum): only the loader's own check of the
    # column's dtype kind refuses it.
    path = tmp_path / "m.skmtbnn"
    path.write_bytes(saved_frame)
    key = _frame(json.loads(_members(path)["metadata.json"]))["values"][0]
    with np.load(io.BytesIO(_members(path)["arrays.npz"])) as stored:
        arrays = {k: stored[k] for k in stored.files}
    arrays[key] = np.array(["rm", "-rf"])
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    _rewrite(path, **{"arrays.npz": buffer.getvalue()})
    with pytest.raises(ValueError, match=r"array of dtype '<U3' \(only numeric and boolean"):
        sk_mtbnn.load(path)


def test_pandas_is_imported_only_to_load_a_file_that_holds_it(
    saved_frame, network_regressor, tmp_path, monkeypatch
):
    framed = tmp_path / "frame.skmtbnn"
    framed.write_bytes(saved_frame)
    monkeypatch.setitem(sys.modules, "pandas", None)  # ``import pandas`` raises ImportError
    plain = _round_trip(network_regressor, tmp_path)
    np.testing.assert_array_equal(plain.predict(X), network_regressor.predict(X))
    with pytest.raises(ImportError, match=r"holds a pandas DataFrame.*pip install pandas"):
        sk_mtbnn.load(framed)
