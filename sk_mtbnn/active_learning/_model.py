"""The one place where the query strategies read a fitted estimator's internals.

Everything the strategies need from a model goes through the small functions
below: the estimator behind a learner or a pipeline, validated inputs, the
standardisation of inputs and targets the network was trained in, the
per-row uncertainties and expected gradient lengths, and a float64 copy of
the network for autograd. Strategies work in those standardised units only,
which makes their choices invariant to a (positive) per-column affine
rescaling of the inputs or the targets.
"""

from __future__ import annotations

import copy
import math
import numbers
from typing import NamedTuple

import numpy as np
import torch
from sklearn.pipeline import Pipeline

from .._validation import check_fitted, check_positive_int
from ..estimators._ensemble import mixture_of
from ..estimators._torch_utils import PREDICT_CHUNK
from ..nn.blr import with_bias

#: Pool rows scored at once (bounded memory); a pool of several chunks may show a progress bar.
SCORE_CHUNK = PREDICT_CHUNK


class PoolScores(NamedTuple):
    """Per pool row and task, in units of the standardised targets."""

    mean: np.ndarray  # (m, T)
    epistemic_std: np.ndarray  # (m, T)
    total_std: np.ndarray  # (m, T)
    egl: np.ndarray  # (m, T) closed-form expected gradient length of each task's head

    def summed_std(self, uncertainty: str, tasks: list[int]) -> np.ndarray:
        """The ``"total"`` or ``"epistemic"`` standard deviation, summed over ``tasks``."""
        std = self.total_std if uncertainty == "total" else self.epistemic_std
        return std[:, tasks].sum(1)


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
    needed = ("_scaled_tensor", "_moments", "n_tasks_")
    if not all(hasattr(estimator, name) for name in needed):
        raise TypeError(
            "The query strategy needs a fitted sk_mtbnn regressor (SparseMultiTaskBNNRegressor, "
            "BayesAggMTLRegressor, IterativeMagnitudePruning of one, or a Pipeline ending in "
            f"one), or a modAL learner around it; got {type(estimator).__name__}."
        )
    check_fitted(estimator)
    return estimator, transform


def as_inputs(estimator, transform, X) -> np.ndarray:
    """``X`` through the pipeline's transforms, validated as the estimator would."""
    if transform is not None:
        X = transform(X)
    return estimator._validate_X_predict(X)


def prepare_pool(learner, X_pool, n_instances):
    """The estimator, its input transform, the validated pool and ``n_instances``, checked."""
    n_instances = check_positive_int(n_instances, "n_instances")
    estimator, transform = resolve(learner)
    X = as_inputs(estimator, transform, X_pool)
    if n_instances > len(X):
        raise ValueError(f"n_instances={n_instances} exceeds the pool size {len(X)}.")
    return estimator, transform, X, n_instances


def members(estimator) -> list:
    """The fitted networks behind ``estimator``: its ensemble members, or itself."""
    return list(vars(estimator).get("estimators_", None) or [estimator])


def standardised_inputs(estimator, X: np.ndarray) -> np.ndarray:
    """Validated inputs in the standardised units the network sees.

    Ensemble members are fitted on the same rows, so they share one
    standardisation.
    """
    net = members(estimator)[0]
    return (X - net._x_mean) / net._x_scale


def standardised_targets(estimator, Y: np.ndarray) -> np.ndarray:
    """Targets of shape ``(n, T)`` in the standardised units the network predicts."""
    net = members(estimator)[0]
    return (Y - net._y_mean) / net._y_scale


def inference_module(net) -> torch.nn.Module:
    """A float64 copy of one fitted network (an ensemble member) in evaluation mode (safe to
    differentiate)."""
    return copy.deepcopy(net._inference())


def pool_progress(estimator, n_rows: int, chunk: int, verbose=None, *, repeats=1, desc="score"):
    """One tqdm bar over ``repeats * n_rows`` rows, shown only when asked for and worth it.

    Shown when ``verbose`` (None: the estimator's ``verbose``) is at least 2,
    the level at which ``fit`` draws its progress bar, and the rows take more
    than one ``chunk``; otherwise a disabled bar, whose updates cost nothing.
    """
    from tqdm.auto import tqdm

    if verbose is not None and not isinstance(verbose, numbers.Integral):
        raise ValueError(f"verbose must be None or an integer; got {verbose!r}.")
    level = getattr(estimator, "verbose", 0) if verbose is None else verbose
    show = int(level or 0) >= 2 and n_rows > chunk
    return tqdm(total=repeats * n_rows, unit="row", desc=desc, leave=True, disable=not show)


