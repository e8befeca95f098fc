"""A random-feature reference for networks trained on more than EVIDENCE_MAX_ROWS rows.

Above :data:`~sk_mtbnn.estimators._evidence_regime.EVIDENCE_MAX_ROWS` labelled
rows ``regime="auto"`` trains one network by mini-batches, whose band barely
widens away from the data. The reference of task ``t`` is the small-data
regime's single-task fit on untrained random features (distance-aware: their
bumps are local), fitted by evidence on at most that many of the task's
labelled training rows. The prediction is the per-task mixture
``(1 - w_t) network + w_t reference_t``, whose
weights ``w_t`` (``reference_weight_``) maximise the log predictive density of
the network's held-out rows over a grid -- stacking (Yao, Vehtari, Simpson &
Gelman, "Using Stacking to Average Bayesian Predictive Distributions", Bayesian
Analysis 2018) of two models; the references never saw those rows, the
network's head was conditioned on them too, which favours the network. See "A
random-feature reference above 1,000 rows" in ``docs/algorithms.rst``.
"""

from __future__ import annotations

import contextlib

import numpy as np
from sklearn.base import clone

from ._evidence_regime import EVIDENCE_MAX_ROWS

#: Members of each task's reference. Measured (one multi-task reference) on a clustered 4-D
#: problem with 3,000 rows and on the suite's mpea: one member was as good as five (NLL within
#: 0.01-0.4 nats either way) at a fifth of the cost.
REFERENCE_MEMBERS = 1

#: Candidate weights of the reference, per task.
REFERENCE_WEIGHTS = np.array([0.0, 0.01, 0.02, 0.05, *np.linspace(0.1, 1.0, 10)])
#: Held-out rows come from the training distribution, so they cannot value the reference's
#: widening away from it: each task takes the largest weight whose held-out log density is
#: within this many nats per label of the best weight's (the insurance's measured price).
INSURANCE_NATS = 0.01
#: The weight of a task with fewer held-out labels than MIN_HELDOUT_LABELS: a handful of
#: labels cannot tell the two models apart, and a reference fitted on a few labels is poor.
DEFAULT_WEIGHT = 0.1
MIN_HELDOUT_LABELS = 10


def _log_normal(y, mean, var):
    return -0.5 * (np.log(2 * np.pi * var) + (y - mean) ** 2 / var)


def stacking_weights(y: np.ndarray, own: tuple, reference: tuple, alpha=0.0) -> np.ndarray:
    """Per task, the largest weight ``w`` of ``reference`` within reach of the best held-out fit.

    ``y`` ``(n, T)`` (NaN where missing); ``own`` and ``reference`` are the
    ``(mean, epistemic, aleatoric)`` of the two models on those rows. The
    density of a cell is ``(1 - w) N(y | own) + w N(y | reference)`` (each
    model's Gaussian predictive, plus the known noise ``alpha`` that the
    targets carry and the predictives leave out). Of the weights in
    :data:`REFERENCE_WEIGHTS`, the largest whose mean log density per
    held-out label is within :data:`INSURANCE_NATS` of the best weight's is
    taken; a task with fewer than :data:`MIN_HELDOUT_LABELS` held-out labels
    gets :data:`DEFAULT_WEIGHT`.
    """
    labelled = ~np.isnan(y)
    y0 = np.where(labelled, y, 0.0)
    log_own = _log_normal(y0, own[0], own[1] + own[2] + alpha)
    log_ref = _log_normal(y0, reference[0], reference[1] + reference[2] + alpha)
    scores = []
    for w in REFERENCE_WEIGHTS:
        with np.errstate(divide="ignore"):
            cell = np.logaddexp(np.log1p(-w) + log_own, np.log(w) + log_ref)
        scores.append(np.where(labelled, cell, 0.0).sum(0))
    count = labelled.sum(0)
    per_label = np.stack(scores) / np.maximum(count, 1)  # (weights, T)
    within = per_label >= per_label.max(0) - INSURANCE_NATS
    largest = REFERENCE_WEIGHTS[len(REFERENCE_WEIGHTS) - 1 - np.argmax(within[::-1], axis=0)]
    return np.where(count >= MIN_HELDOUT_LABELS, largest, DEFAULT_WEIGHT)


