"""What the pruning meta-estimator delegates to its fitted estimator."""

from __future__ import annotations

import inspect

from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted

from .._docstrings import expand_doc


def _estimator_has(name):
    def check(self):
        return hasattr(self.estimator_ if hasattr(self, "estimator_") else self.estimator, name)

    return check


def _delegate(
    name: str,
    params: str,
    returns: str,
    positional: tuple = ("X",),
    defaults: dict | None = None,
    *,
    var_kwargs: bool = False,
    always: bool = False,
    summary: str = "",
):
    """A method ``name`` that calls ``self.estimator_.name`` once fitted, with its docstring.

    Its signature is ``(self, *positional, **defaults)`` (and ``**kwargs`` when
    ``var_kwargs``); ``positional`` are passed on by position, the others by
    keyword, defaults included. ``params`` and ``returns`` are the docstring's
    sections (fragment lines allowed, see :mod:`sk_mtbnn._docstrings`);
    ``summary`` ends its first line. Unless ``always``, the method exists only
    when the estimator has ``name``, as with
    :func:`~sklearn.utils.metaestimators.available_if`.
    """
    P, defaults = inspect.Parameter, defaults or {}
    sig = inspect.Signature(
        [P(n, P.POSITIONAL_OR_KEYWORD) for n in ("self", *positional)]
        + [P(n, P.POSITIONAL_OR_KEYWORD, default=v) for n, v in defaults.items()]
        + ([P("kwargs", P.VAR_KEYWORD)] if var_kwargs else [])
    )

    def method(self, *args, **kwargs):
        bound = sig.bind(self, *args, **kwargs)
        bound.apply_defaults()
        values = bound.arguments
        check_is_fitted(self)
        keywords = {**{n: values[n] for n in defaults}, **values.get("kwargs", {})}
        return getattr(self.estimator_, name)(*(values[n] for n in positional), **keywords)

    method.__name__ = method.__qualname__ = name
    method.__signature__ = sig
    method.__doc__ = expand_doc(
        f"Delegate to ``estimator_.{name}``{summary}.\n\n"
        f"Parameters\n----------\n{params}\n\nReturns\n-------\n{returns}\n"
    )
    return method if always else available_if(_estimator_has(name))(method)


class DelegatingMixin:
    """``predict``, ``sample_y``, ... of ``estimator_``, available when it has them."""

    predict = _delegate(
        "predict",
        "%(X_query)s\n**kwargs\n    Passed on, e.g. ``return_std=True``.",
        "Whatever ``estimator_.predict`` returns.",
        var_kwargs=True,
        summary=" (``return_std`` and ``return_cov`` too)",
    )
    sample_y = _delegate(
        "sample_y",
        "%(sample_y_params)s",
        "y_samples : ndarray\n    As ``estimator_.sample_y``.",
        defaults={"n_samples": 1, "random_state": 0},
    )
    decompose_uncertainty = _delegate(
        "decompose_uncertainty",
        "%(X_query)s",
        "epistemic, aleatoric : ndarray\n    As ``estimator_.decompose_uncertainty``.",
    )
    predict_proba = _delegate(
        "predict_proba",
        "%(X_query)s",
        "proba : ndarray or list of ndarray\n    As ``estimator_.predict_proba``.",
    )
    predictive_entropy = _delegate(
        "predictive_entropy",
        "%(X_query)s",
        "entropy : ndarray\n    As ``estimator_.predictive_entropy``.",
    )
    score = _delegate(
        "score",
        "%(X_test)s\ny : array-like\n    Test targets.\n%(sample_weight)s",
        "score : float\n    As ``estimator_.score``.",
        ("X", "y"),
        {"sample_weight": None},
        always=True,
    )

    @property
    def n_features_in_(self):
        """Number of features seen during fit."""
        return self.estimator_.n_features_in_

    @property
    def classes_(self):
        """Classes of the fitted classifier."""
        return self.estimator_.classes_
