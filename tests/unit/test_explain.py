"""Kernel SHAP explanations: exact Shapley values, additivity, tasks, classes."""

import itertools
import math
import sys
import warnings

import numpy as np
import pytest
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LinearRegression

from sk_mtbnn import BayesAggMTLClassifier, SparseMultiTaskBNNRegressor
from sk_mtbnn.explain import shap_values

shap = pytest.importorskip("shap")

# Rounding tolerance: the attributions come from a float64 least-squares solve on
# predictions of order 1; 1e-8 is far above its rounding error (~1e-13) and far
# below any real discrepancy.
ATOL = 1e-8


@pytest.fixture(scope="module")
def data():
    rng = np.random.RandomState(0)
    X = rng.uniform(-2, 2, size=(120, 3))
    y = np.column_stack([X[:, 0] * X[:, 1], np.sin(X[:, 2]) + X[:, 0]]) + 0.1 * rng.randn(120, 2)
    y[::3, 1] = np.nan
    return X, y


@pytest.fixture(scope="module")
def regressor(data):
    X, y = data
    return SparseMultiTaskBNNRegressor(hidden_layer_sizes=(16,), max_epochs=20, random_state=0).fit(
        X, y
    )


def brute_force_shapley(f, x, background):
    """Interventional Shapley values from their definition (sum over all coalitions)."""
    m = len(x)

    def payoff(coalition):
        z = background.copy()
        z[:, list(coalition)] = x[list(coalition)]
        return f(z).mean(0)

    phi = []
    for i in range(m):
        others = [j for j in range(m) if j != i]
        total = 0.0
        for size in range(m):
            weight = math.factorial(size) * math.factorial(m - size - 1) / math.factorial(m)
            for s in itertools.combinations(others, size):
                total = total + weight * (payoff((*s, i)) - payoff(s))
        phi.append(total)
    return np.array(phi)


@pytest.mark.parametrize("output", ["mean", "std"])
def test_values_are_the_exact_shapley_values(regressor, data, output):
    X, _ = data
    background = X[:15]
    explanation = shap_values(regressor, X[20:24], background, output=output)
    if output == "mean":
        f = regressor.predict
    else:
        f = lambda Z: regressor.predict(Z, return_std=True)[1]  # noqa: E731
    for row, values in zip(X[20:24], explanation.values):
        assert values == pytest.approx(brute_force_shapley(f, row, background), abs=ATOL)


@pytest.mark.parametrize("output", ["mean", "std"])
def test_attributions_add_up_to_prediction_minus_base_value(regressor, data, output):
    X, _ = data
    explanation = shap_values(regressor, X[:10], X[50:80], output=output)
    prediction = regressor.predict(X[:10], return_std=True)[output == "std"]
    base = regressor.predict(X[50:80], return_std=True)[output == "std"].mean(0)
    assert explanation.values.shape == (10, 3, 2)
    assert explanation.base_values == pytest.approx(np.tile(base, (10, 1)), abs=ATOL)
    assert explanation.values.sum(1) + explanation.base_values == pytest.approx(
        prediction, abs=ATOL
    )


def test_one_task_is_the_slice_of_all_tasks(regressor, data):
    X, _ = data
    every = shap_values(regressor, X[:4], X[40:60])
    one = shap_values(regressor, X[:4], X[40:60], task=1)
    assert one.values.shape == (4, 3) and one.output_names is None
    assert one.values == pytest.approx(every.values[:, :, 1], abs=ATOL)
    assert one.base_values == pytest.approx(every.base_values[:, 1], abs=ATOL)


def test_sampled_coalitions_match_the_closed_form_of_a_linear_model():
    # 13 features: 8190 coalitions, of which 300 are sampled. For a linear model
    # the interventional SHAP value is w_i (x_i - mean of background_i) (Lundberg
    # & Lee 2017, Sec. 4.2), and Kernel SHAP recovers it exactly from any
    # coalitions, because the additive model fits its regression without residual.
    rng = np.random.RandomState(1)
    X = rng.randn(50, 13)
    model = LinearRegression().fit(X, X @ rng.randn(13) + 0.1 * rng.randn(50))
    explanation = shap_values(model, X[:5], X[10:40], n_coalitions=300)
    expected = model.coef_ * (X[:5] - X[10:40].mean(0))
    assert explanation.values == pytest.approx(expected, abs=ATOL)


