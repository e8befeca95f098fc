"""Protection against negative transfer for the classifier: each task keeps the shared features
only if they serve it.

The classification twin of :mod:`._task_sharing`. After training, every
task's held-out labels judge two predictors: its trained head on the shared
features, and a private copy of the whole network (backbone and head)
fine-tuned on that task's training labels alone, from the shared weights --
the network a single-task fit would reach from the shared start. Each
predictor's head gets its Laplace posterior given the training rows. A task
switches to its private network when the held-out log predictive
probabilities of its labels (probit approximation) prefer it by two standard
errors of the paired per-label differences; otherwise -- also with fewer than
:data:`MIN_HELDOUT_LABELS` held-out or ``MIN_TRAIN_LABELS`` training labels --
it keeps sharing (docs/algorithms.rst, section "Negative transfer").
"""

from __future__ import annotations

import copy
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from .._training.full_batch import Adam, significantly_better
from ..nn.classification import MultiTaskClassificationNetwork
from ..nn.network import PrivateFeatures
from ._task_sharing import MIN_TRAIN_LABELS, SharingDecision, _cap

#: Fewest held-out labels of a task for the comparison to be made (a class label carries
#: less information than a real-valued one: twice the regression's 5).
MIN_HELDOUT_LABELS = 10
#: Optimiser steps of each task's fine-tuning (mini-batches of the fit's batch size).
FINE_TUNE_STEPS = 500


class SharingClassificationNetwork(MultiTaskClassificationNetwork):
    """The multi-task classification network with a private-feature slot.

    As :class:`~sk_mtbnn.nn.classification.MultiTaskClassificationNetwork`;
    with ``private_features=True`` it holds a
    :class:`~sk_mtbnn.nn.network.PrivateFeatures` slot (``self.private``), and
    the heads of the tasks flagged there see their private features instead of
    the backbone's. Training never flags a task, so it trains exactly as the
    plain network.

    Parameters
    ----------
    n_features, n_classes, hidden_layer_sizes, activation, prior_var
        As :class:`~sk_mtbnn.nn.classification.MultiTaskClassificationNetwork`.
    private_features : bool, default=False
        Hold the private-feature slot.

    Examples
    --------
    >>> import torch
    >>> net = SharingClassificationNetwork(2, [2, 3], (8, 8), private_features=True)
    >>> net.private_tasks().tolist()
    []
    >>> [tuple(z.shape) for z in net(torch.randn(4, 2))]
    [(4, 1), (4, 3)]
    """

    def __init__(
        self,
        n_features: int,
        n_classes,
        hidden_layer_sizes=(128, 128),
        activation: str = "silu",
        prior_var: float = 1.0,
        private_features: bool = False,
    ) -> None:
        super().__init__(n_features, n_classes, hidden_layer_sizes, activation, prior_var)
        self.private = None
        if private_features:
            widths = [layer.out_features for layer in self.backbone.layers]
            self.private = PrivateFeatures(self.n_tasks, n_features, widths, activation)

    def private_tasks(self) -> Tensor:
        """Indices of the tasks whose heads see their private features (possibly none)."""
        if self.private is None:
            return torch.zeros(0, dtype=torch.long)
        return self.private.active.nonzero()[:, 0]

    def representation(self, x: Tensor) -> Tensor:
        """Head inputs per task ``(T, B, H)``: the backbone's, or a task's private features."""
        h = self.backbone(x)
        tasks = self.private_tasks()
        if len(tasks):
            h = h.index_copy(0, tasks.to(h.device), self.private(x, tasks).to(h.dtype))
        return h

    def forward(self, x: Tensor) -> list[Tensor]:
        """Per task, logits ``(B, C_t)``."""
        return self.head(self.representation(x))


def can_share_adaptively(module) -> bool:
    """Whether ``module`` has a private slot and an unpruned backbone of plain layers."""
    return getattr(module, "private", None) is not None and module.backbone.is_dense()


