"""Validation of targets, labels and input frames (sk_mtbnn._validation, estimators._labels).

Each bad input once ended in a numpy, pandas or narwhals message (``setting an array element
with a sequence``, ``could not convert string to float``, ``Expected unique column names``),
in advice that did not apply (``Drop that column`` for a Series) or was accepted as wrong
numbers (dates as nanoseconds, a structured array as its first field); each now ends in an
error that names the entry or column and what to change.
"""

import decimal

import numpy as np
import pandas as pd
import pytest

from sk_mtbnn import BayesAggMTLClassifier, SparseMultiTaskBNNRegressor
from sk_mtbnn import _validation as validation
from sk_mtbnn._validation import check_input_frame, check_regression_targets
from sk_mtbnn.estimators import _labels
from sk_mtbnn.estimators._labels import label_array

RNG = np.random.RandomState(0)
X4 = np.zeros((4, 1))


def _regression_targets(y):
    return check_regression_targets(y, np.zeros((len(y), 1)), "SparseMultiTaskBNNRegressor")


# ------------------------------------------------------------ one pass over object entries
@pytest.fixture
def object_entries_read(monkeypatch):
    """The number of object entries the complex check reads, over all its calls."""
    read = []
    real = validation._holds_complex

    def counting(a):
        if a.dtype == object:
            read.append(a.size)
        return real(a)

    monkeypatch.setattr(validation, "_holds_complex", counting)
    monkeypatch.setattr(_labels, "_holds_complex", counting)
    return read


OBJECT_FRAMES = {
    # (frame, number of object entries)
    "all_object": (pd.DataFrame(RNG.normal(size=(50, 3))).astype(object), 150),
    "float_and_object": (
        pd.DataFrame({"a": RNG.normal(size=50), "b": RNG.normal(size=50).astype(object)}),
        50,
    ),
    "nullable_and_object": (
        pd.DataFrame({"a": pd.array(np.arange(50), dtype="Int64"), "b": np.ones(50, dtype=object)}),
        50,
    ),
    "series": (pd.Series(RNG.normal(size=50), dtype=object), 50),
}


@pytest.mark.parametrize("name", sorted(OBJECT_FRAMES))
def test_regression_targets_read_each_object_entry_once(name, object_entries_read):
    # Was twice (np.asarray(y, dtype=object), then np.asarray(y)): 2x the time on large frames.
    frame, n_object = OBJECT_FRAMES[name]
    _regression_targets(frame)
    assert sum(object_entries_read) == n_object


def test_labels_read_each_object_entry_once(object_entries_read):
    labels = pd.DataFrame(RNG.randint(0, 3, (50, 2))).astype(object)
    label_array(labels)
    assert sum(object_entries_read) == 100


@pytest.mark.parametrize(
    "frame",
    [
        pd.DataFrame({"a": [1.0, 2.0], "b": np.array([1.0, np.complex64(1j)], dtype=object)}),
        pd.DataFrame({"a": pd.array([1, 2], dtype="Int64"), "b": np.array([1, 2j], object)}),
        pd.Series([1.0, 2.0 + 0j], dtype=object),
    ],
    ids=["numpy_complex", "beside_nullable", "series"],
)
def test_one_pass_still_finds_complex_entries(frame):
    with pytest.raises(ValueError, match="Complex data not supported"):
        _regression_targets(frame)
    with pytest.raises(ValueError, match="Complex data not supported"):
        label_array(frame)


# ------------------------------------------------------------ regression targets
@pytest.mark.parametrize(
    ("y", "match"),
    [
        (
            pd.Series([1.0, "a", 2.0, None], name="yield"),
            r"needs numeric targets, but y holds 'a' \(of type str\) at row 1, task 0 "
            r"\('yield'\)\. Encode the targets as numbers",
        ),
        (
            pd.DataFrame({"a": pd.array([1, 2, None, 4], dtype="Int64"), "b": ["x"] * 4}),
            r"y holds 'x' \(of type str\) at row 0, task 1 \('b'\)",
        ),
        (pd.Series(pd.to_datetime(["2020"] * 4)), r"dates or durations .*days since"),
        (pd.Series(pd.to_datetime(["2020"] * 4)).dt.tz_localize("UTC"), "dates or durations"),
        (np.arange(4).astype("timedelta64[s]"), r"dates or durations .*total_seconds"),
        (np.zeros(4, dtype=[("a", float), ("b", int)]), r"structured .*np\.c_\[y\['a'\], y\['b'\]"),
        ([[1.0], [1.0, 2.0], [1.0], [1.0]], r"y is ragged: its rows have different lengths"),
        ({"a": [1.0, 2.0, 3.0, 4.0]}, r"got an object of type dict\. Pass a list"),
        (3.0, r"got 3\.0 of type float"),
        (pd.DataFrame(index=range(4)), r"y has shape \(4, 0\): no task"),
    ],
    ids=[
        "string",
        "string_beside_nullable",
        "datetime",
        "datetime_tz",
        "timedelta",
        "structured",
        "ragged",
        "dict",
        "scalar",
        "no_column",
    ],
)
def test_bad_regression_targets_say_what_to_change(y, match):
    with pytest.raises(ValueError, match=match):
        check_regression_targets(y, X4, "SparseMultiTaskBNNRegressor")