class ReferenceMixin:
    """``reference_`` and ``reference_weight_`` of the sparse regressor's network regime."""

    def _train(self, module, data, max_epochs=None) -> None:
        self.reference_, self.reference_weight_ = None, np.zeros(self.n_tasks_)
        with self._reference_allowed(max_epochs is None):  # not in pruning's retraining
            super()._train(module, data, max_epochs)

    def _adopt_members(self, X, members) -> None:
        super()._adopt_members(X, members)
        self.reference_, self.reference_weight_ = None, np.zeros(self.n_tasks_)

    @contextlib.contextmanager
    def _reference_allowed(self, allowed: bool):
        """Within: whether this training may fit a reference."""
        self._may_refer = allowed
        try:
            yield
        finally:
            del self._may_refer

    def _reference_obstacle(self, data) -> str | None:
        """Why this fit gets no reference, or None."""
        if self.regime != "auto" or self.max_epochs != "auto":
            return "regime is not 'auto', or max_epochs is set"
        if not getattr(self, "_may_refer", False):
            return "the training was called with max_epochs (pruning)"
        if data.valid is None or not isinstance(data.train[0], np.ndarray):
            return "no held-out rows in this process"
        if hasattr(self, "_feature_choice"):  # set by _ensemble.py on its members
            return "an ensemble member (the members' disagreement is the ensemble's)"
        if hasattr(self, "_shard_row_work") or self._task_features_input is not None:
            return "a data-parallel fit or task features"
        if self.task_inputs is not None:
            return "task inputs (columns of single tasks)"
        if np.any(np.isnan(data.train[1]).all(axis=0)):
            return "a task without labelled training rows"
        if len(data.X) <= EVIDENCE_MAX_ROWS:
            return "the evidence regime applies"
        if self._reference_estimator()._evidence_obstacle(self.net_.module_, 0) is not None:
            return "the architecture cannot hold random features"
        return None

    def _reference_estimator(self):
        return clone(self).set_params(
            regime="evidence",
            n_estimators=REFERENCE_MEMBERS,
            n_targets=None,
            verbose=0,
            random_state=None,
        )

    def _fit_reference(self, data) -> None:
        """Fit ``reference_`` (one fit per task) and choose ``reference_weight_``.

        Without a reference they are None and zeros.
        """
        self.reference_, self.reference_weight_ = None, np.zeros(self.n_tasks_)
        if self._reference_obstacle(data) is not None:
            return
        rng = np.random.RandomState(data.seed)
        X_train, Y_train = data.train
        X_train = X_train * self._x_scale + self._x_mean
        Y_train = Y_train * self._y_scale + self._y_mean
        fits = []
        for t in range(self.n_tasks_):  # each task's own: the network alone shares
            labelled = np.flatnonzero(~np.isnan(Y_train[:, t]))
            n_rows = min(EVIDENCE_MAX_ROWS, len(labelled))
            rows = np.sort(rng.choice(labelled, n_rows, replace=False))
            fits.append(self._untrained_fit(X_train[rows], Y_train[rows, t], data.seed))
        X_valid = data.valid[0] * self._x_scale + self._x_mean
        Y_valid = data.valid[1] * self._y_scale + self._y_mean
        # The network's head was conditioned on these rows too (its noise chosen on them),
        # which favours it a little: a conservative choice of the reference's weight.
        own, reference = self._member_moments(X_valid), as_model(fits)._moments(X_valid)
        weight = stacking_weights(Y_valid, own, reference, float(self._alpha))
        self.reference_, self.reference_weight_ = fits, weight

    def _untrained_fit(self, X, y, seed):
        reference = self._reference_estimator().set_params(random_state=int(seed))
        # Read by the evidence regime (an ensemble hands it to its members): no training.
        reference._feature_choice = {"untrained": True}
        reference.fit(X, y)
        del reference._feature_choice
        return reference


def as_model(reference: list):
    """``reference_``, the per-task fits, as one model of all tasks."""
    return _Tasks(reference)


class _Tasks:
    """Single-task fits as one model of ``T`` tasks (moments, covariance, samples)."""

    def __init__(self, fits: list) -> None:
        self.fits = fits

    def _moments(self, X):
        parts = [fit._moments(X) for fit in self.fits]
        return tuple(np.concatenate([p[k] for p in parts], axis=1) for k in range(3))

    def _joint_covariance(self, X):
        return np.concatenate([fit._joint_covariance(X) for fit in self.fits], axis=-1)

    def _samples(self, X, n_samples, generator):
        return np.concatenate([fit._samples(X, n_samples, generator) for fit in self.fits], axis=1)
