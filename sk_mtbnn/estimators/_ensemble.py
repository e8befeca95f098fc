"""Deep ensembles of the regressors: M members, one equal-weight mixture.

Lakshminarayanan, Pritzel & Blundell, "Simple and Scalable Predictive
Uncertainty Estimation using Deep Ensembles", NeurIPS 2017. With member
moments ``(mu_m, epi_m, ale_m)`` the mixture has (law of total variance)

* mean ``mu = (1/M) sum_m mu_m``;
* epistemic variance ``(1/M) sum_m epi_m + (1/M) sum_m (mu_m - mu)^2`` (the
  spread between members is uncertainty about the model);
* aleatoric variance ``(1/M) sum_m ale_m``;
* joint covariance ``(1/M) sum_m [C_m + (mu_m - mu)(mu_m - mu)^T]``;
* samples: a member drawn uniformly per sample, then a joint sample of it.

Members are independently initialised fits of the same estimator with
``n_estimators=1`` and seeds drawn from ``random_state``, trained through
:class:`joblib.Parallel` (``n_jobs``), so any joblib backend -- loky here, Dask
or Ray on a cluster -- spreads them, and the result does not depend on
``n_jobs``. In the evidence regime the first member is fitted alone first: the
others take its input relevances instead of searching their own (see "One
relevance search per ensemble" in ``docs/algorithms.rst``).

In the small-data (evidence) regime, a member whose random features were then
trained gets an *untrained twin* (``untrained_twins_``): the same member fitted
with the same seed on its random features alone. Training fits the features to
rows of the training distribution, and away from those rows they can
extrapolate with confidence (measured: with 3 of enb's 12 building shapes held
out, the 95% band covered 53% of their rows); the twins' local features keep
the uncertainty that distance from the data implies. The twins do not enter
the mixture's mean. With ``R`` the mixture of the random-feature members (each
trained member replaced by its twin), ``E_R`` its epistemic variance and ``c``
per task the median of ``E / E_R`` over the training inputs (at most 1), the
ensemble's epistemic variance is ``max(E, c E_R)``: the mixture's own ``E``,
floored by ``R``'s grown away from the data as much as ``R`` says, from the
level ``E`` has at the data. Jointly, with ``C_R`` the epistemic covariance of
``R`` and ``r = max(0, c E_R - E) / (c E_R)``, the covariance gains
``diag(sqrt r) c C_R diag(sqrt r)`` (positive semi-definite, with that
diagonal) and every sample gains an independent draw of it. See "Untrained twins" in
``docs/algorithms.rst``.
"""

from __future__ import annotations

import numpy as np
import torch
from joblib import Parallel, delayed
from joblib.parallel import get_active_backend

from ..nn.heads import Predictive, mixture_moments


def _fit_member(member, X, y, fit_params):
    return member.fit(X, y, **fit_params)


def mixture_of(parts, weights=None) -> tuple:
    """Mean, epistemic and aleatoric variance (numpy) of the mixture of ``parts``.

    :func:`sk_mtbnn.nn.heads.mixture_moments` on ``(mean, epistemic, aleatoric)``
    arrays (shared, not copied, with the tensors), equal weights by default.
    """
    tensors = [Predictive(*(torch.as_tensor(a) for a in p)) for p in parts]
    return tuple(t.numpy() for t in mixture_moments(tensors, weights))


def weighted_mixture(own, other, weight) -> tuple:
    """Moments of the per-task mixture ``(1 - w) own + w other``; ``weight`` ``(T,)``."""
    w = np.asarray(weight, dtype=np.float64)
    return mixture_of([own, other], [1.0 - w, w])


def _between(means) -> np.ndarray:
    """``(1/M) sum_m (mu_m - mu)(mu_m - mu)^T`` per task, ``(m, m, T)``."""
    means = np.stack(means)
    dev = means - means.mean(0)
    return np.einsum("kit,kjt->ijt", dev, dev) / len(means)


def _diag(variances: np.ndarray) -> np.ndarray:
    """``(m, T)`` variances as diagonal ``(m, m, T)`` matrices."""
    return np.eye(variances.shape[0])[:, :, None] * variances[None, :, :]


def _with_twins(values: list, twins: list, of_twin) -> list:
    """``values`` with the entry of every member that has a twin replaced by ``of_twin(twin)``."""
    return [v if t is None else of_twin(t) for v, t in zip(values, twins)]


def _psd_root(cov: np.ndarray) -> np.ndarray:
    """``L`` ``(T, m, m)`` with ``L[t] L[t]^T = cov[..., t]`` (round-off negatives cut)."""
    values, vectors = np.linalg.eigh(np.moveaxis(cov, -1, 0))
    return vectors * np.sqrt(np.clip(values, 0.0, None))[:, None, :]


