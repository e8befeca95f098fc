"""GaussianProcessRegressor's prediction contract, shared by the regressors.

Shapes follow :class:`sklearn.gaussian_process.GaussianProcessRegressor`
exactly: with one task (``y`` of shape ``(n,)`` or ``(n, 1)``) the mean and
standard deviation are ``(m,)`` and the covariance ``(m, m)``; with ``T``
tasks they are ``(m, T)`` and ``(m, m, T)``; samples are ``(m, n_samples)``
or ``(m, T, n_samples)``.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.metrics import r2_score
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_array, check_is_fitted, validate_data

from .._docstrings import fill_doc
from .._validation import check_input_frame, check_positive_int, check_regression_targets

#: Largest joint covariance ``predict(return_cov=True)`` builds (bytes).
MAX_COVARIANCE_BYTES = 2 * 1024**3


class GPLikeRegressorMixin:
    """``predict``, ``sample_y``, ``score`` and ``decompose_uncertainty``.

    Subclasses provide, for validated float64 ``X`` and in the units of y:

    * ``_moments(X)`` -> mean, epistemic and aleatoric variance, each ``(m, T)``;
    * ``_joint_covariance(X)`` -> ``(m, m, T)``;
    * ``_samples(X, n_samples, generator)`` -> ``(m, T, n_samples)``;
    * ``_prior_model(n_features)`` -> an object with the same three methods
      and ``n_tasks_`` that describes the prior, used before ``fit`` (as
      :class:`~sklearn.gaussian_process.GaussianProcessRegressor` does).
    """

    def _source(self, X):
        """Validated ``X`` and the model to predict with: the fitted one, or the prior."""
        check_input_frame(X)
        if self.__sklearn_is_fitted__():
            return validate_data(self, X, reset=False, dtype=np.float64), self
        X = check_array(X, dtype=np.float64)
        return X, self._prior_model(X.shape[1])

    def _prior_model(self, n_features: int):
        check_is_fitted(self)  # estimators without a prior predict only once fitted

    def _validate_X_predict(self, X) -> np.ndarray:
        check_is_fitted(self)
        check_input_frame(X)
        return validate_data(self, X, reset=False, dtype=np.float64)

    @staticmethod
    def _squeeze(a: np.ndarray, model) -> np.ndarray:
        # GaussianProcessRegressor drops the target axis when there is one target.
        return a[..., 0] if model.n_tasks_ == 1 else a

    @staticmethod
    def _check_finite(*arrays: np.ndarray) -> None:
        for a in arrays:
            if not np.all(np.isfinite(a)):
                raise ValueError(
                    "The predictions are not finite. The inputs may lie extremely far "
                    "from the training data (check their scale), or the fitted model has "
                    "diverged (refit with a smaller learning_rate)."
                )

    @fill_doc
    def predict(self, X, return_std=False, return_cov=False):
        """Predictive mean, and optionally its standard deviation or covariance.

        The same contract as
        :meth:`sklearn.gaussian_process.GaussianProcessRegressor.predict`.

        Parameters
        ----------
        %(X_query)s
        return_std : bool, default=False
            Also return the predictive standard deviation
            ``sqrt(epistemic + aleatoric)``, in the units of y.
        return_cov : bool, default=False
            Also return the joint predictive covariance of the query points.

        Returns
        -------
        y_mean : ndarray of shape (n_samples,) or (n_samples, n_tasks)
            Predictive mean.
        y_std : ndarray of shape (n_samples,) or (n_samples, n_tasks), optional
            Predictive standard deviation, when ``return_std=True``.
        y_cov : ndarray of shape (n_samples, n_samples) or \
                (n_samples, n_samples, n_tasks), optional
            Joint predictive covariance, when ``return_cov=True``.
        """
        if return_std and return_cov:
            raise RuntimeError("At most one of return_std or return_cov can be requested.")
        X, model = self._source(X)
        if return_cov:
            _check_covariance_size(len(X), model.n_tasks_)
            mean = model._moments(X)[0]
            cov = model._joint_covariance(X)
            self._check_finite(mean, cov)
            return self._squeeze(mean, model), self._squeeze(cov, model)
        mean, epistemic, aleatoric = model._moments(X)
        self._check_finite(mean, epistemic, aleatoric)
        if not return_std:
            return self._squeeze(mean, model)
        return self._squeeze(mean, model), self._squeeze(np.sqrt(epistemic + aleatoric), model)

    @fill_doc
    def decompose_uncertainty(self, X):
        """The two parts of the predictive variance, in squared units of y.

        Parameters
        ----------
        %(X_query)s

        Returns
        -------
        epistemic : ndarray of shape (n_samples,) or (n_samples, n_tasks)
            Variance due to uncertainty about the model's weights; shrinks
            with more data near ``X``.
        aleatoric : ndarray of shape (n_samples,) or (n_samples, n_tasks)
            Observation-noise variance; does not shrink with more data.
            ``predict(X, return_std=True)[1] ** 2 == epistemic + aleatoric``.
        """
        X, model = self._source(X)
        _, epistemic, aleatoric = model._moments(X)
        self._check_finite(epistemic, aleatoric)
        return self._squeeze(epistemic, model), self._squeeze(aleatoric, model)

    @fill_doc
    def sample_y(self, X, n_samples=1, random_state=0):
        """Draw joint samples of the targets at ``X``.

        Head weights are drawn from their posterior, then observation noise:
        samples are correlated across the query points as the model implies.
        Same contract as
        :meth:`sklearn.gaussian_process.GaussianProcessRegressor.sample_y`.

        Parameters
        ----------
        %(sample_y_params)s

        Returns
        -------
        y_samples : ndarray of shape (n_samples_X, n_samples) or \
                (n_samples_X, n_tasks, n_samples)
            The samples.
        """
        n_samples = check_positive_int(n_samples, "n_samples")
        X, model = self._source(X)
        seed = int(check_random_state(random_state).randint(np.iinfo(np.int32).max))
        generator = torch.Generator().manual_seed(seed)
        samples = model._samples(X, n_samples, generator)
        self._check_finite(samples)
        return samples[:, 0, :] if model.n_tasks_ == 1 else samples

    @fill_doc
    def score(self, X, y, sample_weight=None):
        """Coefficient of determination R² over the labelled entries of ``y``.

        NaN entries of ``y`` are missing labels and are skipped; with several
        tasks the per-task R² are averaged uniformly.

        Parameters
        ----------
        %(X_test)s
        y : array-like of shape (n_samples,) or (n_samples, n_tasks)
            True targets, NaN where missing.
        %(sample_weight)s

        Returns
        -------
        score : float
            Mean R² over tasks.
        """
        y = check_regression_targets(y, X, type(self).__name__)
        pred = self.predict(X).reshape(len(y), -1)
        if pred.shape[1] != y.shape[1]:
            raise ValueError(
                f"y has {y.shape[1]} task column(s) but the model was fitted on {pred.shape[1]}."
            )
        weights = None if sample_weight is None else np.asarray(sample_weight, dtype=float)
        scores = []
        for t in range(y.shape[1]):
            rows = ~np.isnan(y[:, t])
            w = None if weights is None else weights[rows]
            scores.append(r2_score(y[rows, t], pred[rows, t], sample_weight=w))
        return float(np.mean(scores))


def _check_covariance_size(n_rows: int, n_tasks: int) -> None:
    """Refuse a joint covariance that would not fit in memory, before building it."""
    size = 8 * n_rows**2 * n_tasks
    if size > MAX_COVARIANCE_BYTES:
        raise ValueError(
            f"predict(return_cov=True) on {n_rows} rows and {n_tasks} task(s) would build a "
            f"{size / 1024**3:.1f} GiB covariance ({n_rows} x {n_rows} per task). Ask for "
            "return_std=True (the diagonal), or call predict(return_cov=True) on chunks of "
            f"at most {int(np.sqrt(MAX_COVARIANCE_BYTES / (8 * n_tasks)))} rows."
        )
