"""BayesAggMTLClassifier: labels, shapes, the Laplace predictive, aggregators and errors."""

import math

import numpy as np
import pandas as pd
import pytest
import torch
from scipy.special import expit

from sk_mtbnn import BayesAggMTLClassifier
from sk_mtbnn.nn.blr import with_bias


def clf(**kw):
    params = {
        "hidden_layer_sizes": (16,),
        "max_epochs": 150,
        "validation_fraction": None,
        "n_mc_samples": 16,
        "random_state": 0,
    }
    params.update(kw)
    return BayesAggMTLClassifier(**params)


@pytest.fixture
def class_data():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(240, 3))
    y = np.empty((240, 2), dtype=object)
    y[:, 0] = np.where(X[:, 0] + 0.3 * X[:, 1] > 0, "hot", "cold")
    y[:, 1] = np.digitize(X[:, 2], [-0.5, 0.5])
    y[::5, 1] = np.nan
    return X, y


def test_classifier_keeps_label_types_and_shapes(class_data):
    X, y = class_data
    model = clf().fit(X, y)
    assert model.classes_[0].tolist() == ["cold", "hot"]
    assert model.classes_[1].tolist() == [0, 1, 2]
    pred = model.predict(X[:6])
    assert pred.shape == (6, 2) and set(pred[:, 0]) <= {"cold", "hot"}
    assert set(pred[:, 1]) <= {0, 1, 2}
    proba = model.predict_proba(X[:6])
    assert isinstance(proba, list) and [p.shape for p in proba] == [(6, 2), (6, 3)]
    for p in proba:
        np.testing.assert_allclose(p.sum(1), 1.0)
    ent = model.predictive_entropy(X[:6])
    assert ent.shape == (6, 2)
    assert np.all(ent[:, 0] <= math.log(2) + 1e-12) and np.all(ent[:, 1] <= math.log(3) + 1e-12)
    assert model.score(X, y) > 0.7


def test_single_task_classifier_returns_arrays(class_data):
    X, y = class_data
    model = clf().fit(X, y[:, 0])
    assert model.classes_.tolist() == ["cold", "hot"]
    assert model.predict_proba(X[:4]).shape == (4, 2)
    assert model.predict(X[:4]).shape == (4,)
    assert model.predictive_entropy(X[:4]).shape == (4,)


def test_custom_missing_label(class_data):
    X, y = class_data
    y2 = np.where(y[:, 1] == y[:, 1], y[:, 1], -1).astype(int)  # NaN -> -1
    model = clf(missing_label=-1).fit(X, y2)
    assert model.classes_.tolist() == [0, 1, 2]


@pytest.mark.parametrize(
    ("y", "match"),
    [
        (np.full(20, 3), "has a single class"),
        (np.full(20, np.nan), "has no label"),
        (np.linspace(0, 1, 20), "Unknown label type"),
        (None, "requires y to be passed"),
    ],
)
def test_classifier_bad_targets(y, match):
    X = np.random.RandomState(0).normal(size=(20, 2))
    with pytest.raises(ValueError, match=match):
        clf().fit(X, y)


def test_classifier_bad_inputs():
    with pytest.raises(ValueError, match="NaN"):
        clf().fit([[np.nan, 0.0], [1.0, 1.0], [0.0, 1.0]], [0, 1, 0])
    with pytest.raises(ValueError, match="minimum of 2"):
        clf().fit([[0.0, 1.0]], [1])
    with pytest.raises(
        ValueError, match=r"'s' parameter .* must be a float in the range \(0.0, 1.0\]"
    ):
        clf(s=2.0).fit([[0.0], [1.0], [2.0]], [0, 1, 0])


def test_laplace_covariance_is_ggn_plus_prior_from_autograd(class_data):
    # The Laplace precision is the Hessian of the summed NLL (which equals the
    # GGN for a linear head) plus I / gamma, at the trained weights.
    X, y = class_data
    model = clf(gamma=2.0).fit(X, y)
    module = model.net_.module_.double()
    Xs = torch.as_tensor((X - model._x_mean) / model._x_scale)
    with torch.no_grad():
        h = module.backbone.shared_forward(Xs)
    labels = torch.as_tensor(
        np.searchsorted(model._classes[1], y[::1, 1][y[:, 1] == y[:, 1]].astype(int))
    )
    rows = torch.as_tensor(y[:, 1] == y[:, 1])
    W = module.head.weights(1).detach()

    def nll(w):
        logits = with_bias(h[rows]) @ w.reshape(W.shape).T
        return torch.nn.functional.cross_entropy(logits, labels, reduction="sum")

    hessian = torch.autograd.functional.hessian(nll, W.reshape(-1))
    expected = torch.linalg.inv(hessian + torch.eye(len(hessian), dtype=torch.float64) / 2.0)
    covariance = model._inference().head.covariance(1)
    torch.testing.assert_close(covariance, expected, rtol=1e-5, atol=1e-8)


def test_probit_probabilities_match_the_monte_carlo_posterior_predictive(class_data):
    X, y = class_data
    model = clf().fit(X, y[:, 0])
    module = model.net_.module_.double()
    Xs = torch.as_tensor((X[:20] - model._x_mean) / model._x_scale)
    with torch.no_grad():
        hb = with_bias(module.backbone.shared_forward(Xs)).numpy()
    W = module.head.weights(0).detach().numpy()[0]
    cov = model._inference().head.covariance(0).numpy()
    draws = np.random.RandomState(0).multivariate_normal(W, cov, size=200_000)
    mc = expit(hb @ draws.T).mean(1)
    # The probit approximation of E[sigmoid(z)] is accurate to about 0.02
    # (MacKay 1992); Monte Carlo error with 2e5 draws is ~1e-3.
    np.testing.assert_allclose(model.predict_proba(X[:20])[:, 1], mc, atol=0.02)


