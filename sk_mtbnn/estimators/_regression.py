"""The common part of the multi-task regressors: data, head refinement, GP-like output."""

from __future__ import annotations

import numpy as np
import torch
from sklearn.base import BaseEstimator, MultiOutputMixin, RegressorMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from .._validation import check_regression_targets
from ..nn.blr import LinearStats, heldout_noise_var, linear_stats
from ._base import NetworkEstimatorMixin, TrainingData, nonzero_scale
from ._gp_api import GPLikeRegressorMixin
from ._torch_utils import inference_copy, iter_chunks, predict_in_chunks

#: Fewest held-out labels of a task for its noise to be chosen on them.
MIN_CALIBRATION_LABELS = 10


class MultiTaskRegressorBase(
    GPLikeRegressorMixin, NetworkEstimatorMixin, MultiOutputMixin, RegressorMixin, BaseEstimator
):
    """Fit / refine / predict of a multi-task network with Gaussian-type heads.

    Subclasses provide ``_check_params(n_samples) -> dict``,
    ``_build_module(data)``, ``_build_training_net(module, data)`` and
    ``_kl_weight(data)`` (the weight of the head's KL against the full-data
    likelihood used when the head is conditioned on all rows).
    """

    def fit(self, X, y):
        """Fit the network to ``X`` and the (possibly partly missing) targets ``y``.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)
            Training inputs; standardised internally.
        y : array-like of shape (n_samples,) or (n_samples, n_tasks)
            Targets, one column per task; NaN marks a missing label. Each
            task's loss uses only its labelled rows.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        return self._fit(X, y)

    def _prepare(self, X, y) -> TrainingData:
        """Validate and standardise the data, split off validation rows."""
        X = validate_data(self, X, reset=True, dtype=np.float64, ensure_min_samples=2)
        Y = check_regression_targets(y, X, type(self).__name__)
        self.n_tasks_ = Y.shape[1]
        self._prepare_inputs(X)
        seed = self._draw_seed()
        keep = ~np.all(np.isnan(Y), axis=1)  # rows without any label teach nothing
        X, Y = X[keep], Y[keep]
        if len(X) < 2:
            raise ValueError(
                f"Only {len(X)} row(s) of y carry a label (the others are all NaN); at least "
                "2 labelled rows are needed."
            )
        params = self._check_params(len(X))
        X_all = self._standardise_X(X)
        if self.normalize_y:
            self._y_mean = np.nanmean(Y, axis=0)
            self._y_scale = nonzero_scale(np.nanstd(Y, axis=0))
        else:
            self._y_mean = np.zeros(self.n_tasks_)
            self._y_scale = np.ones(self.n_tasks_)
        Y_all = ((Y - self._y_mean) / self._y_scale).astype(np.float32)
        train, valid = self._split(X_all, Y_all, params, seed)
        n_labelled = (~np.isnan(train[1])).sum(0)
        if np.any(n_labelled == 0):
            raise ValueError(
                "After holding out validation_fraction of the rows, "
                f"task {int(np.argmin(n_labelled))} has no training label left. "
                "Lower validation_fraction or set it to None."
            )
        return TrainingData(X_all, Y_all, train, valid, n_labelled, seed, params)

    def _prepare_inputs(self, X: np.ndarray) -> None:
        """Hook: resolve settings that depend on the inputs (e.g. column names)."""

    def _train(self, module, data: TrainingData, max_epochs=None) -> None:
        """Train ``module`` on ``data`` through a new skorch net (``net_``)."""
        if max_epochs is not None:
            data = data._replace(params={**data.params, "max_epochs": max_epochs})
        self.net_ = self._build_training_net(module, data)
        self.net_.aggregator.reset(data.n_labelled, torch.Generator().manual_seed(data.seed))
        self.net_.fit(*data.train)
        self._after_training(data)

    def _after_training(self, data: TrainingData) -> None:
        self.history_ = self.net_.history
        self.n_epochs_ = len(self.history_)
        self._check_finite_module()
        self.net_.module_.backbone.apply_masks_to_weights()
        if self._refines_head():
            self._refine_head(data)
        head = self.net_.module_.head
        with torch.no_grad():
            self.noise_std_ = np.sqrt(head.noise_var().double().cpu().numpy()) * self._y_scale
        self.elbo_ = self._training_elbo(data.X, data.Y)
        weights = getattr(self.net_.aggregator, "task_weights_", None)
        if weights is not None:
            self.task_weights_ = np.array(weights).reshape(-1, self.n_tasks_)

    def _refines_head(self) -> bool:
        return True

    def _refine_head(self, data: TrainingData) -> None:
        """Closed-form head posterior given the final features.

        With held-out rows, a Gaussian head's noise is first chosen to maximise
        their likelihood; then the posterior is conditioned on every labelled
        row. Computed in float64 on a copy, then written back into the network.
        """
        module = inference_copy(self.net_.module_)
        head = module.head
        train = head_statistics(module, *data.train)
        stats = train
        if data.valid is not None:
            Xv, Yv = (torch.as_tensor(a, dtype=torch.float64) for a in data.valid)
            with torch.no_grad():
                phi_valid = module(Xv)
            if hasattr(head, "log_noise_std"):
                noise_var = heldout_noise_var(
                    train,
                    phi_valid,
                    Yv,
                    head.prior_var,
                    head.noise_var().detach(),
                    MIN_CALIBRATION_LABELS,
                )
                with torch.no_grad():
                    head.log_noise_std.copy_(0.5 * torch.log(noise_var))
            stats = train + linear_stats(phi_valid, Yv)
        head.condition_on(stats, torch.as_tensor(self._kl_weight(data), dtype=torch.float64))
        with torch.no_grad():
            for target, source in zip(self.net_.module_.head.parameters(), head.parameters()):
                target.copy_(source.to(target.dtype))

    def _kl_weight(self, data: TrainingData) -> np.ndarray:
        return np.ones(self.n_tasks_)

    def _training_elbo(self, Xs, Ys) -> float:
        """ELBO of the training targets in the units of y (nats)."""
        module = inference_copy(self.net_.module_)
        total = 0.0
        with torch.no_grad():
            for x, y in iter_chunks(Xs, Ys):
                lab = ~torch.isnan(y)
                nll = module.head.expected_nll(module(x), torch.where(lab, y, 0.0))
                total -= float((nll * lab.T).sum())
            total -= float(module.head.kl_divergence().sum())
        # The log-likelihood of standardised targets, back in units of y.
        return total - float(np.sum((~np.isnan(Ys)).sum(0) * np.log(self._y_scale)))

    # ---------------------------------------------------------- inference
    def _inference(self):
        check_is_fitted(self)
        return inference_copy(self.net_.module_, self.device)

    def _moments(self, X):
        module = self._inference()
        pred = predict_in_chunks(lambda x: module.predict(x), self._scaled_tensor(X), self.device)
        mean = pred[0].T * self._y_scale + self._y_mean
        scale2 = self._y_scale**2
        return mean, pred[1].T * scale2, pred[2].T * scale2

    def _joint_covariance(self, X):
        module = self._inference()
        with torch.no_grad():
            phi = module(self._scaled_tensor(X).to(self.device))
            cov = module.head.joint_covariance(phi).cpu().numpy()  # (T, m, m)
        return np.moveaxis(cov, 0, -1) * self._y_scale**2

    def _samples(self, X, n_samples, generator):
        module = self._inference()
        with torch.no_grad():
            phi = module(self._scaled_tensor(X).to(self.device))
            draws = module.head.sample(phi, n_samples, generator).cpu().numpy()  # (n, T, m)
        draws = draws * self._y_scale[:, None] + self._y_mean[:, None]
        return np.transpose(draws, (2, 1, 0))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = True
        return tags


def head_statistics(module, X: np.ndarray, Y: np.ndarray) -> LinearStats:
    """Sufficient statistics of the head inputs, accumulated over row chunks."""
    stats = None
    with torch.no_grad():
        for x, y in iter_chunks(X, Y):
            part = linear_stats(module(x), y)
            stats = part if stats is None else stats + part
    return stats
