"""Protection against negative transfer: each task keeps the shared features only if they serve it.

After the fit, every task compares two feature maps for its Bayesian linear
head: the shared network's, and a private random-feature map of its own (the
small-data regime's bump features, :mod:`sk_mtbnn._training.random_features`,
with the task's own relevances at the lengthscale that the task's own evidence
chooses -- a single-task fit's features before any training).

* Untrained (random) shared features: only the feature map's hyper-parameters
  are shared, and the task's evidence decides (Bayesian model selection): it
  takes its private features when their log evidence beats the shared ones' by
  :data:`EVIDENCE_MARGIN` nats.
* Trained shared features, whose evidence is optimistic: the held-out labels
  decide. The task switches when they prefer the private features by two
  standard errors of the paired per-label differences of log predictive
  density (head prior and noise maximising the evidence of the training rows,
  for both maps alike).

Otherwise -- also with fewer than :data:`MIN_OWN_EVIDENCE_LABELS` labels (evidence),
:data:`MIN_TRAIN_LABELS` training or :data:`MIN_HELDOUT_LABELS` held-out ones
(held-out labels) -- it keeps sharing, so tasks that
gain from it keep the gain (docs/algorithms.rst, section "Negative transfer").
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor, nn

from .._training.full_batch import heldout_log_densities, significantly_better
from .._training.random_features import (
    LENGTHSCALES,
    draw_layout,
    float64_copy,
    head_evidence_of_features,
    place_layout,
    set_random_features,
)
from ..nn.backbone import MaskedMLP, TaskBranches
from ..nn.evidence import task_constant_alpha

#: Fewest held-out labels of a task for the comparison to be made.
MIN_HELDOUT_LABELS = 5
#: Fewest training labels of a task for its own lengthscale to be chosen.
MIN_TRAIN_LABELS = 10
#: Lengthscales tried for the private features: every other one of the small-data regime's
#: grid (8 values from 0.04 to 4, a factor 1.9 apart), which halves the cost of the check.
PRIVATE_LENGTHSCALES = LENGTHSCALES[::2]
#: Most rows (training, held-out) used by the comparison, drawn at random beyond.
MAX_ROWS = 4000
#: With random shared features, a task leaves them when its own evidence is this many nats higher.
EVIDENCE_MARGIN = 1.0
#: Fewest labels of a task for its own evidence to choose its own features' hyper-parameters.
MIN_OWN_EVIDENCE_LABELS = 30


class SharingDecision(NamedTuple):
    """Per task: whether it keeps the shared features, and what they gain it.

    ``gain`` is the mean log predictive density per held-out label of the
    shared features minus that of the private ones (nats; > 0: sharing
    helps); NaN for a task with fewer than :data:`MIN_HELDOUT_LABELS`
    held-out or :data:`MIN_TRAIN_LABELS` training labels (it shares).
    """

    shared: np.ndarray
    gain: np.ndarray


class _OneTask(nn.Module):
    """A one-task network around ``backbone`` with the interface the random features need."""

    def __init__(self, backbone: MaskedMLP, backbone_columns: Tensor) -> None:
        super().__init__()
        self.backbone = backbone
        self.register_buffer("backbone_columns", backbone_columns.clone())
        self.branches = TaskBranches(1, backbone.out_features, (), "relu")

    def forward(self, x: Tensor) -> Tensor:
        return self.backbone(x[:, self.backbone_columns])


def can_share_adaptively(module: nn.Module) -> bool:
    """Whether ``module`` has a private-feature slot whose maps the random features can fill."""
    from .._training.random_features import check_random_feature_network

    if getattr(module, "private", None) is None:
        return False
    try:
        check_random_feature_network(module)
    except ValueError:
        return False
    return True


def _private_backbone(module: nn.Module) -> MaskedMLP:
    """A fresh one-task backbone of ``module``'s shape and activation."""
    backbone = module.backbone
    widths = [layer.out_features for layer in backbone.layers]
    mlp = MaskedMLP(backbone.layers[0].in_features, widths, 1)
    mlp.activation = backbone.activation
    return mlp.to(torch.float64)


def _cap(rows: Tensor, generator: torch.Generator) -> Tensor:
    if len(rows) <= MAX_ROWS:
        return rows
    return rows[torch.randperm(len(rows), generator=generator)[:MAX_ROWS]]


def _own_layouts(own, x: Tensor, generator, task_relevance, n_tasks: int) -> list:
    """Per task, the private layout: its own relevances (when searched) on fresh ramp pairs."""
    base = draw_layout(own, x, generator)
    if task_relevance is None:
        return [base] * n_tasks
    xb = x[:, own.backbone_columns].to(torch.float64)
    return [place_layout(base.units, base.shares, xb, task_relevance[t]) for t in range(n_tasks)]


