"""The evidence regime of SparseMultiTaskBNNRegressor: small data fitted the way a GP is fitted.

Up to :data:`EVIDENCE_MAX_ROWS` labelled rows (``regime="auto"``) the backbone is
a random-feature map whose lengthscale, head prior and noise maximise the
evidence of all rows, with trained features kept only when held-out likelihood
says they help (docs/algorithms.rst, section "The small-data regime";
``sk_mtbnn._training.full_batch``). Also here: ``alpha`` (known noise, as in
GaussianProcessRegressor) and the number of ensemble members of
``n_estimators="auto"``.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.utils.validation import check_array

from .._threads import one_thread
from .._validation import _nullable_as_float
from ..nn.blr import linear_stats
from ._base import TrainingData, layer_sizes
from ._torch_utils import inference_copy

#: Most labelled rows for which ``regime="auto"`` fits by evidence.
EVIDENCE_MAX_ROWS = 1000
#: Fewest labels of a task for its evidence alone to set its prior and noise.
MIN_EVIDENCE_LABELS = 10
#: Members of ``n_estimators="auto"`` in the evidence regime.
AUTO_EVIDENCE_MEMBERS = 5


class EvidenceRegimeMixin:
    """``regime``, ``alpha`` and ``n_estimators="auto"`` of the sparse regressor."""

    def _check_alpha(self) -> np.ndarray | float:
        """``alpha`` as a float or an ``(n_labelled_rows, T)`` array, units of y squared."""
        alpha = self.alpha
        if np.ndim(alpha) == 0:
            return float(alpha)
        rows = self._labelled_rows
        alpha = check_array(alpha, ensure_2d=False, dtype=np.float64, input_name="alpha")
        alpha = alpha[:, None] if alpha.ndim == 1 else alpha
        if alpha.shape[0] != len(rows) or alpha.shape[1] not in (1, self.n_tasks_):
            raise ValueError(
                f"alpha has shape {np.shape(self.alpha)}; it must be a scalar or have shape "
                f"({len(rows)},) or ({len(rows)}, {self.n_tasks_}), one entry per row (and task) "
                "of y."
            )
        if np.any(alpha < 0):
            raise ValueError("alpha holds noise variances: every entry must be >= 0.")
        if self.regime == "network":
            raise ValueError("An array alpha needs regime='auto' or 'evidence'.")
        return np.array(np.broadcast_to(alpha, (len(rows), self.n_tasks_))[rows])

    # ---------------------------------------------------- the evidence regime
    def _train(self, module, data: TrainingData, max_epochs=None) -> None:
        if max_epochs is None and self._evidence_regime(module, len(data.X)):
            with one_thread():  # small full-batch work: more threads only slow it down
                self._fit_by_evidence(module, data)
        else:
            if np.ndim(self._alpha):
                raise ValueError(
                    "An array alpha (known noise per row) is used by the evidence regime, which "
                    f"this network cannot use ({self._evidence_obstacle(module, len(data.X))}); "
                    "give a scalar alpha."
                )
            self.regime_ = "network"
            super()._train(module, data, max_epochs)

    def _evidence_obstacle(self, module, n_rows: int) -> str | None:
        """Why the evidence regime does not apply, or None."""
        from .._training.random_features import check_random_feature_network

        if self.head != "gaussian" or self.covariance != "dense" or self.reg_weight != "auto":
            return "it needs head='gaussian', covariance='dense' and reg_weight='auto'"
        if self.residual or self.spectral_norm or self.random_features:
            return "residual, spectral_norm and random_features are trained by mini-batches"
        if self.head_prior is not None:
            return "head_prior conditions the heads of a mini-batch-trained network"
        try:
            check_random_feature_network(module)
        except ValueError as error:
            return str(error)
        if self.regime == "auto" and self.max_epochs != "auto":
            return "max_epochs is set"
        if self.regime == "auto" and n_rows > EVIDENCE_MAX_ROWS:
            return f"more than {EVIDENCE_MAX_ROWS} labelled rows"
        return None

    def _evidence_regime(self, module, n_rows: int) -> bool:
        if self.regime == "network":
            return False
        obstacle = self._evidence_obstacle(module, n_rows)
        if obstacle is not None and self.regime == "evidence":
            raise ValueError(f"regime='evidence' cannot be used: {obstacle}.")
        return obstacle is None

    def _n_members(self, X, y) -> int:
        """``"auto"``: 5 members where the evidence regime will fit them (cheap), else 1."""
        if self.n_estimators != "auto":
            return self.n_estimators
        return AUTO_EVIDENCE_MEMBERS if self._evidence_likely(X, y) else 1

    def _evidence_likely(self, X, y) -> bool:
        """Whether the evidence regime will fit ``(X, y)``, judged before any validation."""
        allowed = (
            self.regime != "network"
            and len(layer_sizes(self.hidden_layer_sizes)) >= 2
            and self.activation != "tanh"
            and not layer_sizes(self.branch_layer_sizes)
            and not (self.residual or self.spectral_norm or self.random_features)
            and self.head_prior is None
            and self.head == "gaussian"
            and self.covariance == "dense"
            and self.reg_weight == "auto"
        )
        if not allowed or self.regime == "evidence":
            return allowed
        if self.max_epochs != "auto":
            return False
        try:  # the labelled rows, read only when they decide
            Y = _nullable_as_float(y).astype(np.float64).reshape(len(X), -1)
        except (TypeError, ValueError):
            return False  # invalid targets: the fit's own validation will say what is wrong
        return int(np.sum(~np.all(np.isnan(Y), axis=1))) <= EVIDENCE_MAX_ROWS

    def _standardised_alpha(self, n_rows: int) -> float | np.ndarray:
        """``alpha`` in units of the standardised targets: a float where one number serves."""
        alpha = self._alpha
        if np.ndim(alpha) == 0 and (alpha == 0 or self.n_tasks_ == 1):
            return float(alpha / self._y_scale[0] ** 2)  # the fast, statistics-based path
        return np.array(np.broadcast_to(alpha / self._y_scale**2, (n_rows, self.n_tasks_)))

    @staticmethod
    def _borrow_hyperparameters(fit, n_labels: np.ndarray) -> dict:
        """Tasks with few labels take no smaller prior or noise than the well-labelled ones.

        Type-II maximum likelihood on a handful of labels tends to explain them
        with a tiny noise and prior variance, which gives over-confident bands.
        A task with fewer than :data:`MIN_EVIDENCE_LABELS` labels therefore has
        its (standardised) prior variance raised to the largest, and its noise
        variance to the median, of the tasks with enough labels -- the scale a
        related task's data supports. Without such tasks nothing changes.
        """
        few = n_labels < MIN_EVIDENCE_LABELS
        if not few.any() or few.all():
            return {}
        prior, noise = fit.prior_var.clone(), fit.noise_var.clone()
        rich = torch.as_tensor(~few)
        poor = torch.as_tensor(few)
        prior[poor] = torch.clamp(prior[poor], min=float(prior[rich].max()))
        noise[poor] = torch.clamp(noise[poor], min=float(noise[rich].median()))
        return {"prior_var": prior, "noise_var": noise}

    def _fit_by_evidence(self, module, data: TrainingData):
        """Features and head chosen by evidence, on all labelled rows (no split).

        Returns the :class:`~sk_mtbnn._training.full_batch.SmallDataFit`.
        """
        from .._training.full_batch import condition_head, fit_small_data
        from .._training.random_features import features64
        from ..nn.evidence import log_marginal_likelihood

        alpha = self._standardised_alpha(len(data.X))
        # In an ensemble (_ensemble.py), a member records its random features in
        # _feature_choice; its untrained twin gets them there and keeps them, and
        # the members after the first get the first one's ("relevance_of").
        shared = getattr(self, "_feature_choice", None)
        twin = shared.get("choice") if shared is not None else None
        untrained = twin is not None or (shared is not None and shared.get("untrained"))
        fit = fit_small_data(
            module,
            data.X,
            data.Y,
            alpha=alpha,
            train=False if untrained else "auto",
            random_state=data.seed,
            choice=twin,
            relevance_of=shared.get("relevance_of") if shared is not None else None,
        )
        if shared is not None and twin is None:
            shared["choice"] = fit.choice
        self.regime_ = "evidence"
        net_class, criterion, _ = self._net_spec(module, data)
        self.net_ = self._build_net(net_class, module, criterion, data, aggregator=None)
        # The module and history only: no optimiser (nothing is trained here,
        # and the first optimiser of a process costs about a second to import).
        self.net_._initialize_module()
        self.net_._initialize_history()
        self.history_, self.n_epochs_, self.training_interrupted_ = self.net_.history, 0, False
        self.n_training_steps_ = fit.n_steps
        self.lengthscale_ = fit.lengthscale
        self._check_finite_module()
        # The float64 copy, conditioned again in float64 (the training network
        # holds float32 numbers of a possibly ill-conditioned posterior).
        self._inference_module = inference_copy(module, self.device)
        x = torch.as_tensor(data.X, dtype=torch.float64)
        Y = torch.as_tensor(data.Y, dtype=torch.float64)
        fit = fit._replace(**self._borrow_hyperparameters(fit, (~np.isnan(data.Y)).sum(0)))
        phi = features64(self._inference_module, x)
        alpha_t = torch.as_tensor(np.asarray(alpha), dtype=torch.float64)
        condition_head(self._inference_module.head, phi, Y, fit.prior_var, fit.noise_var, alpha_t)
        self._sync_inference_stamp()
        self.noise_std_ = np.sqrt(fit.noise_var.double().numpy()) * self._y_scale
        # Evidence-chosen prior variance of every head weight, standardised units.
        self._evidence_prior_var = fit.prior_var.double().numpy()
        labels = (~np.isnan(data.Y)).sum(0)
        if alpha_t.ndim == 0:
            lml = log_marginal_likelihood(
                linear_stats(phi, Y), fit.prior_var.double(), fit.noise_var.double() + alpha_t
            )
        else:
            from ..nn.evidence_rows import log_marginal_likelihood_rows

            lml = log_marginal_likelihood_rows(phi, Y, fit.prior_var, fit.noise_var, alpha_t)
        lml = float((lml.double().numpy() - labels * np.log(self._y_scale)).sum())
        self.log_marginal_likelihood_value_ = self.elbo_ = lml
        self._set_epistemic_reference(data.X * self._x_scale + self._x_mean)
        return fit
