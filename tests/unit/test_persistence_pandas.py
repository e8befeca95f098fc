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


@pytest.mark.parametrize(
    ("frame", "match"),
    [
        (TASK_FRAME.assign(kind=pd.Categorical(["a", "b"])), r"\(column 'kind'\) has the dtype "),
        (TASK_FRAME.astype(object), r"\(column 'size'\) has the dtype 'object'"),
        (TASK_FRAME.astype({"n_layers": "Int64"}), "the dtype 'Int64'"),
        (TASK_FRAME.set_index([["a", "b"], [1, 2]]), r"\.index is a MultiIndex, which"),
        (TASK_FRAME.set_axis(pd.to_datetime(["2020", "2021"])), r"\.index is a DatetimeIndex"),
        (
            TASK_FRAME.set_axis(pd.Index([np.int64(1), "a"], dtype=object)),
            r"\.index\[0\] is .* \(of type int64\), not a string",
        ),
    ],
    ids=["category", "object", "nullable", "multiindex", "datetime", "numpy_labels"],
)
def test_save_refuses_pandas_values_it_cannot_store(frame, match, tmp_path):
    with pytest.raises(TypeError, match=match) as error:
        sk_mtbnn.save(S(alpha=frame), tmp_path / "m")
    assert "to_numpy(dtype=float)" in str(error.value)  # says what to pass instead
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
        (lambda f: f["dtypes"].__setitem__(0, "object"), "holds an array of dtype 'float64'"),
        (lambda f: f["columns"]["labels"].__setitem__(0, _ESTIMATOR), "not a string, a number"),
        (lambda f: f["index"].update(name={"__optimizer__": "SGD"}), "name .* not a string"),
        (lambda f: f["index"].update(dtype="category"), "labels are stored with the dtypes"),
        (lambda f: f["values"].__setitem__(0, _ESTIMATOR), "names an array"),
        (lambda f: f["index"].update(__import__="os"), "index with the entries"),
        (lambda f: f.update(reduce="os.system"), "DataFrame with the entries"),
        (lambda f: f["dtypes"].pop(), "3 column labels, 2 dtypes and 3 columns"),
    ],
    ids=["dtype", "label", "name", "index_dtype", "values", "index_key", "key", "count"],
)
def test_load_refuses_a_tampered_dataframe(saved_frame, tamper, match, tmp_path):
    path = tmp_path / "m.skmtbnn"
    path.write_bytes(saved_frame)
    _rewrite(path, metadata=lambda meta: tamper(_frame(meta)))
    with pytest.raises(ValueError, match=rf"is not a valid sk_mtbnn file: .*{match}"):
        sk_mtbnn.load(path)


def test_load_refuses_a_non_numeric_array_as_a_dataframe_column(saved_frame, tmp_path):
    # The arrays member is replaced (with its checksum) and the recorded dtype matches it:
    # only the loader's own check of the column's dtype kind refuses it.
    path = tmp_path / "m.skmtbnn"
    path.write_bytes(saved_frame)
    key = _frame(json.loads(_members(path)["metadata.json"]))["values"][0]
    with np.load(io.BytesIO(_members(path)["arrays.npz"])) as stored:
        arrays = {k: stored[k] for k in stored.files}
    arrays[key] = np.array(["rm", "-rf"])
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    _rewrite(
        path,
        metadata=lambda m: _frame(m)["dtypes"].__setitem__(0, "<U3"),
        **{"arrays.npz": buffer.getvalue()},
    )
    with pytest.raises(ValueError, match=r"column of dtype '<U3' .*only numeric and boolean"):
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
