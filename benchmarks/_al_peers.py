"""Peer query strategies for ``benchmarks/active_learning.py``: GP, scikit-activeml, bmdal-reg.

Every ``pick_*`` function returns ``n`` distinct positions into the candidate
rows ``cand`` (indices of the pool rows not yet queried). ``ctx`` is the
round's :class:`Round`: the pool, which rows are queried, the labels bought
so far, the fitted evaluation model and the scored tasks.

* scikit-activeml (``skactiveml``) strategies are single-output. They see the
  pool inputs standardised by a ``StandardScaler`` fitted on the pool (a
  competent user's preprocessing; the raw-unit problem would otherwise
  measure their missing scaling, not their criterion) and targets
  standardised per task. With several scored tasks, GSy and iGS split each
  batch evenly among the tasks (task ``t`` chooses its share from its own
  labels, among the rows the earlier tasks left), and EMC and QBC rank the
  candidates by the sum over tasks of their per-task utilities (both are
  top-k rankings). GSy and iGS compare the outputs predicted by the round's
  evaluation model; EMC uses its linear model (ridge) and bootstrap copies of
  it (Cai et al. 2013), QBC a committee of ten posterior draws of a GP
  (``sample_predictions_method_name="sample_y"``, as its docstring suggests).
* bmdal-reg selects with its own NN (``bmdal_reg.nn_interface.NNRegressor``,
  its defaults except ``valid_fraction=0``: below 100 labels a 10% split
  leaves a handful of validation rows and its early stopping then keeps a
  nearly untrained network) through ``bmdal_reg.bmdal.algorithms.select_batch``
  with the configurations of the paper (Holzmueller et al., JMLR 2023):
  LCMD-TP, BAIT-F-P and MaxDet-P on sketched gradient features. Its NN has no
  missing labels: a missing (standardised) label is imputed with 0, the
  task's mean.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from typing import NamedTuple

import numpy as np
from sklearn.exceptions import ConvergenceWarning

GP_RESTARTS = 1


class Round(NamedTuple):
    """The state of one active-learning round of one strategy."""

    X_pool: np.ndarray  # (m, d) raw pool inputs
    Z_pool: np.ndarray  # (m, d) pool inputs standardised over the pool
    Y_pool: np.ndarray  # (m, T) labels a query reveals (NaN: never available)
    queried: np.ndarray  # (m,) bool, rows bought so far
    tasks: list  # scored tasks
    model: object  # the round's fitted evaluation model (or the GP)
    seed: int
    training: tuple  # (X, Y) the evaluation model was fitted on


def gp_kernel(n_features):
    from sklearn.gaussian_process.kernels import RBF, WhiteKernel
    from sklearn.gaussian_process.kernels import ConstantKernel as C

    return C(1.0) * RBF(np.ones(n_features), (1e-2, 1e3)) + WhiteKernel(1e-2, (1e-6, 1e1))


def make_gp(n_features, restarts=GP_RESTARTS, seed=0):
    """``GaussianProcessRegressor``, ARD RBF + white noise, ``normalize_y``."""
    from sklearn.gaussian_process import GaussianProcessRegressor

    return GaussianProcessRegressor(
        gp_kernel(n_features), normalize_y=True, n_restarts_optimizer=restarts, random_state=seed
    )


class PerTaskGP:
    """One GP per task on its labelled rows, inputs standardised over those rows."""

    def __init__(self, seed=0):
        self.seed = seed

    def fit(self, X, Y):
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        self.models_ = []
        for t in range(Y.shape[1]):
            rows = ~np.isnan(Y[:, t])
            gp = make_pipeline(StandardScaler(), make_gp(X.shape[1], seed=self.seed))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                self.models_.append(gp.fit(X[rows], Y[rows, t]))
        return self

    def predict(self, X, return_std=False):
        out = [m.predict(X, return_std=True) for m in self.models_]
        mean = np.column_stack([a for a, _ in out])
        std = np.column_stack([b for _, b in out])
        return (mean, std) if return_std else mean


def pick_gp_max_std(ctx: Round, cand, n, gp: PerTaskGP, spread):
    """modAL's ``max_std_sampling`` rule (top-n standard deviations); several
    tasks: the sum of the tasks' standard deviations relative to their label
    spread."""
    _, std = gp.predict(ctx.X_pool[cand], return_std=True)
    return np.argsort(-(std / spread).sum(1), kind="stable")[:n]


# ----------------------------------------------------------------- scikit-activeml
def _standardised_labels(ctx: Round):
    """Bought labels of the scored tasks, standardised per task (NaN: unlabelled)."""
    Y = np.where(ctx.queried[:, None], ctx.Y_pool[:, ctx.tasks], np.nan)
    mean, std = np.nanmean(Y, 0), np.nanstd(Y, 0)
    return (Y - mean) / np.where(std > 0, std, 1.0), mean, std


def _model_view(ctx: Round, task_position, mean, std):
    """The evaluation model's prediction of one task, as a fitted skactiveml regressor."""
    from skactiveml.base import SkactivemlRegressor

    t = ctx.tasks[task_position]
    scale = np.std(ctx.X_pool, 0)
    scale = np.where(scale > 0, scale, 1.0)
    centre = np.mean(ctx.X_pool, 0)

    class FittedView(SkactivemlRegressor):
        def fit(self, X, y, sample_weight=None):
            return self

        def predict(self, Z):
            pred = np.asarray(ctx.model.predict(Z * scale + centre)).reshape(len(Z), -1)[:, t]
            return (pred - mean[task_position]) / (std[task_position] or 1.0)

    return FittedView(random_state=ctx.seed)