@pytest.mark.parametrize("aggregator", ["mean", "pcgrad", "bayesagg"])
def test_classifier_aggregators_train(class_data, aggregator):
    X, y = class_data
    model = clf(aggregator=aggregator, max_epochs=80).fit(X, y)
    assert model.score(X, y) > 0.75
    assert hasattr(model, "task_weights_") == (aggregator == "bayesagg")


def test_classifier_torchjd_aggregator(class_data):
    torchjd = pytest.importorskip("torchjd")
    X, y = class_data
    model = clf(aggregator=torchjd.aggregation.IMTLG(), max_epochs=80).fit(X, y)
    assert model.score(X, y) > 0.75


def test_classifier_does_not_mutate_inputs(class_data):
    X, y = class_data
    X0, y0 = X.copy(), y.copy()
    clf(max_epochs=3).fit(X, y).score(X, y)
    np.testing.assert_array_equal(X, X0)
    assert all((a == b) or (a != a and b != b) for a, b in zip(y.ravel(), y0.ravel()))


# ------------------------------------------------------------------ hardening
@pytest.mark.parametrize("scale", [1e160, 1e200])
def test_far_away_inputs_give_finite_limiting_probabilities(class_data, scale):
    # The probit logits are homogeneous in [h, 1]: far from the data they tend
    # to a finite limit, computed without overflow (once NaN, and class 0).
    X, y = class_data
    model = clf(max_epochs=20).fit(X, y)
    far, limit = model.predict_proba(X[:5] * scale), model.predict_proba(X[:5] * 1e8)
    for p, q in zip(far, limit):
        assert np.all(np.isfinite(p))
        np.testing.assert_allclose(p.sum(1), 1.0)
        # The bias input is 1e-8 of [h, 1] at 1e8: the limit to ~1e-8.
        np.testing.assert_allclose(p, q, atol=1e-6)
    np.testing.assert_array_equal(model.predict(X[:5] * scale), model.predict(X[:5] * 1e8))


def test_overflowing_representation_raises_instead_of_predicting_class_0(class_data):
    X, y = class_data
    model = clf(max_epochs=20).fit(X[:, :2], y)
    big = np.finfo(np.float64).max
    X_far = np.array([[big, -big], [-big, big]])  # finite inputs whose layers overflow
    for method in (model.predict_proba, model.predict, model.predictive_entropy):
        with pytest.raises(ValueError, match=r"not finite.*extremely far"):
            method(X_far)


def test_mixed_string_and_number_labels_in_one_task_are_rejected():
    X = np.random.RandomState(0).normal(size=(30, 2))
    y = np.array([0, 1, "x"] * 10, dtype=object)
    # scikit-learn's rule for such targets: an error, not classes ['0', '1', 'x'].
    with pytest.raises(ValueError, match=r"Mix of label input types \(string and number\)"):
        clf().fit(X, y)
    y2 = np.column_stack([np.array([0, 1] * 15), np.array([1, "b", "c"] * 10, dtype=object)])
    with pytest.raises(ValueError, match="task 1"):
        clf().fit(X, y2)


def test_pandas_missing_labels_are_missing():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(120, 2))
    words = pd.array(np.where(X[:, 0] > 0, "hot", "cold"), dtype="string")
    words[::4] = pd.NA
    counts = pd.array(np.digitize(X[:, 1], [-0.5, 0.5]), dtype="Int64")
    counts[1::5] = pd.NA
    y = pd.DataFrame({"words": words, "counts": counts})
    model = clf(max_epochs=100).fit(X, y)
    assert model.classes_[0].tolist() == ["cold", "hot"]
    assert model.classes_[1].dtype.kind == "i" and model.classes_[1].tolist() == [0, 1, 2]
    # NA entries carry no label: the model equals one fitted with NaN there.
    y_nan = np.empty((120, 2), dtype=object)
    y_nan[:, 0] = np.where(words.isna(), np.nan, np.asarray(words, dtype=object))
    y_nan[:, 1] = np.where(counts.isna(), np.nan, np.asarray(counts, dtype=object))
    reference = clf(max_epochs=100).fit(X, y_nan)
    for p, q in zip(model.predict_proba(X[:10]), reference.predict_proba(X[:10])):
        np.testing.assert_array_equal(p, q)
    assert 0.7 < model.score(X, y) == reference.score(X, y_nan)
    single = clf(max_epochs=3).fit(X, y["counts"])  # a nullable Series alone
    assert single.classes_.dtype.kind == "i" and single.predict(X[:3]).dtype.kind == "i"


def test_na_labels_with_another_missing_label_are_a_clear_error():
    X = np.random.RandomState(0).normal(size=(20, 2))
    y = pd.array([0, 1, -1, pd.NA] * 5, dtype="Int64")
    with pytest.raises(ValueError, match=r"contains missing values .* missing_label=-1"):
        clf(missing_label=-1).fit(X, y)
    with pytest.raises(ValueError, match=r"contains missing values .* missing_label=-1"):
        clf(missing_label=-1).fit(X, np.array([0.0, 1.0, -1.0, np.nan] * 5))


def test_score_with_the_wrong_number_of_tasks_is_a_clear_error(class_data):
    X, y = class_data
    model = clf(max_epochs=3).fit(X, y)
    for bad in (y[:, :1], np.column_stack([y, y[:, 0]])):
        with pytest.raises(ValueError, match=r"y has \d task column\(s\) but the model was fitted"):
            model.score(X, bad)
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        model.score(X[:10], y)


def test_an_integer_is_one_hidden_layer(class_data):
    X, y = class_data
    model = clf(hidden_layer_sizes=8, max_epochs=2).fit(X, y)
    assert model.net_.module_.backbone.out_features == 8
