"""Complex X or y is refused with scikit-learn's "Complex data not supported", never cast.

Casting complex values to float64 drops the imaginary parts (numpy's ComplexWarning): every
estimator must raise a ValueError instead, before anything casts them, and leave a fitted
model as it was.
"""

import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

from sk_mtbnn import (
    BayesAggMTLClassifier,
    BayesAggMTLRegressor,
    IterativeMagnitudePruning,
    SparseMultiTaskBNNRegressor,
)

S = SparseMultiTaskBNNRegressor
RNG = np.random.RandomState(0)
X = RNG.uniform(-1, 1, (30, 2))
Y = np.c_[np.sin(X[:, 0]), X[:, 1] ** 2]
LABELS = (Y > 0.4).astype(int)
ClassifierOfIMP = BayesAggMTLClassifier((8,), aggregator="mean", max_epochs=2, random_state=0)

ESTIMATORS = {
    # n_estimators="auto" looks at y before the fit validates it.
    "sparse_auto": S((8, 8), random_state=0),
    "sparse_network": S((8,), max_epochs=2, random_state=0),
    "sparse_ensemble": S((8,), n_estimators=2, max_epochs=2, random_state=0),
    "bayesagg_regressor": BayesAggMTLRegressor((8,), max_epochs=2, random_state=0),
    "bayesagg_classifier": BayesAggMTLClassifier((8,), max_epochs=2, random_state=0),
    "pruning": IterativeMagnitudePruning(
        S((8,), max_epochs=2), n_rounds=1, retrain_epochs=1, random_state=0
    ),
    "pruning_classifier": IterativeMagnitudePruning(
        ClassifierOfIMP, n_rounds=1, retrain_epochs=1, random_state=0
    ),
}
CLASSIFIERS = {"bayesagg_classifier", "pruning_classifier"}


def _targets(name):
    return LABELS if name in CLASSIFIERS else Y


def _complex(a, form):
    """``a`` with an imaginary part, as an array, a list, a DataFrame or an object array."""
    z = a + 0.5j  # complex128
    if form == "list":
        return z.tolist()
    if form == "frame":  # one complex column beside a real one
        return pd.DataFrame({"re": a[:, 0], "cplx": z[:, 1]})
    if form == "object":
        return z.astype(object)
    if form == "nullable_frame":  # a pandas nullable column beside complex Python numbers
        re = pd.array(np.round(a[:, 0] * 10), dtype="Int64")
        return pd.DataFrame({"re": re, "cplx": z[:, 1].astype(object)})
    if form == "zero_imaginary":  # refused too, as scikit-learn does
        return a.astype(np.complex128)
    return z


def _refuses_complex(fit):
    """``fit()`` raises scikit-learn's complex-data error, with no ComplexWarning on the way."""
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        with pytest.raises(ValueError, match="Complex data not supported"):
            fit()
    casts = [w for w in seen if issubclass(w.category, np.exceptions.ComplexWarning)]
    assert not casts, [str(w.message) for w in casts]


@pytest.mark.parametrize(
    "form", ["array", "list", "frame", "nullable_frame", "object", "zero_imaginary"]
)
@pytest.mark.parametrize("name", sorted(ESTIMATORS))
def test_complex_y_is_refused_without_a_cast(name, form):
    y = _complex(_targets(name), form)
    _refuses_complex(lambda: clone(ESTIMATORS[name]).fit(X, y))


@pytest.mark.parametrize("form", ["array", "frame", "zero_imaginary"])
@pytest.mark.parametrize("name", sorted(ESTIMATORS))
def test_complex_X_is_refused_without_a_cast(name, form):
    X_complex = _complex(X, form)
    _refuses_complex(lambda: clone(ESTIMATORS[name]).fit(X_complex, _targets(name)))


@pytest.fixture(scope="module")
def fitted():
    """Every configuration except the slow auto ensemble, fitted on real data."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # few epochs: convergence warnings
        return {
            name: clone(est).fit(X, _targets(name))
            for name, est in ESTIMATORS.items()
            if name != "sparse_auto"
        }


def _state(est):
    """The fitted attributes themselves (a refit replaces them with new objects)."""
    return {name: getattr(est, name) for name in est._fit_state_names}


def _same_objects(est, state) -> bool:
    return set(est._fit_state_names) == set(state) and all(
        getattr(est, name) is value for name, value in state.items()
    )


@pytest.mark.parametrize("name", sorted(set(ESTIMATORS) - {"sparse_auto"}))
def test_a_refused_refit_leaves_the_fitted_model_as_it_was(name, fitted):
    est = fitted[name]
    state, before = _state(est), est.predict(X)
    y = _targets(name)
    _refuses_complex(lambda: est.fit(X + 0.5j, y))
    _refuses_complex(lambda: est.fit(X, y + 0.5j))
    assert _same_objects(est, state)
    np.testing.assert_array_equal(est.predict(X), before)  # exactly: the same network
    with pytest.raises(ValueError, match="Complex data not supported"):
        est.predict(X + 0.5j)


def test_complex_validation_targets_of_the_pruning_are_refused():
    # y_val used to be cast to float when scored, silently dropping its imaginary part.
    imp = clone(ESTIMATORS["pruning"])
    _refuses_complex(lambda: imp.fit(X[:20], Y[:20], X_val=X[20:], y_val=Y[20:] + 0.5j))
    _refuses_complex(lambda: imp.fit(X[:20], Y[:20], X_val=X[20:] + 0.5j, y_val=Y[20:]))


def test_complex_validation_labels_of_the_pruning_are_refused():
    imp = clone(ESTIMATORS["pruning_classifier"])
    y_val = LABELS[20:] + 0.5j
    _refuses_complex(lambda: imp.fit(X[:20], LABELS[:20], X_val=X[20:], y_val=y_val))