def pick_skal(name, ctx: Round, cand, n):
    """scikit-activeml's GSx, GSy, iGS (its GSi), EMC or QBC, multi-task as described above."""
    from skactiveml.pool import (
        ExpectedModelChangeMaximization,
        GreedySamplingTarget,
        GreedySamplingX,
        QueryByCommittee,
    )
    from skactiveml.regressor import SklearnRegressor
    from sklearn.linear_model import Ridge

    Z = ctx.Z_pool
    quiet = warnings.catch_warnings()
    with quiet:
        warnings.simplefilter("ignore")
        if name == "GSx":
            y = np.where(ctx.queried, 0.0, np.nan)
            idx = GreedySamplingX(random_state=ctx.seed).query(Z, y, candidates=cand, batch_size=n)
            return _positions(cand, idx)
        Y, mean, std = _standardised_labels(ctx)
        if name in ("GSy", "iGS"):
            method = "GSy" if name == "GSy" else "GSi"
            shares = np.diff(np.linspace(0, n, len(ctx.tasks) + 1).round().astype(int))
            left, picked = list(cand), []
            for k, share in enumerate(shares):
                if share == 0:
                    continue
                # n_GSx_samples=0: the labels already cover the GSx warm-up.
                idx = GreedySamplingTarget(
                    method=method, n_GSx_samples=0, random_state=ctx.seed
                ).query(
                    Z,
                    Y[:, k],
                    _model_view(ctx, k, mean, std),
                    fit_reg=False,
                    candidates=np.array(left),
                    batch_size=int(share),
                )
                picked += idx.tolist()
                left = [i for i in left if i not in set(idx.tolist())]
            return _positions(cand, np.array(picked))
        total = np.zeros(len(Z))
        for k in range(len(ctx.tasks)):
            if name == "EMC":  # Cai et al. (2013): a linear model and bootstrap copies of it
                qs = ExpectedModelChangeMaximization(random_state=ctx.seed)
                reg = SklearnRegressor(Ridge(alpha=1e-2), random_state=ctx.seed)
            else:  # QBC: the committee is ten draws of a GP posterior (its documented mode)
                qs = QueryByCommittee(
                    sample_predictions_method_name="sample_y",
                    sample_predictions_dict={"n_samples": 10, "random_state": ctx.seed},
                    random_state=ctx.seed,
                )
                reg = SklearnRegressor(make_gp(Z.shape[1], restarts=0, seed=ctx.seed))
            _, u = qs.query(Z, Y[:, k], reg, candidates=cand, batch_size=1, return_utilities=True)
            total += np.nan_to_num(u[0], nan=0.0)
        return np.argsort(-total[cand], kind="stable")[:n]


