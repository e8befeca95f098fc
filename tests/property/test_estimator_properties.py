"""Property-based tests of the public estimators (hypothesis).

Every fit on any input ends in one of two ways: a finite prediction of the
right shape (``predict``, ``predict(return_std=True)``, ``predict_proba``
summing to 1), or a ``ValueError``/``TypeError`` whose message names what to
change -- never a torch or numpy message from deep inside. Hypothesis searches
shapes, missing-label patterns (per task, a whole task, a whole row, NaN in
X), scales (x 1e-20 .. 1e20, constant columns, |X| >= 1e160), dtypes (float32,
float64, int, bool, pandas frames with nullable ``Float64``/``Int64`` and
``pd.NA``) and label types (int, str, bool, mixed, pandas ``string`` with NA,
one class). The inputs must come back unchanged.

Tiny networks (one hidden layer of 4, two epochs, one member) keep each fit
at ~10 ms; ``derandomize=True`` draws the same examples in every run.
"""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pytest

from sk_mtbnn import (
    BayesAggMTLClassifier,
    BayesAggMTLRegressor,
    IterativeMagnitudePruning,
    SparseMultiTaskBNNRegressor,
)

hypothesis = pytest.importorskip("hypothesis")
st = pytest.importorskip("hypothesis.strategies")
pd = pytest.importorskip("pandas")

given, settings = hypothesis.given, hypothesis.settings
PROPERTY = settings(
    max_examples=100,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(hypothesis.HealthCheck),
)
TINY = {"hidden_layer_sizes": (4,), "max_epochs": 2, "random_state": 0}

#: Words of numpy/torch internals that a user-facing message must not contain.
INTERNAL_WORDS = ("cholesky", "element 0 of tensors", "broadcast", "index", "linalg", "eigh")


@dataclasses.dataclass
class Case:
    """Inputs of one fit and what is wrong with them (``problems``: the words to expect)."""

    X: object
    y: object
    X_test: np.ndarray
    n_tasks: int
    problems: dict  # problem -> words of which the error message must contain one
    may_fail: dict = dataclasses.field(default_factory=dict)  # the same, for a possible error


def _words_ok(message: str, problems: dict) -> bool:
    low = message.lower()
    return any(word in low for words in problems.values() for word in words)


def _describe(case: Case) -> str:
    return f"problems {sorted(case.problems)}, possible problems {sorted(case.may_fail)}"


def check_outcome(fit_predict, case: Case, fitted=None) -> None:
    """Run ``fit_predict``; a clear error if the case has a problem, else finite outputs.

    ``fitted``: an estimator fitted before, refitted by ``fit_predict``; a refit
    that fails must leave its predictions as they were.
    """
    X_before, y_before = _snapshot(case.X), _snapshot(case.y)
    reference = None if fitted is None else _reference_outputs(fitted)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit_predict()
    except (ValueError, TypeError) as error:
        hypothesis.event("refused")
        message = str(error)
        assert not any(w in message.lower() for w in INTERNAL_WORDS), message
        reasons = {**case.problems, **case.may_fail}
        assert reasons, f"valid input refused: {type(error).__name__}: {message}"
        assert _words_ok(message, reasons), f"{_describe(case)} not named: {message}"
        if fitted is not None:  # issue 15, item 3: validate before touching fitted state
            after = _reference_outputs(fitted)
            assert after[0] == reference[0]
            for a, b in zip(after[1], reference[1]):
                np.testing.assert_array_equal(a, b)
    else:
        hypothesis.event("fitted")
        assert not case.problems, f"accepted invalid input: {_describe(case)}"
    _assert_unchanged(case.X, X_before)
    _assert_unchanged(case.y, y_before)


#: The data of the model fitted before a refit (2 features, 2 tasks).
REF_X = np.random.RandomState(1).standard_normal((20, 2))
REF_Y = np.column_stack([REF_X.sum(1), REF_X[:, 0] > 0]).astype(float)


def _reference_outputs(est):
    if hasattr(est, "predict_proba"):
        outputs = list(est.predict_proba(REF_X[:5]))
    else:
        outputs = list(est.predict(REF_X[:5], return_std=True))
    return (est.n_features_in_, est.n_tasks_), outputs


