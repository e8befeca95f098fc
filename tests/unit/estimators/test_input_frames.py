"""X frames that pandas or narwhals would refuse with messages of their own, and the
classifier's messages for targets without labels.

Every estimator calls ``check_input_frame`` where a user's X enters (fit, the predict
and score methods, the prior's predictions, IterativeMagnitudePruning's X and X_val),
so a missing value in an object column, duplicate column names or a date column get a
``ValueError`` that says what to change, in fit and in predict alike.
"""

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_array_equal

from sk_mtbnn import (
    BayesAggMTLClassifier,
    BayesAggMTLRegressor,
    IterativeMagnitudePruning,
    SparseMultiTaskBNNRegressor,
)

N = 40
SMALL = {"hidden_layer_sizes": (8,), "max_epochs": 5, "random_state": 0}
ESTIMATORS = {
    "regressor": lambda: BayesAggMTLRegressor(**SMALL),
    "sparse": lambda: SparseMultiTaskBNNRegressor(**SMALL, n_estimators=1),
    "classifier": lambda: BayesAggMTLClassifier(**SMALL),
}
#: What each bad frame's error must say: the column and what to change.
MESSAGES = {
    "na_in_object": r"column 'b' of {X} holds a missing value \(<NA>\) at row 3.*Impute them",
    "duplicate_names": r"^{X} has duplicate column names \('a'\): give each column its own",
    "datetime": r"column 'b' of {X} has the dtype datetime64.*convert it to numbers",
}


def message(kind: str, X: str = "X") -> str:
    return MESSAGES[kind].format(X=X)


def frame() -> pd.DataFrame:
    rng = np.random.RandomState(0)
    return pd.DataFrame(rng.normal(size=(N, 2)), columns=["a", "b"])


def targets(name: str, X: pd.DataFrame) -> np.ndarray:
    if name == "classifier":
        return np.where(X["a"] > 0, "hot", "cold")
    return X["a"].to_numpy() + 0.1 * np.random.RandomState(1).normal(size=N)


def bad_frame(kind: str) -> pd.DataFrame:
    """A frame with the columns of ``frame()`` and one defect."""
    X = frame()
    if kind == "na_in_object":
        X["b"] = X["b"].astype(object)
        X.loc[3, "b"] = pd.NA
    elif kind == "duplicate_names":
        X.columns = ["a", "a"]
    else:
        X["b"] = pd.date_range("2020-01-01", periods=N)
    return X


@pytest.fixture(scope="module")
def fitted():
    X = frame()
    return {name: make().fit(X, targets(name, X)) for name, make in ESTIMATORS.items()}


@pytest.mark.parametrize("kind", MESSAGES)
@pytest.mark.parametrize("name", ESTIMATORS)
def test_fit_refuses_the_frame_saying_what_to_change(name, kind):
    X = bad_frame(kind)
    with pytest.raises(ValueError, match=message(kind)):
        ESTIMATORS[name]().fit(X, targets(name, frame()))


@pytest.mark.parametrize("kind", MESSAGES)
@pytest.mark.parametrize(
    "name, method",
    [
        ("regressor", "predict"),
        ("regressor", "score"),
        ("sparse", "predict"),
        ("sparse", "ood_score"),
        ("classifier", "predict"),
        ("classifier", "predict_proba"),
        ("classifier", "score"),
    ],
)
def test_predict_and_score_refuse_the_frame(fitted, name, method, kind):
    X = bad_frame(kind)
    args = (X, targets(name, frame())) if method == "score" else (X,)
    with pytest.raises(ValueError, match=message(kind)):
        getattr(fitted[name], method)(*args)


@pytest.mark.parametrize("kind", MESSAGES)
def test_predictions_of_the_prior_refuse_the_frame(kind):
    with pytest.raises(ValueError, match=message(kind)):
        SparseMultiTaskBNNRegressor(**SMALL).predict(bad_frame(kind), return_std=True)


@pytest.mark.parametrize("kind", MESSAGES)
def test_pruning_refuses_X_and_X_val_before_training(kind):
    X, y = frame(), targets("sparse", frame())
    imp = IterativeMagnitudePruning(SparseMultiTaskBNNRegressor(**SMALL), n_rounds=1)
    with pytest.raises(ValueError, match=message(kind)):
        imp.fit(bad_frame(kind), y)
    # The validation rows are named as such.
    with pytest.raises(ValueError, match=message(kind, "X_val")):
        imp.fit(X, y, X_val=bad_frame(kind), y_val=y)


def test_numbers_in_an_object_column_fit_as_the_float_array():
    # An object column of Python floats passes the check; validate_data turns it into
    # the same float64 array, so the seeded fits (one torch thread) are identical.
    X = frame()
    X_object = X.astype({"b": object})
    y = targets("regressor", X)
    expected = ESTIMATORS["regressor"]().fit(X.to_numpy(), y).predict(X.to_numpy())
    assert_array_equal(ESTIMATORS["regressor"]().fit(X_object, y).predict(X_object), expected)


# ------------------------------------------------------------- classifier targets
def test_classifier_names_a_series_task_by_its_name():
    y = pd.Series(["a"] * N, name="label")
    with pytest.raises(ValueError, match=r"task 0 \('label'\) has a single class \('a'\)"):
        ESTIMATORS["classifier"]().fit(frame(), y)


def test_classifier_tells_a_1d_y_without_label_to_provide_one():
    y = pd.Series([np.nan] * N, name="label")
    with pytest.raises(ValueError) as info:
        ESTIMATORS["classifier"]().fit(frame(), y)
    message = str(info.value)
    assert message.startswith("y (the Series 'label') has no label: every entry is missing")
    assert message.endswith("Provide at least one label.")
    assert "y[:, 0]" not in message and "Drop that column" not in message


def test_classifier_1d_array_with_its_own_missing_label():
    clf = BayesAggMTLClassifier(**SMALL, missing_label=-1)
    with pytest.raises(
        ValueError,
        match=r"^y has no label: every entry equals missing_label=-1\. Provide at least one",
    ):
        clf.fit(frame(), np.full(N, -1))


def test_classifier_tells_a_task_column_without_label_to_be_dropped_or_labelled():
    y = pd.DataFrame({"a": np.where(frame()["a"] > 0, 1, 0), "b": np.nan})
    with pytest.raises(
        ValueError,
        match=r"task 1 \('b'\) has no label: every entry of y\[:, 1\] is missing .*"
        r"Drop that column or provide at least one label for it",
    ):
        ESTIMATORS["classifier"]().fit(frame(), y)