@pytest.mark.parametrize(
    "y",
    [
        pd.Series([1.0, pd.NA, 2.0, None], dtype=object),
        pd.Series([1.0, None, 2.0, None], dtype="Float64"),
        pd.Series(["1", None, "2", pd.NA], dtype="string"),
    ],
    ids=["object", "Float64", "string"],
)
def test_none_and_pd_na_are_missing_regression_labels(y):
    # The object and string forms were refused as "(e.g. strings)".
    np.testing.assert_array_equal(_regression_targets(y), [[1.0], [np.nan], [2.0], [np.nan]])


def test_nullable_boolean_targets_with_na_are_missing_labels():
    # Was "needs numeric targets ... (e.g. strings)"; numpy booleans were accepted as 0/1.
    y = pd.Series([True, None, False, True], dtype="boolean")
    np.testing.assert_array_equal(_regression_targets(y), [[1.0], [np.nan], [0.0], [1.0]])


def test_a_fit_with_pd_na_labels_equals_the_fit_with_nan():
    X = RNG.uniform(-1, 1, (30, 2))
    y = np.sin(X[:, 0])
    y_nan = np.where(np.arange(30) % 3 == 0, np.nan, y)
    y_na = pd.Series(y_nan, dtype=object).where(~np.isnan(y_nan), pd.NA)
    est = SparseMultiTaskBNNRegressor((8,), regime="network", max_epochs=3, random_state=0)
    expected = est.fit(X, y_nan).predict(X)
    np.testing.assert_array_equal(est.fit(X, y_na).predict(X), expected)  # the same fit


# ------------------------------------------------------------ names in the messages
@pytest.mark.parametrize(
    ("y", "match"),
    [
        (pd.Series([np.nan] * 4, name="yield"), r"^y \(the Series 'yield'\) has no label"),
        (pd.Series([np.nan] * 4, name=("a", 1)), r"^y \(the Series \('a', 1\)\) has no label"),
        (np.full(4, np.nan), r"^y has no label"),
    ],
    ids=["named", "tuple_name", "array"],
)
def test_a_single_task_without_label_is_not_told_to_drop_a_column(y, match):
    # Was "task 0 ('yield') has no label: every entry of y[:, 0] is NaN. Drop that column".
    with pytest.raises(ValueError, match=match) as error:
        SparseMultiTaskBNNRegressor((8,), regime="network").fit(X4, y)
    message = str(error.value)
    assert "Provide at least one label" in message
    assert "Drop that column" not in message and "y[:, 0]" not in message


def test_task_labels_are_shown_as_given():
    # Was task 1 ("('a', 2)"): the label's str in quotes, as if the column were a string.
    y = pd.DataFrame([[1.0, np.nan]] * 4, columns=pd.MultiIndex.from_tuples([("a", 1), ("a", 2)]))
    with pytest.raises(ValueError, match=r"^task 1 \(\('a', 2\)\) has no label: .*y\[:, 1\]"):
        _regression_targets(y)
    y = pd.Series([1.0, np.inf, 2.0, 3.0], name=0)
    with pytest.raises(ValueError, match=r"first at row 1, task 0 \(0\)\)"):
        _regression_targets(y)


def test_a_pandas_index_label_is_named_with_the_row():
    y = pd.Series([1.0, np.inf, 2.0, 3.0], name="y", index=list("abcd"))
    with pytest.raises(ValueError, match=r"row 1 \(index label 'b'\), task 0 \('y'\)"):
        _regression_targets(y)


# ------------------------------------------------------------ class labels
def _classifier_fit(y):
    X = RNG.uniform(-1, 1, (20, 2))
    BayesAggMTLClassifier((4,), max_epochs=1, random_state=0).fit(X, y)


