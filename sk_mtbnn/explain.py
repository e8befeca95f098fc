"""SHAP explanations of the estimators' predictions, one task (or all) at a time.

:func:`shap_values` attributes each task's predictive mean (or standard
deviation, or a classifier's class probabilities) to the input features,
with the ``shap`` package's model-agnostic Kernel SHAP (Lundberg & Lee
2017) on the estimator's public ``predict``. It needs the optional ``shap``
package (``pip install 'sk_mtbnn[explain]'``), imported on first use.

Why Kernel SHAP on ``predict`` rather than a gradient method (captum) on the
torch module: it explains exactly what the user sees, in the units of y,
with the internal standardisation of inputs and targets, the heads'
predictive moments, a :class:`~sklearn.pipeline.Pipeline` in front or an
:class:`~sk_mtbnn.IterativeMagnitudePruning` around the network; its
attributions add up exactly to the prediction minus the base value
(captum's integrated gradients only up to its quadrature error); and,
unlike shap's exact and permutation explainers, it needs no numba
compilation (5 to 15 s on first use on a small CPU).

Read more in the :ref:`User Guide <explanations>`.
"""

from __future__ import annotations

import contextlib
import numbers

import numpy as np
from sklearn.base import is_classifier
from sklearn.utils import check_array, check_random_state
from sklearn.utils.validation import check_is_fitted

__all__ = ["shap_values"]

OUTPUTS = ("auto", "mean", "std", "proba")


def _import_shap():
    try:
        import shap
    except ImportError as exc:
        raise ImportError(
            "Explanations need the shap package: pip install 'sk_mtbnn[explain]' "
            "(or pip install shap)."
        ) from exc
    return shap


def _as_matrix(data, name: str) -> np.ndarray:
    return check_array(data, dtype=np.float64, ensure_min_samples=1, input_name=name)


def _resolve_output(estimator, output: str) -> str:
    if output not in OUTPUTS:
        raise ValueError(f"output must be one of {list(OUTPUTS)}; got {output!r}.")
    classifier = is_classifier(estimator)
    if output == "auto":
        return "proba" if classifier else "mean"
    if classifier != (output == "proba"):
        kind, ok = ("a classifier", '"proba"') if classifier else ("a regressor", '"mean" or "std"')
        raise ValueError(f"{type(estimator).__name__} is {kind}: use output={ok}.")
    return output


def _predictor(estimator, output: str):
    """``f(X) -> (n,) or (n, k)``: the explained quantity for all tasks (or classes)."""
    names = getattr(estimator, "feature_names_in_", None)

    def as_input(Z: np.ndarray):
        if names is None:
            return Z
        import pandas as pd  # the estimator was fitted on a DataFrame

        return pd.DataFrame(Z, columns=names)

    if output == "mean":
        return lambda Z: np.asarray(estimator.predict(as_input(Z)), dtype=float)
    if output == "std":
        return lambda Z: np.asarray(estimator.predict(as_input(Z), return_std=True)[1], dtype=float)
    return lambda Z: estimator.predict_proba(as_input(Z))


def _select_task(f, probe: np.ndarray, estimator, output: str, task):
    """The function for one task (or all) and the names of its outputs."""
    value = f(probe)
    if output == "proba":
        n_tasks = len(value) if isinstance(value, list) else 1
    else:
        n_tasks = 1 if np.ndim(value) == 1 else np.shape(value)[1]
    if task is not None and not (
        isinstance(task, numbers.Integral) and not isinstance(task, bool) and 0 <= task < n_tasks
    ):
        raise ValueError(f"task must be None or a task index in [0, {n_tasks}); got {task!r}.")
    if output == "proba":
        if n_tasks > 1 and task is None:
            raise ValueError(
                "The classifier has several tasks, each with its own classes: pass task=t to "
                "explain task t's class probabilities."
            )
        t = task or 0
        classes = estimator.classes_[t] if n_tasks > 1 else estimator.classes_

        def proba(Z):
            p = f(Z)
            return np.asarray(p[t] if isinstance(p, list) else p, dtype=float)

        return proba, [str(c) for c in classes]
    if task is None:
        return f, None if n_tasks == 1 else [f"task {t}" for t in range(n_tasks)]
    if n_tasks == 1:
        return f, None
    return (lambda Z: f(Z)[:, task]), None


@contextlib.contextmanager
def _numpy_seed(random_state):
    """Seed NumPy's global generator (Kernel SHAP draws from it), then restore it."""
    # The legacy global API is the one shap's KernelExplainer samples coalitions from.
    seed = check_random_state(random_state).randint(np.iinfo(np.int32).max)
    state = np.random.get_state()  # noqa: NPY002
    np.random.seed(seed)  # noqa: NPY002
    try:
        yield
    finally:
        np.random.set_state(state)  # noqa: NPY002