def _trained_random_features(member) -> bool:
    """Whether ``member`` is an evidence-regime fit whose random features were trained."""
    return getattr(member, "regime_", None) == "evidence" and member.n_training_steps_ > 0


class EnsembleMixin:
    """Mixture predictions over ``estimators_`` when ``n_estimators > 1``.

    The host implements ``_member_moments``, ``_member_joint_covariance`` and
    ``_member_samples`` for one network, ``_ensemble_member(seed)`` (an unfitted
    member) and ``_adopt_members(X, members)`` (the ensemble's own fitted
    attributes).
    """

    def _fit_ensemble(self, X, y, n_members: int) -> None:
        """Fit the members through joblib; ``verbose >= 2`` draws one bar over them."""
        from .._training.callbacks import progress_bar
        from ._regression import member_seeds

        seeds = member_seeds(self.random_state, n_members)
        members = [self._ensemble_member(int(s)) for s in seeds]
        # A reference (_reference.py) hands "untrained" on to its members.
        untrained = vars(self).get("_feature_choice", {}).get("untrained", False)
        for member in members:
            # Filled by the evidence regime's fit (which reads "untrained").
            member._feature_choice = {"untrained": True} if untrained else {}
        verbose = int(self.verbose)
        if verbose >= 2:
            # One bar over the members; from verbose=3 on, each member's own bar too.
            for member in members:
                member.set_params(verbose=0 if verbose == 2 else verbose - 1)
        fit_params = self._member_fit_params()
        # Results come back in order as they finish (lazily when sequential), so the
        # bar follows the fits; backends without generators (multiprocessing, Ray)
        # return them all at once.
        backend, _ = get_active_backend()
        return_as = "generator" if backend.supports_return_generator else "list"
        parallel = Parallel(n_jobs=self.n_jobs, return_as=return_as)
        # In the evidence regime the first member searches the inputs' relevances
        # and the others take them (an eighth of the evidence evaluations each).
        first = getattr(self, "_evidence_likely", lambda X, y: False)(X, y)
        with progress_bar(n_members, "ensemble", "member", verbose >= 2) as bar:
            fitted = []
            if first:
                fitted = list(parallel([delayed(_fit_member)(members[0], X, y, fit_params)]))
                bar.update(1)
                found = vars(fitted[0]).get("_feature_choice", {}).get("choice")
                for member in members[1:]:
                    member._feature_choice["relevance_of"] = found
            rest = parallel(
                delayed(_fit_member)(m, X, y, fit_params) for m in members[int(first) :]
            )
            for member in rest:
                fitted.append(member)
                bar.update(1)
        members = fitted
        self.estimators_ = members
        self.untrained_twins_ = self._untrained_twins(members, seeds, X, y, fit_params)
        self._adopt_members(X, self.estimators_)

    def _untrained_twins(self, members, seeds, X, y, fit_params) -> list:
        """Per member, its untrained twin if its random features were trained, else None.

        A twin is fitted with its member's seed on the random features the
        member chose (no second lengthscale search) and is not trained.
        """
        choices = [vars(m).pop("_feature_choice", {}).get("choice") for m in members]
        trained = [k for k, m in enumerate(members) if _trained_random_features(m)]
        twins = []
        for k in trained:
            twin = self._ensemble_member(int(seeds[k])).set_params(verbose=0)
            twin._feature_choice = {"choice": choices[k]}  # read by the evidence regime
            twins.append(twin)
        parallel = Parallel(n_jobs=self.n_jobs)
        fitted = parallel(delayed(_fit_member)(t, X, y, fit_params) for t in twins)
        out = [None] * len(members)
        for k, twin in zip(trained, fitted):
            del twin._feature_choice  # a refit of the twin searches and trains anew
            out[k] = twin
        return out

    @property
    def _members(self) -> list:
        return getattr(self, "estimators_", None) or [self]

    def _twins(self) -> list | None:
        """``untrained_twins_`` when some member has a twin, else None."""
        twins = getattr(self, "untrained_twins_", None)
        return twins if twins is not None and any(t is not None for t in twins) else None

    def _reference(self):
        """``reference_`` (mixed in with ``reference_weight_``) as one model, or None."""
        from ._reference import as_model

        reference = vars(self).get("reference_")
        return None if reference is None else as_model(reference)

    def _moments(self, X):
        """Mean, epistemic and aleatoric variance ``(m, T)`` of the mixture."""
        if "estimators_" not in vars(self):
            own, reference = self._member_moments(X), self._reference()
            if reference is None:
                return own
            return weighted_mixture(own, reference._moments(X), self.reference_weight_)
        (mean, epistemic, aleatoric), floor = self._mixture_and_floor(X)
        if floor is not None:
            epistemic = np.maximum(epistemic, self.twin_scale_ * floor)
        return mean, epistemic, aleatoric

    def _mixture_and_floor(self, X):
        """The members' mixture moments and ``E_R`` (None without twins), unscaled."""
        parts = [m._member_moments(X) for m in self.estimators_]
        twins = self._twins()
        if twins is None:
            return mixture_of(parts), None
        return mixture_of(parts), mixture_of(
            _with_twins(parts, twins, lambda t: t._member_moments(X))
        )[1]

    def _scale_twins(self, X) -> np.ndarray:
        """Set ``twin_scale_`` from the rows ``X``; return the ensemble's epistemic variance there.

        ``twin_scale_`` is, per task, the median of ``E / E_R`` on ``X``, at most 1.
        """
        (_, own, _), floor = self._mixture_and_floor(X)
        if floor is None:
            self.twin_scale_ = np.ones(self.n_tasks_)
            return own
        ratio = own / np.maximum(floor, np.finfo(float).tiny)
        self.twin_scale_ = np.minimum(np.median(ratio, axis=0), 1.0)
        return np.maximum(own, self.twin_scale_ * floor)

    def _joint_covariance(self, X):
        """Joint predictive covariance ``(m, m, T)`` of the mixture."""
        if "estimators_" not in vars(self):
            own, reference = self._member_joint_covariance(X), self._reference()
            if reference is None:
                return own
            w = self.reference_weight_
            gap = self._member_moments(X)[0] - reference._moments(X)[0]
            between = w * (1 - w) * np.einsum("it,jt->ijt", gap, gap)
            return (1 - w) * own + w * reference._joint_covariance(X) + between
        parts = [m._member_moments(X) for m in self.estimators_]
        covs = [m._member_joint_covariance(X) for m in self.estimators_]
        cov = np.mean(covs, axis=0) + _between([p[0] for p in parts])
        twins = self._twins()
        if twins is not None:
            scale, floor_cov = self._floor(X, parts, covs, twins)
            cov = cov + scale[:, None, :] * floor_cov * scale[None, :, :]
        return cov

    def _floor(self, X, parts, covs, twins):
        """``sqrt(r)`` ``(m, T)`` and the scaled twins' epistemic covariance ``c C_R``."""
        floor_parts = _with_twins(parts, twins, lambda t: t._member_moments(X))
        floor_covs = _with_twins(covs, twins, lambda t: t._member_joint_covariance(X))
        epistemic = [c - _diag(p[2]) for c, p in zip(floor_covs, floor_parts)]
        floor_cov = np.mean(epistemic, axis=0) + _between([p[0] for p in floor_parts])
        floor_cov = floor_cov * self.twin_scale_
        floor = np.einsum("iit->it", floor_cov)
        own = mixture_of(parts)[1]
        share = np.where(floor > 0, (floor - own) / np.where(floor > 0, floor, 1.0), 0.0)
        return np.sqrt(np.clip(share, 0.0, 1.0)), floor_cov

    def _samples(self, X, n_samples: int, generator: torch.Generator):
        """Joint samples ``(m, T, n_samples)``: a uniformly drawn member per sample."""
        if "estimators_" not in vars(self):
            own, reference = self._member_samples(X, n_samples, generator), self._reference()
            if reference is None:
                return own
            # Per task and sample, the reference's draw with probability reference_weight_.
            other = reference._samples(X, n_samples, generator)
            pick = torch.rand(own.shape[1], n_samples, generator=generator).double().numpy()
            return np.where(pick < self.reference_weight_[:, None], other, own)
        members = self.estimators_
        which = torch.randint(len(members), (n_samples,), generator=generator).numpy()
        out = None
        for k, member in enumerate(members):
            columns = np.flatnonzero(which == k)
            if len(columns) == 0:
                continue
            draws = member._member_samples(X, len(columns), generator)
            if out is None:
                out = np.empty((*draws.shape[:2], n_samples))
            out[..., columns] = draws
        twins = self._twins()
        if twins is not None:
            parts = [m._member_moments(X) for m in members]
            covs = [m._member_joint_covariance(X) for m in members]
            scale, floor_cov = self._floor(X, parts, covs, twins)
            z = torch.randn(floor_cov.shape[0], floor_cov.shape[2], n_samples, generator=generator)
            root = _psd_root(floor_cov)  # (T, m, m)
            extra = np.einsum("tij,jtn->itn", root, z.double().numpy())
            out = out + scale[:, :, None] * extra
        return out

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "net_") or hasattr(self, "estimators_")