def _cycle(values, n=20):
    return np.array([values[i % len(values)] for i in range(n)], dtype=object)


@pytest.mark.parametrize(
    ("y", "match"),
    [
        (_cycle([b"a", "b"]), r"Mix of label input types \(string and bytes\) in task 0"),
        (
            _cycle([decimal.Decimal(1), decimal.Decimal(2)]),
            r"Unknown label type in task 0: its labels are of type Decimal.*y\.astype\(int\)",
        ),
        (
            pd.Series(pd.to_datetime(_cycle(["2020", "2021"]))).dt.tz_localize("UTC"),
            r"Unknown label type in task 0: its labels are of type Timestamp",
        ),
        ([[0], [1, 0]] * 10, r"y is ragged"),
        ({"a": [0, 1]}, r"got an object of type dict"),
        (pd.DataFrame(index=range(20)), r"y has shape \(20, 0\): no task"),
        (np.zeros(20, dtype=[("a", int)]), r"structured array .*np\.c_\[y\['a'\]\]"),
    ],
    ids=["bytes_and_str", "decimal", "timestamp", "ragged", "dict", "no_column", "structured"],
)
def test_bad_class_labels_say_what_to_change(y, match):
    # Were "(string and number)", "Unknown label type: unknown", numpy's "inhomogeneous
    # shape", "got ()", "Only 0 row(s) of y carry a label" and "a single class (np.void...)".
    with pytest.raises(ValueError, match=match):
        _classifier_fit(y)


# ------------------------------------------------------------ input frames
X_FRAME = pd.DataFrame({"a": np.arange(5.0), "b": np.arange(5.0) * 2})


@pytest.mark.parametrize(
    ("X", "match"),
    [
        (
            X_FRAME.astype(object).assign(b=[1.0, pd.NA, 2.0, 3.0, 4.0]),
            r"column 'b' of X holds a missing value \(<NA>\) at row 1.*SimpleImputer",
        ),
        (
            X_FRAME.astype(object).assign(b=[1.0, "x", 2.0, 3.0, 4.0]),
            r"column 'b' of X holds 'x' \(of type str\) at row 1.*OneHotEncoder",
        ),
        (X_FRAME.assign(b=[b"x"] * 5), r"holds b'x' \(of type bytes\) at row 0"),
        (X_FRAME.assign(b=pd.Categorical(list("uvuvu"))), r"column 'b' of X holds 'u'"),
        (X_FRAME.assign(b=pd.array(["u", "v", "u", "v", None], dtype="string")), "holds 'u'"),
        (
            X_FRAME.assign(b=np.array([1.0, np.complex128(1j)] * 2 + [0.0], dtype=object)),
            r"Complex data not supported: column 'b' of X",
        ),
        (
            X_FRAME.set_axis(["a", "a"], axis=1),
            r"X has duplicate column names \('a'\): give each column its own name",
        ),
        (X_FRAME.assign(b=pd.date_range("2020", periods=5)), r"dtype datetime64\[.*\] \(dates"),
        (X_FRAME.assign(b=pd.date_range("2020", periods=5, tz="UTC")), r", UTC\] \(dates"),
        (X_FRAME.assign(b=pd.period_range("2020", periods=5)), r"the dtype period\[D\]"),
        (X_FRAME.assign(b=pd.interval_range(0, 5)), r"the dtype interval\["),
    ],
    ids=[
        "pd_na",
        "mixed",
        "bytes",
        "category",
        "string",
        "complex_object",
        "duplicate_names",
        "datetime",
        "datetime_tz",
        "period",
        "interval",
    ],
)
def test_input_frames_scikit_learn_cannot_read_are_refused_clearly(X, match):
    with pytest.raises(ValueError, match=match):
        check_input_frame(X)


@pytest.mark.parametrize(
    "X",
    [
        X_FRAME,
        X_FRAME.map(decimal.Decimal),
        X_FRAME.astype(object),
        X_FRAME.assign(b=pd.Categorical([1.0, 2.0, 1.0, 2.0, 1.0])),
        X_FRAME.set_axis(pd.MultiIndex.from_tuples([("a", 1), ("a", 2)]), axis=1),
        X_FRAME.assign(b=np.nan),  # validate_data's own "Input X contains NaN" names it
        X_FRAME.to_numpy(),
    ],
    ids=["numeric", "decimal", "object_numbers", "numeric_category", "multiindex", "nan", "array"],
)
def test_input_frames_of_numbers_are_left_to_validate_data(X):
    check_input_frame(X)  # no error