def _snapshot(a):
    return a.copy(deep=True) if hasattr(a, "copy") and hasattr(a, "iloc") else np.array(a)


def _assert_unchanged(a, before) -> None:
    if hasattr(a, "iloc") or np.asarray(a).dtype == object:  # NaN == NaN in pandas' test
        pd.testing.assert_frame_equal(pd.DataFrame(a), pd.DataFrame(before))
    else:
        np.testing.assert_array_equal(np.asarray(a), before)


# ---------------------------------------------------------------- strategies
def _to_magnitude(a: np.ndarray, magnitude: float) -> np.ndarray:
    """``a`` rescaled so that its largest finite entry is ``magnitude`` (NaN stay)."""
    finite = np.abs(a[np.isfinite(a)])
    return a if finite.size == 0 or finite.max() == 0 else a / finite.max() * magnitude


@st.composite
def regression_cases(draw, min_rows: int = 2) -> Case:
    """X and y with missing labels, scales, dtypes and containers of one random draw."""
    n = draw(st.integers(min_rows, 24))
    n_features = draw(st.integers(1, 3))
    n_tasks = draw(st.integers(1, 3))
    rng = np.random.RandomState(draw(st.integers(0, 2**16)))
    x_exp = draw(st.sampled_from([0, -20, -8, 8, 20]))
    y_exp = draw(st.sampled_from([0, -20, -8, 8, 20]))
    X = rng.standard_normal((n, n_features)) * 10.0**x_exp
    Y = np.column_stack([np.sin(X[:, 0] / 10.0**x_exp) + t for t in range(n_tasks)])
    Y = (Y + 0.1 * rng.standard_normal(Y.shape)) * 10.0**y_exp
    problems = {}
    missing = rng.uniform(size=Y.shape) < draw(st.sampled_from([0.0, 0.3, 0.6]))
    Y[missing] = np.nan
    if draw(st.booleans()) and n > 2:
        Y[rng.randint(n)] = np.nan  # a row without any label
    if draw(st.integers(0, 9)) == 0:
        Y[:, rng.randint(n_tasks)] = np.nan  # a task without any label
    if draw(st.integers(0, 3)) == 0:
        X[:, rng.randint(n_features)] = 3.0 * 10.0**x_exp  # a constant column
    if draw(st.integers(0, 9)) == 0:
        X[rng.randint(n), rng.randint(n_features)] = np.nan
        problems["nan_in_X"] = ("nan",)
    if draw(st.integers(0, 9)) == 0:
        X = _to_magnitude(X, 10.0 ** draw(st.sampled_from([160, 200, 300])))
        problems["huge"] = ("scale", "large", "magnitude", "rescale")
    if draw(st.integers(0, 11)) == 0:
        Y = _to_magnitude(Y, 1e200)
        problems["huge_y"] = ("rescale y",)
    if np.isnan(Y).all(0).any():
        problems["task_without_label"] = ("no label",)
    n_labelled = int((~np.isnan(Y).all(1)).sum())
    if n_labelled < 2:
        problems["few_rows"] = ("row", "sample")
    X_in, y_in = _containers(draw, X, Y)
    X_test = np.nan_to_num(pd.DataFrame(X_in).astype("float64").to_numpy()[:5], nan=0.0)
    return Case(X_in, y_in, X_test, n_tasks, problems)


def _containers(draw, X, Y):
    """X and y in one of the dtypes and containers users pass."""
    kind = draw(st.sampled_from(["float64", "float32", "int", "bool", "pandas", "nullable"]))
    # Integers and booleans only where the draw's values (NaN, huge) survive the cast.
    plain_X = bool(np.isfinite(X).all() and np.abs(X).max() < 1e15)
    plain_Y = bool(not np.isnan(Y).any() and np.abs(Y).max() < 1e15)
    if kind == "float32" and np.nanmax(np.abs(X)) < 1e30:
        X = X.astype(np.float32)
    elif kind == "int" and plain_X:
        X = np.round(X / max(np.abs(X).max(), 1e-300) * 100).astype(np.int64)
        if plain_Y:
            Y = np.round(Y / max(np.abs(Y).max(), 1e-300) * 100).astype(np.int64)
    elif kind == "bool" and plain_X:
        X = X > np.median(X, axis=0)
        if plain_Y:
            Y = Y > np.median(Y, axis=0)
    if kind in ("pandas", "nullable"):
        X = pd.DataFrame(X, columns=[f"x{j}" for j in range(X.shape[1])])
        y = pd.DataFrame(Y, columns=[f"task{t}" for t in range(Y.shape[1])])
        if kind == "nullable":
            X = X.astype("Float64")  # NaN becomes pd.NA
            if np.abs(np.nan_to_num(Y)).max() < 1e15 and draw(st.booleans()):
                y = pd.DataFrame(np.round(_to_magnitude(Y, 100.0)))
                y = y.astype("Int64")  # pd.NA where missing
            else:
                y = y.astype("Float64")
            if Y.shape[1] == 1 and draw(st.booleans()):
                y = y.iloc[:, 0]
        return X, y
    if Y.shape[1] == 1 and draw(st.booleans()):
        return X, Y[:, 0]
    return X, Y