# ---------------------------------------------------------------- fine-tuning
class FineTuned(NamedTuple):
    """Per fine-tuned task: the backbone layers ``[(T', out, in)]``, ``[(T', out)]`` and
    each task's head weights ``(C_t, H)`` and bias ``(C_t,)``."""

    weights: list[Tensor]
    biases: list[Tensor]
    heads: list[tuple[Tensor, Tensor]]


def _task_features(x: Tensor, weights, biases, activation) -> Tensor:
    """``(T', B, H)`` features of per-task inputs ``x`` ``(T', B, d)`` through per-task layers."""
    h = x
    for weight, bias in zip(weights, biases):
        h = activation(torch.baddbmm(bias.unsqueeze(1), h, weight.transpose(1, 2)))
    return h


def _task_loss(logits: Tensor, target: Tensor) -> Tensor:
    if logits.shape[1] == 1:
        return F.binary_cross_entropy_with_logits(logits[:, 0], target)
    return F.cross_entropy(logits, target.long())


def fine_tune(
    module: SharingClassificationNetwork,
    x: Tensor,
    y: Tensor,
    tasks: list[int],
    *,
    steps: int,
    batch_size: int,
    learning_rate: float,
    generator: torch.Generator,
) -> FineTuned:
    """Copies of the shared network, one per task of ``tasks``, each trained on its labels alone.

    Adam from the shared weights (backbone and head), mini-batches of
    ``batch_size`` rows drawn with replacement from each task's labelled rows
    of ``x``, ``y``; the copies are batched but never interact.
    """
    n = len(tasks)
    layers = module.backbone.layers
    # On the CPU, in float32, whatever the module's device (the copies are small).
    weights = [layer.weight.detach().float().cpu().expand(n, -1, -1).clone() for layer in layers]
    biases = [layer.bias.detach().float().cpu().expand(n, -1).clone() for layer in layers]
    heads = [
        (
            module.head.linears[t].weight.detach().float().cpu().clone(),
            module.head.linears[t].bias.detach().float().cpu().clone(),
        )
        for t in tasks
    ]
    params = [*weights, *biases, *(p for pair in heads for p in pair)]
    for p in params:
        p.requires_grad_(True)
    optimizer = Adam(params, lr=learning_rate)
    x, y = x.float().cpu(), y.float().cpu()
    rows = [torch.nonzero(~torch.isnan(y[:, t]))[:, 0] for t in tasks]
    activation = module.backbone.activation
    with torch.enable_grad():
        for _ in range(steps):
            draws = [r[torch.randint(len(r), (batch_size,), generator=generator)] for r in rows]
            index = torch.stack(draws)  # (T', B)
            h = _task_features(x[index], weights, biases, activation)
            loss = sum(
                _task_loss(F.linear(h[i], w, b), y[index[i], t])
                for i, (t, (w, b)) in enumerate(zip(tasks, heads))
            )
            loss.backward()
            optimizer.step()
    return FineTuned(
        [w.detach() for w in weights],
        [b.detach() for b in biases],
        [(w.detach(), b.detach()) for w, b in heads],
    )


def write_private(module, tasks: list[int], tuned: FineTuned, which=None) -> None:
    """Give the tasks ``tasks[i]`` (``i`` in ``which``, default all) their fine-tuned networks."""
    with torch.no_grad():
        for i, t in enumerate(tasks):
            if which is not None and i not in which:
                continue
            for target, source in zip(module.private.weights, tuned.weights):
                target[t].copy_(source[i])
            for target, source in zip(module.private.biases, tuned.biases):
                target[t].copy_(source[i])
            module.private.active[t] = True
            linear = module.head.linears[t]
            linear.weight.copy_(tuned.heads[i][0])
            linear.bias.copy_(tuned.heads[i][1])


# ------------------------------------------------------------------ decision
def _log_probabilities(module, x: Tensor, y: Tensor, train, valid) -> list[Tensor]:
    """Per task, held-out log predictive probabilities of the labels (Laplace given ``train``)."""
    head = module.head
    h = module.representation(x)
    head.condition_on(head.curvature(h[:, train], y[train]))
    out = []
    for t, p in enumerate(head.predict_proba(h[:, valid])):
        target = y[valid, t]
        rows = ~torch.isnan(target)
        chosen = p[rows].gather(1, target[rows].long().unsqueeze(1))[:, 0]
        out.append(torch.log(chosen.clamp_min(1e-300)))
    return out