def _positions(cand, pool_indices):
    where = {int(c): i for i, c in enumerate(cand)}
    return np.array([where[int(i)] for i in pool_indices], dtype=int)


# ----------------------------------------------------------------- bmdal-reg
BMDAL_CONFIGS = {
    "LCMD": dict(
        selection_method="lcmd",
        sel_with_train=True,
        base_kernel="grad",
        kernel_transforms=[("rp", [512])],
    ),
    "BAIT": dict(
        selection_method="bait",
        overselection_factor=1.0,
        base_kernel="grad",
        kernel_transforms=[("rp", [512]), ("train", [0.1, None])],
        bait_sigma=0.1,
        allow_float64=True,
    ),
    "MaxDet": dict(
        selection_method="maxdet",
        sel_with_train=False,
        base_kernel="grad",
        kernel_transforms=[("rp", [512]), ("train", [0.1, None])],
        maxdet_sigma=0.1,
        allow_float64=True,
    ),
}


def bmdal_available() -> bool:
    try:
        import bmdal_reg.bmdal.algorithms  # noqa: F401
    except ImportError:
        return False
    # bmdal_reg 3.0.2's training loop uses ``np.Inf``, removed in numpy 2.0.
    if not hasattr(np, "Inf"):
        setattr(np, "Inf", np.inf)  # noqa: B010
    return True


def fit_bmdal_nn(ctx: Round):
    """bmdal-reg's own NN on the bought rows of the scored tasks (standardised)."""
    from bmdal_reg.nn_interface import NNRegressor

    Y, mean, std = _standardised_labels(ctx)
    rows = np.flatnonzero(ctx.queried & ~np.isnan(Y).all(1))
    nn = NNRegressor(seed=ctx.seed, device="cpu", valid_fraction=0.0)
    with contextlib.redirect_stdout(io.StringIO()):  # it prints a dot per epoch
        nn.fit(ctx.X_pool[rows].astype(np.float32), np.nan_to_num(Y[rows]).astype(np.float32))
    return nn, rows, mean, std


def pick_bmdal(name, ctx: Round, cand, n):
    import torch
    from bmdal_reg.bmdal.algorithms import select_batch
    from bmdal_reg.bmdal.feature_data import TensorFeatureData

    nn, rows, _, _ = fit_bmdal_nn(ctx)

    def inputs(X):  # NNRegressor's own preprocessing (standardise, soft-clip)
        X = torch.as_tensor(X, dtype=torch.float32)
        return 5 * torch.tanh(0.2 * (X - nn.means_) / (nn.stds_ + 1e-30))

    Y, _, _ = _standardised_labels(ctx)
    data = {
        "train": TensorFeatureData(inputs(ctx.X_pool[rows])),
        "pool": TensorFeatureData(inputs(ctx.X_pool[cand])),
    }
    y_train = torch.as_tensor(np.nan_to_num(Y[rows]), dtype=torch.float32)
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        idx, _ = select_batch(
            batch_size=n,
            models=[nn.model_.get_single_model(0)],
            data=data,
            y_train=y_train,
            **BMDAL_CONFIGS[name],
        )
    idx = np.asarray(idx.cpu(), dtype=int)
    if len(set(idx.tolist())) < n:  # never happens with these methods; keep n distinct rows
        rest = [i for i in range(len(cand)) if i not in set(idx.tolist())]
        idx = np.concatenate([np.unique(idx), rest])[:n]
    return idx