def shap_values(
    estimator,
    X,
    background,
    *,
    task: int | None = None,
    output: str = "auto",
    n_coalitions: int | str = "auto",
    random_state=0,
):
    """Kernel SHAP values of a fitted estimator's predictions, per task.

    Each row's prediction is split into a base value, the mean prediction
    over ``background``, plus one attribution per feature: the Shapley
    values of the game whose players are the features and whose payoff for
    a set ``S`` of them is the mean prediction when the features in ``S``
    take the row's values and the others the background rows' values
    (interventional SHAP, Eq. (8) of Lundberg & Lee 2017). With
    ``n_features <= 11`` every coalition is evaluated and the values are the
    exact Shapley values of that game; with more features coalitions are
    sampled (``n_coalitions``) and the values are a weighted least-squares
    estimate. Either way they add up to the prediction minus the base
    value, to float rounding.

    Parameters
    ----------
    estimator : fitted estimator
        A regressor with ``predict`` (and ``predict(X, return_std=True)``
        for ``output="std"``) or a classifier with ``predict_proba``: any of
        sk_mtbnn's estimators, a Pipeline ending in one, or any
        scikit-learn estimator.
    X : array-like or DataFrame of shape (n_samples, n_features)
        The rows to explain. The cost is about ``n_samples * min(2 **
        n_features, 2 * n_features + 2048) * len(background)`` predictions.
    background : array-like or DataFrame of shape (n_background, n_features)
        Reference rows standing in for "feature unknown", e.g. 20 to 100
        rows drawn from the training inputs (``shap.sample(X_train, 50)``).
    task : int, default=None
        Explain this task only. None explains every task of a regressor at
        once (the last axis of the values is then the task); a classifier
        with several tasks needs a task.
    output : {"auto", "mean", "std", "proba"}, default="auto"
        What to explain: the predictive mean (``"auto"`` for regressors),
        the predictive standard deviation (which inputs drive the
        uncertainty), or the class probabilities of the task (``"auto"``
        for classifiers; the last axis is then the class).
    n_coalitions : int or "auto", default="auto"
        Coalitions evaluated per row. ``"auto"`` is ``2 * n_features +
        2048``, capped at the ``2 ** n_features - 2`` that make the result
        exact.
    random_state : int, RandomState instance or None, default=0
        Seeds the sampling of coalitions (only used above 11 features);
        NumPy's global generator is restored afterwards.

    Returns
    -------
    explanation : shap.Explanation
        ``values`` of shape (n_samples, n_features), or (n_samples,
        n_features, n_outputs) for several tasks or classes;
        ``base_values`` of shape (n_samples,) or (n_samples, n_outputs);
        ``data`` the explained rows; ``feature_names`` from a DataFrame's
        columns (or the estimator's ``feature_names_in_``); ``output_names``
        the tasks or classes. Works with ``shap.plots`` (beeswarm, bar,
        waterfall; slice one output first, e.g. ``explanation[:, :, 0]``).

    Raises
    ------
    ImportError
        If shap is not installed.

    References
    ----------
    .. [1] S. M. Lundberg, S.-I. Lee. "A Unified Approach to Interpreting
       Model Predictions", NeurIPS 2017.

    Examples
    --------
    >>> import numpy as np
    >>> from sk_mtbnn import SparseMultiTaskBNNRegressor
    >>> rng = np.random.RandomState(0)
    >>> X = rng.uniform(-2, 2, size=(100, 3))
    >>> y = np.column_stack([X[:, 0], X[:, 1] ** 2]) + 0.1 * rng.randn(100, 2)
    >>> reg = SparseMultiTaskBNNRegressor(hidden_layer_sizes=(16,), max_epochs=30,
    ...                                   random_state=0).fit(X, y)
    >>> exp = shap_values(reg, X[:5], background=X[:20])
    >>> exp.values.shape, exp.output_names
    ((5, 3, 2), ['task 0', 'task 1'])
    >>> bool(np.allclose(exp.values.sum(1) + exp.base_values, reg.predict(X[:5])))
    True
    """
    shap = _import_shap()
    check_is_fitted(estimator)
    columns = getattr(X, "columns", None)
    X_array = _as_matrix(X, "X")
    background = _as_matrix(background, "background")
    if background.shape[1] != X_array.shape[1]:
        raise ValueError(
            f"background has {background.shape[1]} columns but X has {X_array.shape[1]}; "
            "draw the background rows from the same inputs as X."
        )
    if n_coalitions != "auto" and not (
        isinstance(n_coalitions, numbers.Integral) and n_coalitions >= 1
    ):
        raise ValueError(
            f'n_coalitions must be "auto" or a positive integer; got {n_coalitions!r}.'
        )
    output = _resolve_output(estimator, output)
    f, output_names = _select_task(
        _predictor(estimator, output), background[:1], estimator, output, task
    )
    explainer = shap.KernelExplainer(f, background)
    with _numpy_seed(random_state):
        values = explainer.shap_values(X_array, nsamples=n_coalitions, l1_reg=False, silent=True)
    if isinstance(values, list):  # shap < 0.45: one array per output
        values = np.stack(values, axis=-1)
    values = np.asarray(values, dtype=float)
    base = np.asarray(explainer.expected_value, dtype=float)
    names = getattr(estimator, "feature_names_in_", None) if columns is None else columns
    return shap.Explanation(
        values,
        base_values=np.tile(base, (len(X_array),) + (1,) * base.ndim),
        data=X_array,
        feature_names=None if names is None else [str(c) for c in names],
        output_names=output_names,
    )