def choose_private_classifier_tasks(
    module: SharingClassificationNetwork,
    X: np.ndarray,
    Y: np.ndarray,
    train_rows,
    valid_rows,
    *,
    seed: int,
    batch_size: int = 128,
    learning_rate: float = 3e-3,
    steps: int = FINE_TUNE_STEPS,
) -> SharingDecision:
    """Decide, per task, between the shared network and a fine-tuned private copy.

    Parameters
    ----------
    module : SharingClassificationNetwork
        The trained network with a private slot (:func:`can_share_adaptively`);
        the private networks of the tasks that leave are written into it
        (private features and head weights).
    X : ndarray of shape (N, n_features)
        Standardised inputs.
    Y : ndarray of shape (N, T)
        Class indices as floats, NaN where missing.
    train_rows, valid_rows : array-like of int
        The rows the private copies are fine-tuned on and the held-out rows
        that judge.
    seed : int
        Seeds the fine-tuning's mini-batches.
    batch_size, learning_rate, steps : int, float, int
        The fine-tuning's settings.

    Returns
    -------
    decision : SharingDecision
        ``gain``: mean held-out log predictive probability per label of the
        shared network minus that of the private copy (nats).
    """
    generator = torch.Generator().manual_seed(int(seed))
    train = _cap(torch.as_tensor(np.asarray(train_rows), dtype=torch.long), generator)
    valid = _cap(torch.as_tensor(np.asarray(valid_rows), dtype=torch.long), generator)
    rows = torch.cat([train, valid]).numpy()
    x = torch.as_tensor(np.asarray(X)[rows], dtype=torch.float64)
    y = torch.as_tensor(np.asarray(Y)[rows], dtype=torch.float64)
    train, valid = torch.arange(len(train)), torch.arange(len(train), len(rows))
    n_tasks = module.head.n_tasks
    shared = np.ones(n_tasks, dtype=bool)
    gain = np.full(n_tasks, np.nan)
    labelled = ~torch.isnan(y)
    candidates = (labelled[train].sum(0) >= MIN_TRAIN_LABELS) & (
        labelled[valid].sum(0) >= MIN_HELDOUT_LABELS
    )
    tasks = np.flatnonzero(candidates.numpy()).tolist()
    if not tasks:
        return SharingDecision(shared, gain)
    tuned = fine_tune(
        module,
        x[train],
        y[train],
        tasks,
        steps=steps,
        batch_size=batch_size,
        learning_rate=learning_rate,
        generator=generator,
    )
    with torch.no_grad():
        shared_lp = _log_probabilities(_float64(module), x, y, train, valid)
        private = _float64(module)
        write_private(private, tasks, tuned)
        private_lp = _log_probabilities(private, x, y, train, valid)
    leaving = set()
    for i, t in enumerate(tasks):
        gain[t] = float((shared_lp[t] - private_lp[t]).mean())
        if significantly_better(private_lp[t], shared_lp[t]):
            shared[t] = False
            leaving.add(i)
    if leaving:
        write_private(module, tasks, tuned, leaving)
    return SharingDecision(shared, gain)


def decide_on_validation_rows(module, data, learning_rate: float) -> SharingDecision:
    """:func:`choose_private_classifier_tasks` on a fit's training and validation rows."""
    X = np.concatenate([data.train[0], data.valid[0]])
    Y = np.concatenate([data.train[1], data.valid[1]])
    n_train = len(data.train[0])
    return choose_private_classifier_tasks(
        module,
        X,
        Y,
        np.arange(n_train),
        np.arange(n_train, len(X)),
        seed=data.seed,
        batch_size=data.batch_size,
        learning_rate=learning_rate,
    )


def _float64(module):
    return copy.deepcopy(module).to("cpu", torch.float64).eval()


def no_decision(n_tasks: int) -> SharingDecision:
    """Every task shares; no comparison was made."""
    return SharingDecision(np.ones(n_tasks, dtype=bool), np.full(n_tasks, np.nan))