def _neighbours(grid, value: float) -> tuple[float, ...]:
    """``value``'s entry of the sorted ``grid`` and the entries next to it."""
    index = int(np.argmin(np.abs(np.log(np.asarray(grid)) - np.log(value))))
    return tuple(grid[max(index - 1, 0) : index + 2])


def _own_choices(own, layouts, x, y, alpha, lengthscales) -> tuple[list[float], Tensor]:
    """Per task, the lengthscale whose private features maximise its own evidence, and that.

    Tasks that share a layout are scored together (one feature map per
    candidate). ``alpha`` is a float or an ``(N, T)`` tensor (``(1, T)``: one row for all).
    """
    n_tasks = y.shape[1]
    best = torch.full((n_tasks,), -torch.inf, dtype=torch.float64)
    choice = [lengthscales[0]] * n_tasks
    alpha = torch.as_tensor(alpha, dtype=torch.float64)
    for layout in {id(layout): layout for layout in layouts}.values():
        tasks = [t for t in range(n_tasks) if layouts[t] is layout]
        task_alpha = alpha[:, tasks] if alpha.ndim == 2 else alpha
        for lengthscale in lengthscales:
            set_random_features(own, layout, lengthscale)
            phi = own(x).expand(len(tasks), -1, -1)
            log_evidence = head_evidence_of_features(phi, y[:, tasks], task_alpha).log_evidence
            for k, t in enumerate(tasks):
                if log_evidence[k] > best[t]:
                    best[t], choice[t] = log_evidence[k], lengthscale
    return choice, best


def choose_private_tasks(
    module: nn.Module,
    X: np.ndarray,
    Y: np.ndarray,
    train_rows,
    valid_rows,
    *,
    seed: int,
    alpha: float | np.ndarray = 0.0,
    task_relevance: Tensor | None = None,
) -> SharingDecision:
    """Decide, per task, between shared and private features; write the private maps.

    Parameters
    ----------
    module : MultiTaskNetwork
        The trained network, with a private-feature slot
        (:func:`can_share_adaptively`); the private maps of the tasks that
        leave the shared features are written into it.
    X : ndarray of shape (N, n_features)
        Standardised inputs.
    Y : ndarray of shape (N, T)
        Standardised targets, NaN where missing.
    train_rows, valid_rows : array-like of int
        The rows the heads are fitted on and the held-out rows that judge.
    seed : int
        Seeds the private random features.
    alpha : float or array-like of shape (N, T), default=0.0
        Known noise variance (standardised units), the same on every row of
        each task (features are trained only then).
    task_relevance : Tensor of shape (T, n_backbone_columns), default=None
        Each task's own relevances, for its private features (None: isotropic).

    Returns
    -------
    decision : SharingDecision
    """
    constant = task_constant_alpha(alpha)
    if constant is None:
        raise ValueError("The held-out sharing decision needs the same alpha on every row.")
    row = constant if constant.ndim == 0 else constant[None, :]  # (1, T): one row for all
    generator = torch.Generator().manual_seed(int(seed))
    x = torch.as_tensor(np.asarray(X), dtype=torch.float64)
    y = torch.as_tensor(np.asarray(Y), dtype=torch.float64)
    train = _cap(torch.as_tensor(np.asarray(train_rows), dtype=torch.long), generator)
    valid = _cap(torch.as_tensor(np.asarray(valid_rows), dtype=torch.long), generator)
    n_tasks = y.shape[1]
    shared = np.ones(n_tasks, dtype=bool)
    gain = np.full(n_tasks, np.nan)
    labelled = ~torch.isnan(y)
    n_valid = labelled[valid].sum(0)
    n_train = labelled[train].sum(0)
    candidates = (n_train >= MIN_TRAIN_LABELS) & (n_valid >= MIN_HELDOUT_LABELS)
    if not bool(candidates.any()):
        return SharingDecision(shared, gain)
    with torch.no_grad():
        work = float64_copy(module)
        densities = heldout_log_densities(work, x, y, train, valid, constant)
        own = _OneTask(_private_backbone(module), module.backbone_columns)
        layouts = _own_layouts(own, x[train], generator, task_relevance, n_tasks)
        lengthscales, _ = _own_choices(own, layouts, x[train], y[train], row, PRIVATE_LENGTHSCALES)
        candidate = float64_copy(module)
        for t in range(n_tasks):
            set_random_features(own, layouts[t], lengthscales[t])
            candidate.private.set_task(t, own.backbone)
        private = heldout_log_densities(candidate, x, y, train, valid, constant)
    per_task = torch.split(densities, n_valid.tolist())
    per_task_private = torch.split(private, n_valid.tolist())
    for t in np.flatnonzero(candidates.numpy()):
        gain[t] = float((per_task[t] - per_task_private[t]).mean())
        if significantly_better(per_task_private[t], per_task[t]):
            shared[t] = False
            set_random_features(own, layouts[t], lengthscales[t])
            module.private.set_task(int(t), own.backbone)
    return SharingDecision(shared, gain)


