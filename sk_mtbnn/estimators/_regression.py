"""The common part of the multi-task regressors: targets, head refinement, ensembles."""

from __future__ import annotations

import contextlib
import contextvars
import copy

import numpy as np
import torch
from sklearn.base import BaseEstimator, MultiOutputMixin, RegressorMixin, clone
from sklearn.utils import check_random_state
from sklearn.utils.validation import validate_data

from .._docstrings import fill_doc
from .._validation import check_input_frame, check_regression_targets
from ..nn.blr import LinearStats, heldout_noise_var
from ._base import NetworkEstimatorMixin, TrainingData, column_scale
from ._ensemble import EnsembleMixin
from ._gp_api import GPLikeRegressorMixin
from ._torch_utils import iter_chunks, module_device, predict_in_chunks

#: Fewest held-out labels of a task for its noise to be chosen on them.
MIN_CALIBRATION_LABELS = 10
#: Fewest labels of a task for its own noise estimate to be trusted.
MIN_TASK_LABELS = 10


class RowWork:
    """Where the end of a fit runs its work over rows: here, on all of them (the default).

    The sums over the training rows that finish a fit (the heads' statistics,
    the ELBO's likelihood term) and the per-row epistemic variances behind
    ``ood_score``'s reference go through :meth:`run`, which calls the
    estimator's method on every row. ``combine`` says how the results of
    consecutive row parts make the whole (``"sum"`` or ``"concatenate"``):
    :func:`sk_mtbnn.distributed.fit_data_parallel` sets, in its process 0, a
    subclass that shares the rows among its processes (:func:`row_work`).
    """

    def run(self, estimator, method: str, combine: str, *arrays):
        """``getattr(estimator, method)(*arrays)``, over all rows of ``arrays``."""
        return getattr(estimator, method)(*arrays)


_ROW_WORK: contextvars.ContextVar[RowWork | None] = contextvars.ContextVar("row_work", default=None)


def _run_rows(estimator, method: str, combine: str, *arrays):
    """``RowWork.run`` of the row work in force (:func:`row_work`; by default all rows here)."""
    return (_ROW_WORK.get() or RowWork()).run(estimator, method, combine, *arrays)


@contextlib.contextmanager
def row_work(work: RowWork):
    """Within the block, the ends of fits run their row work through ``work``."""
    token = _ROW_WORK.set(work)
    try:
        yield work
    finally:
        _ROW_WORK.reset(token)