def _labels_per_task(y) -> np.ndarray:
    Y = pd.DataFrame(y).astype("float64").to_numpy()
    return (~np.isnan(Y)).sum(0)


def _check_regression(est, case: Case) -> None:
    pred = est.predict(case.X_test)
    mean, std = est.predict(case.X_test, return_std=True)
    shape = (len(case.X_test),) if case.n_tasks == 1 else (len(case.X_test), case.n_tasks)
    assert pred.shape == mean.shape == std.shape == shape
    assert np.isfinite(mean).all() and np.isfinite(std).all() and (std >= 0).all()


# -------------------------------------------------------------- regressors
def _check_regressor(make, case: Case) -> None:
    est = make().fit(REF_X, REF_Y)

    def fit_predict():
        est.fit(case.X, case.y)
        _check_regression(est, case)
        score = est.score(case.X, case.y)
        if _labels_per_task(case.y).min() >= 2:  # R² needs two labels
            assert np.isfinite(score)

    check_outcome(fit_predict, case, fitted=est)


@PROPERTY
@given(regression_cases(min_rows=1))
def test_sparse_regressor_predicts_or_says_what_to_change(case):
    # One labelled row is enough for this regressor (as for a GP).
    case.problems.pop("few_rows", None)
    if _labels_per_task(case.y).sum() == 0:
        case.problems["few_rows"] = ("label",)
    _check_regressor(lambda: SparseMultiTaskBNNRegressor(n_estimators=1, **TINY), case)


@PROPERTY
@given(regression_cases())
def test_bayesagg_regressor_predicts_or_says_what_to_change(case):
    _check_regressor(lambda: BayesAggMTLRegressor(n_estimators=1, **TINY), case)


@settings(PROPERTY, max_examples=25)
@given(regression_cases(min_rows=6))
def test_pruning_predicts_or_says_what_to_change(case):
    def fit_predict():
        base = SparseMultiTaskBNNRegressor(n_estimators=1, **TINY)
        est = IterativeMagnitudePruning(base, n_rounds=1, random_state=0).fit(case.X, case.y)
        _check_regression(est, case)

    # A task may have no label among the rows that choose the rounds: IMP must say so.
    case.may_fail["split"] = ("validation rows",)
    if _labels_per_task(case.y).min() < 8:
        case.may_fail["few_labels"] = ("label", "row")
    check_outcome(fit_predict, case)


