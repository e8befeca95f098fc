"""The delegating methods built by one factory: signatures, arguments passed on, availability."""

import inspect

import pytest
from sklearn.base import BaseEstimator
from sklearn.exceptions import NotFittedError

from sk_mtbnn.pruning._delegation import DelegatingMixin


class Recorder:
    """An estimator that returns how each method was called."""

    def predict(self, *args, **kwargs):
        return "predict", args, kwargs

    def sample_y(self, *args, **kwargs):
        return "sample_y", args, kwargs

    def score(self, *args, **kwargs):
        return "score", args, kwargs


class Meta(DelegatingMixin, BaseEstimator):
    def __init__(self, estimator):
        self.estimator = estimator

    def fit(self, X=None, y=None):
        self.estimator_ = self.estimator
        return self


def fitted():
    return Meta(Recorder()).fit()


def test_signatures_and_docstrings_are_those_written_before():
    assert str(inspect.signature(Meta.sample_y)) == "(self, X, n_samples=1, random_state=0)"
    assert str(inspect.signature(Meta.score)) == "(self, X, y, sample_weight=None)"
    assert str(inspect.signature(Meta.predict)) == "(self, X, **kwargs)"
    assert Meta.sample_y.__doc__.startswith("Delegate to ``estimator_.sample_y``.")
    assert "n_samples : int, default=1" in Meta.sample_y.__doc__


def test_the_first_arguments_go_by_position_the_others_by_keyword_defaults_included():
    meta = fitted()
    assert meta.predict("X", return_std=True) == ("predict", ("X",), {"return_std": True})
    assert meta.sample_y("X", 3) == ("sample_y", ("X",), {"n_samples": 3, "random_state": 0})
    assert meta.score("X", "y") == ("score", ("X", "y"), {"sample_weight": None})
    with pytest.raises(TypeError, match="unexpected keyword"):
        meta.sample_y("X", n_draws=3)


def test_a_method_exists_only_when_the_estimator_has_it_and_once_fitted():
    meta = fitted()
    assert hasattr(meta, "sample_y") and not hasattr(meta, "predict_proba")
    assert not hasattr(meta, "decompose_uncertainty")
    with pytest.raises(NotFittedError):
        Meta(Recorder()).predict("X")