def choose_private_tasks_by_evidence(
    module: nn.Module,
    X: np.ndarray,
    Y: np.ndarray,
    shared_log_evidence: Tensor,
    *,
    shared_lengthscale: float,
    seed: int,
    alpha: float | np.ndarray = 0.0,
    task_relevance: Tensor | None = None,
) -> SharingDecision:
    """The decision for untrained (random) shared features: each task's own evidence judges.

    With random features nothing is learnt from the other tasks but the
    feature map's hyper-parameters (lengthscale and relevances), so the
    choice between them and a task's own is Bayesian model selection: the
    task takes private random features at its own lengthscale and
    relevances -- a single-task fit's features -- when their log evidence
    on all its labels beats that of the shared ones by
    :data:`EVIDENCE_MARGIN` nats. Both are type-II maximum likelihood over
    the same grids, and neither was fitted to the labels beyond that.
    Tasks with fewer than :data:`MIN_OWN_EVIDENCE_LABELS` labels keep sharing:
    measured on three related tasks in 6 columns, a task with 12 labels beside
    two with 90 preferred its own relevances and lengthscale by 1-4 nats of
    evidence in three ensemble members of five, and their test RMSE on it rose
    from 0.53-0.85 to 0.98-1.03 (the hyper-parameters overfit its labels).

    Parameters
    ----------
    module : MultiTaskNetwork
        The fitted network, with a private-feature slot; written in place.
    X : ndarray of shape (N, n_features)
        Standardised inputs.
    Y : ndarray of shape (N, T)
        Standardised targets, NaN where missing.
    shared_log_evidence : Tensor of shape (T,)
        Each task's log evidence on the shared features.
    shared_lengthscale : float
        The shared features' lengthscale (a value of the grid).
    seed : int
        Seeds the private random features.
    alpha : float or ndarray of shape (N, T), default=0.0
        Known noise variance (standardised units).
    task_relevance : Tensor of shape (T, n_backbone_columns), default=None
        Each task's own relevances (None: isotropic).

    Returns
    -------
    decision : SharingDecision
        ``gain`` is the shared minus the private log evidence per label.
    """
    x = torch.as_tensor(np.asarray(X), dtype=torch.float64)
    y = torch.as_tensor(np.asarray(Y), dtype=torch.float64)
    n_tasks = y.shape[1]
    shared = np.ones(n_tasks, dtype=bool)
    gain = np.full(n_tasks, np.nan)
    n_labels = (~torch.isnan(y)).sum(0)
    candidates = np.flatnonzero((n_labels >= MIN_OWN_EVIDENCE_LABELS).numpy())
    if n_tasks < 2 or len(candidates) == 0:
        return SharingDecision(shared, gain)
    generator = torch.Generator().manual_seed(int(seed))
    grid = LENGTHSCALES
    if task_relevance is not None:
        # The relevances are expressed at the shared lengthscale, where the task's own
        # search ended: its optimum is there or at a neighbour of the grid.
        grid = _neighbours(LENGTHSCALES, shared_lengthscale)
    with torch.no_grad():
        own = _OneTask(_private_backbone(module), module.backbone_columns)
        layouts = _own_layouts(own, x, generator, task_relevance, n_tasks)
        lengthscales, own_evidence = _own_choices(own, layouts, x, y, alpha, grid)
    shared_log_evidence = torch.as_tensor(shared_log_evidence, dtype=torch.float64)
    for t in candidates:
        difference = float(shared_log_evidence[t] - own_evidence[t])
        gain[t] = difference / float(n_labels[t])
        if difference < -EVIDENCE_MARGIN:
            shared[t] = False
            set_random_features(own, layouts[t], lengthscales[t])
            module.private.set_task(int(t), own.backbone)
    return SharingDecision(shared, gain)