def pool_scores(estimator, X: np.ndarray, verbose=None) -> PoolScores:
    """Pool scores of a network, or of an ensemble's mixture.

    Above 1,000 labelled rows a regressor's predictions mix in random-feature
    references (``reference_``); the pool scores use the network alone.

    For an ensemble the mean and the standard deviations are the mixture's
    (law of total variance over the members, the epistemic part floored by the
    untrained twins' as in its predictions), and the EGL is the members'
    closed form averaged, with pseudo-labels drawn from the mixture's
    predictive (each member's EGL rescaled by the mixture's std over its own).
    A pool of more than :data:`SCORE_CHUNK` rows shows one progress bar
    (over all members) when ``verbose`` (None: the estimator's) is 2 or more.
    """
    nets = members(estimator)
    twins = getattr(estimator, "_twins", lambda: None)() or [None] * len(nets)
    repeats = len(nets) + sum(t is not None for t in twins)
    with pool_progress(estimator, len(X), SCORE_CHUNK, verbose, repeats=repeats) as bar:
        parts = [_network_pool_scores(net, X, bar) for net in nets]
        # The untrained twins' floor, as in the ensemble's predictions.
        floor_parts = [
            p if t is None else _network_pool_scores(t, X, bar) for p, t in zip(parts, twins)
        ]
    if len(nets) == 1:
        return parts[0]
    mean, epistemic, aleatoric = mixture_of([_moments(p) for p in parts])
    if any(t is not None for t in twins):
        floor = mixture_of([_moments(p) for p in floor_parts])[1]
        epistemic = np.maximum(epistemic, estimator.twin_scale_ * floor)
    total = np.sqrt(epistemic + aleatoric)
    egl = np.mean([p.egl * total / p.total_std for p in parts], axis=0)
    return PoolScores(mean, np.sqrt(epistemic), total, egl)


def _moments(scores: PoolScores) -> tuple:
    """Mean, epistemic and aleatoric variance of one network's pool scores."""
    return scores.mean, scores.epistemic_std**2, scores.total_std**2 - scores.epistemic_std**2


def _network_pool_scores(estimator, X: np.ndarray, bar) -> PoolScores:
    """Uncertainties and closed-form EGL of every row, in bounded memory (row chunks).

    The EGL of task ``t`` is the expected norm of the gradient, with respect
    to task ``t``'s head mean weights, of its data-fit term
    ``-log N(y | m^T phi, sigma^2)`` for pseudo-labels ``y ~ p(y | x)``:
    ``|y - m^T phi| ||phi|| / sigma^2`` has expectation
    ``s sqrt(2 / pi) ||phi|| / sigma^2`` with ``s`` the predictive standard
    deviation (``docs/algorithms.rst``, cluster-based EGL, step 4). The KL
    term of the ELBO does not depend on ``x`` and is left out.
    """
    module = estimator._inference()  # the fitted float64 copy, not differentiated here
    head = module.head
    device = next(module.parameters()).device
    Z = standardised_inputs(estimator, X)
    out = [np.empty((len(Z), estimator.n_tasks_)) for _ in range(4)]
    with torch.no_grad():
        for start in range(0, len(Z), SCORE_CHUNK):
            x = torch.as_tensor(Z[start : start + SCORE_CHUNK], device=device)
            phi = module(x)
            pred = head.predict(phi)
            total = torch.sqrt(pred.epistemic + pred.aleatoric)
            phi_norm = with_bias(phi).norm(dim=-1)
            # The noise at each point (constant for the homoscedastic heads).
            egl = total * math.sqrt(2 / math.pi) * phi_norm / pred.aleatoric
            parts = (pred.mean, pred.epistemic.sqrt(), total, egl)
            for dest, part in zip(out, parts):
                dest[start : start + len(x)] = part.T.cpu().numpy()
            bar.update(len(x))
    return PoolScores(*out)


def task_columns(task, n_tasks: int) -> list[int]:
    """The tasks a score sums over: all (``None``) or one index."""
    if task is None:
        return list(range(n_tasks))
    if not (isinstance(task, (int, np.integer)) and 0 <= task < n_tasks):
        raise ValueError(f"task must be None or an integer in [0, {n_tasks}); got {task!r}.")
    return [int(task)]