# -------------------------------------------------------------- classifier
@st.composite
def classification_cases(draw) -> Case:
    """Class labels of every type users pass, with missing entries."""
    n = draw(st.integers(4, 24))
    n_tasks = draw(st.integers(1, 2))
    rng = np.random.RandomState(draw(st.integers(0, 2**16)))
    X = rng.standard_normal((n, 2)) * 10.0 ** draw(st.sampled_from([0, -20, 20]))
    problems = {}
    columns = []
    for _ in range(n_tasks):
        valid = ["int", "str", "bool", "float", "string"]
        kind = draw(st.sampled_from([*valid, *valid, "continuous", "mixed", "one"]))
        n_classes = 2 if kind in ("bool", "mixed") else draw(st.integers(2, 3))
        codes = rng.randint(n_classes, size=n)
        codes[:n_classes] = np.arange(n_classes)  # every class present
        missing = rng.uniform(size=n) < draw(st.sampled_from([0.0, 0.0, 0.3, 0.3, 0.3, 1.0]))
        missing[:n_classes] = missing.all()  # labelled, unless the whole task is missing
        if missing.all():
            problems["task_without_label"] = ("no label",)
        if kind == "int":
            col = pd.Series(codes * 3 - 1, dtype=object)
        elif kind == "str":
            col = pd.Series(np.array(["no", "yes", "maybe"])[codes], dtype=object)
        elif kind == "bool":
            col = pd.Series(codes.astype(bool), dtype=object)
        elif kind == "float":
            col = pd.Series(codes.astype(float), dtype=object)  # 0.0, 1.0: discrete
        elif kind == "continuous":
            col = pd.Series(codes / 2.0 + 0.1, dtype=object)  # scikit-learn: not classes
            problems["continuous"] = ("continuous",)
        elif kind == "mixed":
            col = pd.Series([0 if c == 0 else "x" for c in codes], dtype=object)
            problems["mixed"] = ("mix",)
        elif kind == "string":
            col = pd.Series(np.array(["a", "b", "c"])[codes], dtype="string")
        else:
            col = pd.Series(np.zeros(n, dtype=int), dtype=object)
            problems["one_class"] = ("class",)
        col[missing] = pd.NA if kind == "string" else draw(st.sampled_from([np.nan, None]))
        columns.append(col)
    if draw(st.integers(0, 5)) == 0:
        X[rng.randint(n), 0] = np.nan
        problems["nan_in_X"] = ("nan",)
    if draw(st.integers(0, 5)) == 0:
        X = _to_magnitude(X, 10.0 ** draw(st.sampled_from([160, 200, 300])))
        problems["huge"] = ("scale", "large", "magnitude", "rescale")
    frame = pd.concat(columns, axis=1, keys=[f"task{t}" for t in range(n_tasks)])
    container = draw(st.sampled_from(["frame", "array"]))
    if container == "array" and all(c.dtype == object for c in columns):
        y = frame.to_numpy(dtype=object)
        y = y[:, 0] if n_tasks == 1 else y
    else:
        y = frame.iloc[:, 0] if n_tasks == 1 else frame
    X_test = np.nan_to_num(X[:5], nan=0.0)
    kind = draw(st.sampled_from(["float64", "float32", "frame"]))
    if kind == "float32" and np.nanmax(np.abs(X)) < 1e30:
        X = X.astype(np.float32)
    elif kind == "frame":
        X = pd.DataFrame(X, columns=["a", "b"])
    return Case(X, y, X_test, n_tasks, problems)


def _check_classification(est, case: Case) -> None:
    proba = est.predict_proba(case.X_test)
    proba = proba if isinstance(proba, list) else [proba]
    assert len(proba) == case.n_tasks
    for p in proba:
        assert p.shape[0] == len(case.X_test) and np.isfinite(p).all()
        np.testing.assert_allclose(p.sum(1), 1.0, rtol=1e-9)  # float64 probabilities
    pred = np.asarray(est.predict(case.X_test)).reshape(len(case.X_test), -1)
    classes = est.classes_ if case.n_tasks > 1 else [est.classes_]
    for t in range(case.n_tasks):
        assert set(pred[:, t]) <= set(classes[t])
    assert 0.0 <= est.score(case.X, case.y) <= 1.0


@PROPERTY
@given(classification_cases())
def test_classifier_predicts_or_says_what_to_change(case):
    est = BayesAggMTLClassifier(**TINY).fit(REF_X, REF_Y.astype(int))

    def fit_predict():
        _check_classification(est.fit(case.X, case.y), case)

    check_outcome(fit_predict, case, fitted=est)


@settings(PROPERTY, max_examples=15)
@given(classification_cases())
def test_pruning_a_classifier_predicts_or_says_what_to_change(case):
    def fit_predict():
        base = BayesAggMTLClassifier(aggregator="mean", **TINY)
        imp = IterativeMagnitudePruning(base, n_rounds=1, random_state=0).fit(case.X, case.y)
        _check_classification(imp, case)

    # The split that chooses the rounds may leave a task one class, or no label.
    case.may_fail["split"] = ("validation rows", "class", "label")
    check_outcome(fit_predict, case)