class AdaptiveSharingMixin:
    """``sharing="auto"`` of SparseMultiTaskBNNRegressor, in both regimes.

    Sets ``shared_tasks_`` and ``sharing_gain_`` (see :class:`SharingDecision`).
    """

    def _private_slot(self, task_columns) -> bool:
        """Whether the network gets a private-feature slot (``sharing="auto"`` can use it)."""
        from ._base import layer_sizes

        return (
            self.sharing == "auto"
            and getattr(self, "head", "gaussian") == "gaussian"
            and not layer_sizes(getattr(self, "branch_layer_sizes", ()))
            and not any(task_columns or [])
            and getattr(self, "random_features", None) is None
        )

    def _record_sharing(self, decision: SharingDecision | None) -> None:
        if decision is None:
            decision = SharingDecision(
                np.ones(self.n_tasks_, dtype=bool), np.full(self.n_tasks_, np.nan)
            )
        self.shared_tasks_, self.sharing_gain_ = decision

    def _finalise(self, data) -> None:
        """Network regime: decide on the validation rows, before the heads are refined."""
        module = self.net_.module_
        decision = None
        refines = getattr(self, "refine_head", True)
        # A head prior relates the heads on the shared features: it is the sharing there
        # (measured: private features for two of six tasks broke its recovered groups).
        related = getattr(self, "head_prior", None) is not None
        if data.valid is not None and refines and not related and can_share_adaptively(module):
            X = np.concatenate([data.train[0], data.valid[0]])
            Y = np.concatenate([data.train[1], data.valid[1]])
            n_train = len(data.train[0])
            decision = choose_private_tasks(
                module, X, Y, np.arange(n_train), np.arange(n_train, len(X)), seed=data.seed
            )
            if not decision.shared.all():
                from ._torch_utils import inference_copy

                self._inference_module = inference_copy(module, self.device)
                self._sync_inference_stamp()
        self._record_sharing(decision)
        super()._finalise(data)

    def _fit_by_evidence(self, module, data):
        """Evidence regime: decide by evidence (random features) or on the held-out rows."""
        fit = super()._fit_by_evidence(module, data)
        module = self.net_.module_
        if not can_share_adaptively(module):
            self._record_sharing(None)
            return fit
        alpha = self._standardised_alpha(len(data.X))
        if fit.n_steps == 0:
            decision = choose_private_tasks_by_evidence(
                module,
                data.X,
                data.Y,
                fit.criterion,
                shared_lengthscale=fit.lengthscale,
                seed=data.seed,
                alpha=alpha,
                task_relevance=fit.choice.task_relevance,
            )
        else:
            train_rows, valid_rows = fit.split  # the rows that judged the feature training
            decision = choose_private_tasks(
                module,
                data.X,
                data.Y,
                train_rows,
                valid_rows,
                seed=data.seed,
                alpha=alpha,
                task_relevance=fit.choice.task_relevance,
            )
        self._record_sharing(decision)
        if not decision.shared.all():
            self._condition_private_heads(data, ~decision.shared, alpha)
        return fit

    def _condition_private_heads(self, data, private: np.ndarray, alpha) -> None:
        """The evidence regime's head posteriors again, private tasks with their own evidence."""
        from .._training.full_batch import condition_head
        from .._training.random_features import features64, head_evidence_of_features
        from ..nn.blr import linear_stats
        from ..nn.evidence import log_marginal_likelihood
        from ..nn.evidence_rows import log_marginal_likelihood_rows
        from ._torch_utils import inference_copy

        module = self.net_.module_
        x = torch.as_tensor(data.X, dtype=torch.float64)
        Y = torch.as_tensor(data.Y, dtype=torch.float64)
        alpha_t = torch.as_tensor(np.asarray(alpha), dtype=torch.float64)
        phi = features64(module, x)
        own = head_evidence_of_features(phi, Y, alpha_t)
        mask = torch.as_tensor(private)
        prior = torch.where(mask, own.prior_var, torch.as_tensor(self._evidence_prior_var))
        noise = torch.as_tensor((self.noise_std_ / self._y_scale) ** 2)
        noise = torch.where(mask, own.noise_var, noise)
        condition_head(module.head, phi, Y, prior, noise, alpha_t)
        self._inference_module = inference_copy(module, self.device)
        condition_head(self._inference_module.head, phi, Y, prior, noise, alpha_t)
        self._sync_inference_stamp()
        self.noise_std_ = np.sqrt(noise.numpy()) * self._y_scale
        self._evidence_prior_var = prior.numpy()
        if alpha_t.ndim == 0:
            lml = log_marginal_likelihood(linear_stats(phi, Y), prior, noise + alpha_t)
        else:
            lml = log_marginal_likelihood_rows(phi, Y, prior, noise, alpha_t)
        labels = (~np.isnan(data.Y)).sum(0)
        lml = float((lml.double().numpy() - labels * np.log(self._y_scale)).sum())
        self.log_marginal_likelihood_value_ = self.elbo_ = lml
        self._set_epistemic_reference(data.X * self._x_scale + self._x_mean)