def test_sampling_is_seeded_and_leaves_numpy_alone():
    rng = np.random.RandomState(2)
    X13 = rng.randn(40, 13)
    model = LinearRegression().fit(X13, np.sin(X13[:, 0]) * X13[:, 1] + X13[:, 2])
    state = np.random.get_state()[1].copy()  # noqa: NPY002 (the global state shap uses)
    first = shap_values(model, X13[:3], X13[10:30], n_coalitions=100, random_state=5)
    assert np.array_equal(np.random.get_state()[1], state)  # noqa: NPY002
    again = shap_values(model, X13[:3], X13[10:30], n_coalitions=100, random_state=5)
    assert np.array_equal(first.values, again.values)


def test_dataframe_names_reach_the_explanation_without_warnings(data):
    pd = pytest.importorskip("pandas")
    X, y = data
    frame = pd.DataFrame(X, columns=["load", "speed", "angle"])
    reg = SparseMultiTaskBNNRegressor(hidden_layer_sizes=(8,), max_epochs=5, random_state=0)
    reg.fit(frame, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "X does not have valid feature names"
        from_frame = shap_values(reg, frame.iloc[:3], frame.iloc[30:45])
        from_array = shap_values(reg, X[:3], X[30:45])
    assert from_frame.feature_names == from_array.feature_names == ["load", "speed", "angle"]
    assert from_frame.values == pytest.approx(from_array.values, abs=ATOL)


@pytest.fixture(scope="module")
def classifier(data):
    X, _ = data
    y = np.empty((len(X), 2), dtype=object)
    y[:, 0] = np.where(X[:, 0] > 0, "hot", "cold")
    y[:, 1] = np.digitize(X[:, 1], [-0.7, 0.7])
    return BayesAggMTLClassifier(hidden_layer_sizes=(8,), max_epochs=10, random_state=0).fit(X, y)


def test_class_probabilities_of_one_task(classifier, data):
    X, _ = data
    explanation = shap_values(classifier, X[:4], X[60:80], task=1)
    proba = classifier.predict_proba(X[:4])[1]
    assert explanation.values.shape == (4, 3, 3) and explanation.output_names == ["0", "1", "2"]
    assert explanation.values.sum(1) + explanation.base_values == pytest.approx(proba, abs=ATOL)
    # The probabilities sum to one whatever the inputs, so each feature's
    # attributions over the classes cancel.
    assert explanation.values.sum(2) == pytest.approx(np.zeros((4, 3)), abs=ATOL)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"output": "variance"}, "output must be one of"),
        ({"output": "proba"}, "is a regressor: use output="),
        ({"task": 2}, r"task index in \[0, 2\)"),
        ({"task": True}, "task must be None or a task index"),
        ({"n_coalitions": 0}, "n_coalitions must be"),
    ],
)
def test_bad_arguments_say_what_to_change(regressor, data, kwargs, match):
    X, _ = data
    with pytest.raises(ValueError, match=match):
        shap_values(regressor, X[:2], X[10:20], **kwargs)


def test_classifier_errors(classifier, data):
    X, _ = data
    with pytest.raises(ValueError, match="pass task=t"):
        shap_values(classifier, X[:2], X[10:20])
    with pytest.raises(ValueError, match="is a classifier: use output="):
        shap_values(classifier, X[:2], X[10:20], output="mean", task=0)


def test_input_errors(regressor, data, monkeypatch):
    X, _ = data
    with pytest.raises(ValueError, match="background has 2 columns but X has 3"):
        shap_values(regressor, X[:2], X[10:20, :2])
    with pytest.raises(NotFittedError):
        shap_values(LinearRegression(), X[:2], X[10:20])
    monkeypatch.setitem(sys.modules, "shap", None)
    with pytest.raises(ImportError, match=r"pip install 'sk_mtbnn\[explain\]'"):
        shap_values(regressor, X[:2], X[10:20])
