"""What the query strategies need from a model: uncertainty, features, labelled inputs."""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import torch
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import check_is_fitted

from ..estimators._torch_utils import PREDICT_CHUNK, inference_copy
from ..nn.blr import with_bias


class PoolScores(NamedTuple):
    """Per pool row and task, in units of the standardised targets."""

    mean: np.ndarray  # (m, T)
    epistemic_std: np.ndarray  # (m, T)
    total_std: np.ndarray  # (m, T)
    egl: np.ndarray  # (m, T) closed-form expected gradient length of the head


def is_learner(obj) -> bool:
    """A modAL learner (``ActiveLearner``, ``BayesianOptimizer``, ...)."""
    return hasattr(obj, "query_strategy") and hasattr(obj, "estimator")


def resolve(model):
    """The fitted sk_mtbnn regressor behind ``model`` and the transform of its inputs.

    ``model`` may be a modAL learner, a :class:`~sklearn.pipeline.Pipeline`
    ending in one, an :class:`~sk_mtbnn.IterativeMagnitudePruning`, or the
    regressor itself.
    """
    estimator = model.estimator if is_learner(model) else model
    transform = None
    if isinstance(estimator, Pipeline):
        transform = estimator[:-1].transform
        estimator = estimator[-1]
    if hasattr(estimator, "masks_") and hasattr(estimator, "estimator_"):
        estimator = estimator.estimator_
    if not (hasattr(estimator, "_scaled_tensor") and hasattr(estimator, "n_tasks_")) or not hasattr(
        estimator, "_moments"
    ):
        raise TypeError(
            "The query strategy needs a fitted sk_mtbnn regressor (SparseMultiTaskBNNRegressor, "
            "BayesAggMTLRegressor, IterativeMagnitudePruning of one, or a Pipeline ending in "
            f"one), or a modAL learner around it; got {type(estimator).__name__}."
        )
    check_is_fitted(estimator)
    return estimator, transform


def as_inputs(estimator, transform, X) -> np.ndarray:
    """``X`` through the pipeline's transforms, validated as the estimator would."""
    if transform is not None:
        X = transform(X)
    return estimator._validate_X_predict(X)


def labelled_inputs(model, estimator, transform, X_labelled=None, tasks=None):
    """The inputs already labelled: ``X_labelled``, or the learner's ``X_training``.

    From a learner, a row counts as labelled when it has a label (not NaN)
    for every task in ``tasks``: a row that only carries other tasks' labels
    (say, a cheap low fidelity) is still worth querying for these.
    """
    if X_labelled is None and is_learner(model):
        X_labelled = model.X_training
        if X_labelled is not None and tasks is not None and model.y_training is not None:
            y = np.asarray(model.y_training, dtype=float).reshape(len(X_labelled), -1)
            rows = ~np.isnan(y[:, tasks]).any(axis=1)
            X_labelled = (
                X_labelled.iloc[rows]
                if hasattr(X_labelled, "iloc")
                else (np.asarray(X_labelled)[rows])
            )
    if X_labelled is None or len(X_labelled) == 0:
        return None
    return as_inputs(estimator, transform, X_labelled)


def pool_scores(estimator, X: np.ndarray) -> PoolScores:
    """Uncertainties and closed-form EGL of every row, in bounded memory (row chunks).

    The EGL of task ``t`` is the expected norm of the gradient, with respect
    to the head's mean weights, of the data-fit term
    ``-log N(y | m^T phi, sigma^2)`` for pseudo-labels ``y ~ p(y | x)``:
    ``|y - m^T phi| ||phi|| / sigma^2`` has expectation
    ``s sqrt(2 / pi) ||phi|| / sigma^2`` with ``s`` the predictive standard
    deviation (ALGORITHMS.md §6). The KL term of the ELBO does not depend on
    ``x`` and is left out.
    """
    module = inference_copy(estimator.net_.module_, estimator.device)
    head = module.head
    with torch.no_grad():
        noise_var = head.noise_var()
    m = len(X)
    T = estimator.n_tasks_
    out = [np.empty((m, T)) for _ in range(4)]
    with torch.no_grad():
        for start in range(0, m, PREDICT_CHUNK):
            x = estimator._scaled_tensor(X[start : start + PREDICT_CHUNK]).to(estimator.device)
            phi = module(x)
            pred = head.predict(phi)
            total = torch.sqrt(pred.epistemic + pred.aleatoric)
            phi_norm = with_bias(phi).norm(dim=-1)
            egl = total * math.sqrt(2 / math.pi) * phi_norm / noise_var.unsqueeze(-1)
            parts = (pred.mean, pred.epistemic.sqrt(), total, egl)
            for dest, part in zip(out, parts):
                dest[start : start + len(x)] = part.T.cpu().numpy()
    return PoolScores(*out)


def task_columns(task, n_tasks: int) -> list[int]:
    """The tasks a score sums over: all (``None``) or one index."""
    if task is None:
        return list(range(n_tasks))
    if not (isinstance(task, (int, np.integer)) and 0 <= task < n_tasks):
        raise ValueError(f"task must be None or an integer in [0, {n_tasks}); got {task!r}.")
    return [int(task)]