class MultiTaskRegressorBase(
    EnsembleMixin,
    GPLikeRegressorMixin,
    NetworkEstimatorMixin,
    MultiOutputMixin,
    RegressorMixin,
    BaseEstimator,
):
    """Fit / refine / predict of a multi-task network with Gaussian-type heads.

    Implements the skeleton's hooks shared by the regressors (targets,
    their standardisation, the head refinement in ``_finalise``);
    subclasses provide ``_build_module(data)``, ``_net_spec(module, data)``
    and ``_kl_weight(data)`` (the weight of the head's KL against the
    full-data likelihood used when the head is conditioned on all rows).
    With ``n_estimators > 1`` the fit trains a deep ensemble instead
    (:class:`~sk_mtbnn.estimators._ensemble.EnsembleMixin`).
    """

    def _fit(self, X, y, task_features=None) -> None:
        self._task_features_input = task_features
        n_members = self._n_members(X, y)
        if n_members > 1:
            # The members validate X, y and task_features again in their workers; checked
            # here first, bad input raises as a single fit's does (not from a worker). On
            # a copy, with no random draw: the members' seeds and state are unchanged.
            copy.copy(self)._validate_inputs(X, y)
            self._fit_ensemble(X, y, n_members)
        else:
            super()._fit(X, y)

    def _n_members(self, X, y) -> int:
        """``n_estimators``, with ``"auto"`` resolved by the estimator (default: 1)."""
        return 1 if self.n_estimators == "auto" else self.n_estimators

    def _check_param_combinations(self, X) -> None:
        """GaussianProcessRegressor's rule: ``n_targets``, when set, must match ``y``."""
        super()._check_param_combinations(X)
        if getattr(self, "n_targets", None) is not None and self.n_targets != self.n_tasks_:
            raise ValueError(
                "The number of targets seen in `y` is different from the parameter "
                f"`n_targets`. Got {self.n_tasks_} != {self.n_targets}."
            )

    def _encode_targets(self, y, X) -> np.ndarray:
        return check_regression_targets(y, X, type(self).__name__)

    def _standardise_Y(self, Y: np.ndarray) -> np.ndarray:
        if self.normalize_y:
            self._y_mean = np.nanmean(Y, axis=0)
            self._y_scale = column_scale(Y - self._y_mean)
        else:
            self._y_mean = np.zeros(Y.shape[1])
            self._y_scale = np.ones(Y.shape[1])
        return ((Y - self._y_mean) / self._y_scale).astype(np.float32)

    def _finalise(self, data: TrainingData) -> None:
        if self._refines_head():
            self._refine_head(data)
            self._sync_inference_stamp()
        self._fit_reference(data)
        self._set_epistemic_reference(data.X * self._x_scale + self._x_mean)
        self.noise_std_ = np.sqrt(self._mean_noise_var(data.X)) * self._y_scale
        self.elbo_ = self._training_elbo(data.X, data.Y)

    def _fit_reference(self, data: TrainingData) -> None:
        """Hook: a reference model mixed into the predictions (the sparse regressor's)."""

    def _mean_noise_var(self, Xs: np.ndarray) -> np.ndarray:
        """The noise variance per task (averaged over the rows if it depends on the input)."""
        module = self._inference_module
        with torch.no_grad():
            if not getattr(module.head, "input_dependent_noise", False):
                return module.head.noise_var().cpu().numpy()
            total = 0.0
            for (x,) in iter_chunks(Xs):
                phi = module(x.to(module_device(module)))
                total = total + module.head.noise_var(phi).sum(-1).cpu().numpy()
        return total / len(Xs)

    def _refines_head(self) -> bool:
        return True

    def _refine_head(self, data: TrainingData) -> None:
        """Closed-form head posterior given the final features.

        With held-out rows, a Gaussian head's noise is first chosen to maximise
        their likelihood; then the posterior is conditioned on every labelled
        row. Computed in float64 on the inference copy, then written back into
        the training network.
        """
        module = self._inference_module
        head = module.head
        train = _run_rows(self, "_head_statistics", "sum", *data.train)
        stats = train
        # The likelihood's tempering of the posterior that predicts: the noise is chosen
        # for that posterior (with a user-set reg_weight it is not the exact one).
        kl_weight = torch.as_tensor(self._kl_weight(data), dtype=torch.float64)
        kl_weight = kl_weight.to(module_device(module))
        if data.valid is not None:
            Xv, Yv = (
                torch.as_tensor(a, dtype=torch.float64, device=module_device(module))
                for a in data.valid
            )
            with torch.no_grad():
                phi_valid = module(Xv)
            if hasattr(head, "log_noise_std"):

                def choose_noise(prior=None) -> None:
                    noise_var = heldout_noise_var(
                        train,
                        phi_valid,
                        Yv,
                        head.prior_var,
                        head.noise_var().detach(),
                        MIN_CALIBRATION_LABELS,
                        kl_weight,
                        **({} if prior is None else {"prior": prior}),
                    )
                    with torch.no_grad():
                        head.log_noise_std.copy_(0.5 * torch.log(noise_var))

                choose_noise()
                if getattr(self, "head_prior", None) is not None:
                    # The task prior is fitted given the noise, and it is the prior that
                    # predicts: choose the noise once more under it, fitted on the training
                    # rows only (the held-out rows judge, so they must not shape the prior).
                    choose_noise(self._task_prior(head, train, kl_weight))
            stats = train + head.statistics(phi_valid, Yv)
        self._borrow_noise(head, stats.count)
        prior = self._task_prior(head, stats, kl_weight)
        head.condition_on(stats, kl_weight, **({} if prior is None else {"prior": prior}))
        self._subtract_known_noise(head)
        with torch.no_grad():
            for target, source in zip(self.net_.module_.head.parameters(), head.parameters()):
                target.copy_(source.to(target.dtype))

    @staticmethod
    def _borrow_noise(head, n_labels) -> None:
        """A task with fewer than :data:`MIN_TASK_LABELS` labels takes no smaller noise than
        the median of the well-labelled tasks (in standardised units).

        A handful of labels that the network fits almost exactly gives a noise
        estimate near zero and over-confident bands (measured: noise std 0.0007
        and 14-27% coverage with 3 labels in BayesAggMTLRegressor).
        """
        if not hasattr(head, "log_noise_std"):
            return
        few = n_labels < MIN_TASK_LABELS
        if not bool(few.any()) or bool(few.all()):
            return
        with torch.no_grad():
            noise = head.noise_var()
            floor = noise[~few].median()
            head.log_noise_std.copy_(
                0.5 * torch.log(torch.where(few, noise.clamp_min(floor), noise))
            )

    def _task_prior(self, head, stats, kl_weight):
        """The head prior relating the tasks (``head_prior``), fitted by empirical Bayes.

        Each task's likelihood of its head weights given the final features
        is fitted by the prior's EM; the prior it hands each head is then
        conditioned on. Sets ``task_similarity_``. None keeps the head's own
        isotropic prior.
        """
        name = getattr(self, "head_prior", None)
        if name is None:
            return None
        from ..nn.task_priors import TaskLikelihood, make_task_prior

        options = {"prior_var": head.prior_var}
        if name == "gating":
            options["task_features"] = self._task_features
        likelihood = TaskLikelihood.from_stats(stats, head._conditioning_noise_var(), kl_weight)
        prior = make_task_prior(name, **options).fit(likelihood)
        self.task_similarity_ = np.asarray(prior.task_similarity_.detach().cpu().numpy())
        mean, precision = prior.prior()
        return mean.to(stats.gram), precision.to(stats.gram)

    def _subtract_known_noise(self, head) -> None:
        """With a known noise variance ``alpha`` (a scalar), the head's noise is the rest.

        The posterior was conditioned on the total noise chosen above; the
        predictive noise excludes ``alpha``, as GaussianProcessRegressor's does.
        """
        alpha = getattr(self, "_alpha", 0.0)
        if np.ndim(alpha) or not alpha or not hasattr(head, "log_noise_std"):
            return
        with torch.no_grad():
            total = head.noise_var()
            known = torch.as_tensor(alpha / self._y_scale**2, dtype=total.dtype)
            rest = torch.clamp(total - known.to(total.device), min=1e-6 * total)
            head.log_noise_std.copy_(0.5 * torch.log(rest))

    def _kl_weight(self, data: TrainingData) -> np.ndarray:
        return np.ones(self.n_tasks_)

    def _training_elbo(self, Xs, Ys) -> float:
        """ELBO of the training targets in the units of y (nats)."""
        total = -_run_rows(self, "_expected_nll", "sum", Xs, Ys)
        with torch.no_grad():
            total -= float(self._inference_module.head.kl_divergence().sum())
        # The log-likelihood of standardised targets, back in units of y.
        return total - float(np.sum((~np.isnan(Ys)).sum(0) * np.log(self._y_scale)))

    def _expected_nll(self, Xs, Ys) -> float:
        """The heads' expected negative log-likelihood, summed over the labels of ``Ys``."""
        module = self._inference_module
        device = module_device(module)
        total = 0.0
        with torch.no_grad():
            for x, y in iter_chunks(Xs, Ys):
                x, y = x.to(device), y.to(device)
                lab = ~torch.isnan(y)
                nll = module.head.expected_nll(module(x), torch.where(lab, y, 0.0))
                total += float((nll * lab.T).sum())
        return total

    def _head_statistics(self, X, Y) -> LinearStats:
        """:func:`head_statistics` of the inference copy on the rows ``X``, ``Y``."""
        return head_statistics(self._inference_module, X, Y)

    # ---------------------------------------------------------- inference
    def _member_moments(self, X):
        module = self._inference()
        pred = predict_in_chunks(module.predict, self._scaled_tensor(X), module_device(module))
        mean = pred[0].T * self._y_scale + self._y_mean
        scale2 = self._y_scale**2
        return mean, pred[1].T * scale2, pred[2].T * scale2

    def _member_joint_covariance(self, X):
        module = self._inference()
        with torch.no_grad():
            phi = module(self._scaled_tensor(X).to(module_device(module)))
            cov = module.head.joint_covariance(phi).cpu().numpy()  # (T, m, m)
        return np.moveaxis(cov, 0, -1) * self._y_scale**2

    def _member_samples(self, X, n_samples, generator):
        module = self._inference()
        with torch.no_grad():
            phi = module(self._scaled_tensor(X).to(module_device(module)))
            draws = module.head.sample(phi, n_samples, generator).cpu().numpy()  # (n, T, m)
        draws = draws * self._y_scale[:, None] + self._y_mean[:, None]
        return np.transpose(draws, (2, 1, 0))

    def _set_epistemic_reference(self, X) -> None:
        """The median epistemic std per task on the training inputs (for ``ood_score``)."""
        self._set_epistemic_reference_from(_run_rows(self, "_epistemic_variance", "concatenate", X))

    def _set_epistemic_reference_from(self, epistemic: np.ndarray) -> None:
        self._epistemic_reference = np.maximum(np.median(np.sqrt(epistemic), axis=0), 1e-300)

    def _epistemic_variance(self, X) -> np.ndarray:
        """The epistemic variance ``(m, T)`` of each row of ``X`` (units of y squared)."""
        return self._moments(X)[1]

    @fill_doc
    def ood_score(self, X):
        """Out-of-distribution score of each row: how unfamiliar the model finds it.

        The epistemic standard deviation of each task divided by its median
        over the training inputs, averaged over tasks: about 1 on the
        training data, large far from it (with ``n_estimators > 1`` the
        members' disagreement counts too). A monotone score, for ranking or
        thresholding (e.g. flag rows above 3).

        Parameters
        ----------
        %(X_query)s

        Returns
        -------
        score : ndarray of shape (n_samples,)
            The score per row (dimensionless, >= 0).
        """
        X = self._validate_X_predict(X)
        epistemic = self._moments(X)[1]
        self._check_finite(epistemic)
        return np.mean(np.sqrt(epistemic) / self._epistemic_reference, axis=1)

    def _member_fit_params(self) -> dict:
        features = getattr(self, "_task_features_input", None)
        return {} if features is None else {"task_features": features}

    def _ensemble_member(self, seed: int):
        return clone(self).set_params(n_estimators=1, n_jobs=None, random_state=seed)

    def _adopt_members(self, X, members) -> None:
        check_input_frame(X)
        X = validate_data(
            self, X, reset=True, dtype=np.float64, ensure_min_samples=self._min_labelled_rows
        )
        self.n_tasks_ = members[0].n_tasks_
        self.noise_std_ = np.sqrt(np.mean([m.noise_std_**2 for m in members], axis=0))
        # One pass over the members (and twins) for both (ensembles are not data-parallel).
        self._set_epistemic_reference_from(self._scale_twins(X))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = True
        return tags


def member_seeds(random_state, n: int) -> np.ndarray:
    """``n`` member seeds drawn from ``random_state`` (the same for any ``n_jobs``)."""
    return check_random_state(random_state).randint(np.iinfo(np.int32).max, size=n)


def head_statistics(module, X: np.ndarray, Y: np.ndarray) -> LinearStats:
    """Sufficient statistics of the head inputs, accumulated over row chunks."""
    stats = None
    device = module_device(module)
    with torch.no_grad():
        for x, y in iter_chunks(X, Y):
            part = module.head.statistics(module(x.to(device)), y.to(device))
            stats = part if stats is None else stats + part
    return stats
