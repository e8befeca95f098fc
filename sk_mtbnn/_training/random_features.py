"""The backbone as a random-feature map with a lengthscale, chosen by evidence.

At small n the shared backbone is not trained but set, like the random
features of Rahimi & Recht (NeurIPS 2007), to a map whose Bayesian linear head
is a kernel machine with a lengthscale: the analogue of a GP's kernel, with the
lengthscale, prior and noise variances chosen by the evidence (type-II maximum
likelihood) as a GP chooses its kernel's hyper-parameters.

A network at PyTorch's default initialisation is a poor such prior: its
features span a few smooth functions (the gram matrix of ``(128, 128)``
SiLU features on 20 points of a 1-D input has three eigenvalues above 1e-2
of the largest), so the evidence explains wiggly targets as noise. The
layout here is built from two layers instead:

* layer 1 holds ``P`` pairs of mirrored ramps ``act(+-s (w_p . x - t_p))`` along
  random unit directions ``w_p``, with offsets ``t_p`` stratified over the
  training inputs' projections widened by :data:`MARGIN` of their span on
  each side; for a ramp-like activation their sum is close to
  ``s |w_p . x - t_p|``;
* layer 2 turns each pair into a ridge bump
  ``act(G (1 - (sum - sum_0) / (kappa m)))`` of half-width about ``m`` times
  the lengthscale, for widths ``m = 1, 2, ...`` (layer-2 units beyond the
  first ``P`` reuse the pairs with wider bumps);
* further layers pass the bumps on (identity weights, zero bias).

The head on these ``D`` bumps is Bayesian linear regression with a stationary
kernel (along each direction) of compact support; the prediction reverts to
the bias away from the data, as a GP's reverts to its mean.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor, nn

from ..nn.evidence import Evidence, maximise_evidence_of_features, task_constant_alpha
from ..nn.evidence_rows import maximise_evidence_rows

#: Offsets of the ramps extend beyond the data by this share of its span per side.
MARGIN = 1.0
#: Sharpness of the ramps relative to the lengthscale (``s = KAPPA / lengthscale``).
KAPPA = 0.5
#: Height (pre-activation) of the bumps.
BUMP_GAIN = 1.0
#: Default lengthscales tried, in units of the standardised inputs.
LENGTHSCALES = tuple(float(v) for v in np.geomspace(0.04, 4.0, 15))
#: Factors by which the ARD search scales one column's relevance (0 drops the column).
RELEVANCE_FACTORS = (0.0, 0.5, 2.0)
#: Coordinate sweeps of the ARD search over the columns.
ARD_SWEEPS = 2
#: The ARD search runs for 2 to this many backbone columns (its cost grows with them).
MAX_ARD_COLUMNS = 32
#: Tasks times columns up to which each task also gets relevances of its own.
MAX_TASK_ARD = 64
#: A relevance change is kept only if it raises the summed log evidence by this many nats.
ARD_MIN_GAIN = 1.0
#: Nor if it lowers any one task's log evidence by this many nats (the columns are shared).
TASK_MAX_LOSS = float("inf")


class FeatureLayout(NamedTuple):
    """Directions ``(P, d)`` and offsets ``(P,)`` of the ramp pairs.

    ``directions`` are random unit vectors scaled column-wise by
    ``relevance`` ``(d,)`` (all ones: isotropic), so that a bump's width along
    column ``j`` is the lengthscale divided by ``relevance[j]``, as an ARD
    kernel's lengthscales are; ``units`` and ``shares`` are the draws the
    layout was placed from (unit directions, stratified offset positions).
    """

    directions: Tensor
    offsets: Tensor
    relevance: Tensor
    units: Tensor
    shares: Tensor


def check_random_feature_network(module: nn.Module) -> None:
    """Raise ``ValueError`` unless ``module`` can hold the random-feature layout.

    That needs a plain (non-residual, unnormalised, unpruned) backbone of at
    least two layers, a ramp-like activation and no task branch layers.
    """
    backbone = module.backbone
    problems = []
    if len(backbone.layers) < 2:
        problems.append("at least two hidden layers (hidden_layer_sizes=(128, 128))")
    if getattr(backbone, "residual", False) or getattr(backbone, "spectral_norm", None):
        problems.append("no residual layers and no spectral normalisation")
    if not backbone.is_dense():
        problems.append("unpruned masks")
    if len(module.branches.layers):
        problems.append("no task branch layers (branch_layer_sizes=())")
    if not _is_ramp_like(backbone.activation):
        problems.append("a ramp-like activation (silu, relu, gelu, elu or softplus; not tanh)")
    if problems:
        raise ValueError("The random-feature regime needs " + "; ".join(problems) + ".")


def _is_ramp_like(activation: nn.Module) -> bool:
    """Whether ``act(z) + act(-z)`` grows like ``|z|`` (it cancels for tanh)."""
    z = torch.tensor([20.0, 40.0], dtype=torch.float64)
    with torch.no_grad():
        even = activation(z) + activation(-z)
    return bool(
        torch.allclose(even[1] - even[0], torch.tensor(20.0, dtype=torch.float64), rtol=0.05)
    )


def draw_layout(module: nn.Module, X: Tensor, generator: torch.Generator) -> FeatureLayout:
    """Directions and stratified offsets of the ramp pairs of ``module`` for inputs ``X``.

    ``X`` are the (standardised) training inputs, all columns; only the
    backbone's columns are used.
    """
    first = module.backbone.layers[0]
    n_pairs = first.out_features // 2
    x = X[:, module.backbone_columns].to(torch.float64)
    units = torch.randn(n_pairs, x.shape[1], generator=generator, dtype=torch.float64)
    units = units / units.norm(dim=1, keepdim=True).clamp_min(1e-12)
    # Stratified: one offset per pair in each of P equal slices, in random order.
    slots = torch.randperm(n_pairs, generator=generator).to(torch.float64)
    jitter = torch.rand(n_pairs, generator=generator, dtype=torch.float64)
    shares = (slots + jitter) / n_pairs
    return place_layout(units, shares, x, torch.ones(x.shape[1], dtype=torch.float64))


def place_layout(units: Tensor, shares: Tensor, x: Tensor, relevance: Tensor) -> FeatureLayout:
    """The layout of unit directions ``units`` scaled by ``relevance``, offsets placed on ``x``.

    ``x`` holds the backbone's columns of the standardised training inputs.
    """
    directions = units * relevance
    proj = x @ directions.T  # (N, P)
    low, high = proj.min(0).values, proj.max(0).values
    span = (high - low).clamp_min(1e-3)
    offsets = low - MARGIN * span + (1 + 2 * MARGIN) * span * shares
    return FeatureLayout(directions, offsets, relevance, units, shares)


def set_random_features(module: nn.Module, layout: FeatureLayout, lengthscale: float) -> None:
    """Write the bump layout with ``lengthscale`` into the backbone's weights, in place."""
    backbone = module.backbone
    first, second, *rest = backbone.layers
    n_pairs = len(layout.offsets)
    sharpness = KAPPA / lengthscale
    with torch.no_grad():
        act_zero = float(backbone.activation(torch.zeros(1, dtype=torch.float64)))
        w1 = torch.zeros_like(first.weight, dtype=torch.float64)
        b1 = torch.zeros_like(first.bias, dtype=torch.float64)
        w1[0 : 2 * n_pairs : 2] = sharpness * layout.directions
        w1[1 : 2 * n_pairs : 2] = -sharpness * layout.directions
        b1[0 : 2 * n_pairs : 2] = -sharpness * layout.offsets
        b1[1 : 2 * n_pairs : 2] = sharpness * layout.offsets
        units = torch.arange(second.out_features)
        pair = units % max(n_pairs, 1)
        width = 1.0 + (units // max(n_pairs, 1)).to(torch.float64)
        w2 = torch.zeros_like(second.weight, dtype=torch.float64)
        w2[units, 2 * pair] = -BUMP_GAIN / (KAPPA * width)
        w2[units, 2 * pair + 1] = -BUMP_GAIN / (KAPPA * width)
        b2 = BUMP_GAIN * (1.0 + 2.0 * act_zero / (KAPPA * width))
        for layer, (w, b) in zip((first, second), ((w1, b1), (w2, b2))):
            layer.weight.copy_(w)
            layer.bias.copy_(b)
        for layer in rest:
            layer.weight.copy_(torch.eye(*layer.weight.shape))
            layer.bias.zero_()


class LengthscaleChoice(NamedTuple):
    """The chosen lengthscale and the head hyper-parameters there.

    ``isotropic`` is the choice before the ARD search, when that search
    changed the relevances (else None); ``task_relevance`` ``(T, d)`` holds
    each task's own relevances, searched on its own evidence as a
    single-task fit would (None where they were not searched: one task, or
    more than :data:`MAX_TASK_ARD` tasks times columns).
    """

    lengthscale: float
    evidence: Evidence
    layout: FeatureLayout
    isotropic: LengthscaleChoice | None = None
    task_relevance: Tensor | None = None


def head_evidence_of_features(
    phi: Tensor, Y: Tensor, alpha: Tensor | float = 0.0, **options
) -> Evidence:
    """Evidence-maximising head hyper-parameters for features ``phi`` ``(T, N, F)``.

    ``alpha`` (scalar, ``(N,)`` or ``(N, T)``) is a known per-row noise
    variance; ``options`` go to :func:`~sk_mtbnn.nn.evidence.maximise_evidence`.
    """
    phi, y = phi.to(torch.float64), Y.to(torch.float64)
    constant = task_constant_alpha(alpha)
    if constant is not None:
        return maximise_evidence_of_features(phi, y, alpha=constant, **options)
    return maximise_evidence_rows(phi, y, torch.as_tensor(alpha, dtype=torch.float64), **options)


def float64_copy(module: nn.Module) -> nn.Module:
    """A float64 copy of ``module`` in evaluation mode (no dropout)."""
    return copy.deepcopy(module).to(torch.float64).eval()


def features64(module: nn.Module, X: Tensor) -> Tensor:
    """Head inputs ``(T, N, F)`` of ``module`` on ``X``, computed in float64."""
    with torch.no_grad():
        return float64_copy(module)(X.to(torch.float64))


def choose_lengthscale(
    module: nn.Module,
    X: Tensor,
    Y: Tensor,
    *,
    alpha: Tensor | float = 0.0,
    lengthscales: Sequence[float] = LENGTHSCALES,
    generator: torch.Generator | None = None,
    ard: bool = True,
    relevance_of: LengthscaleChoice | None = None,
    **options,
) -> LengthscaleChoice:
    """Set ``module``'s backbone to random features at the evidence-best lengthscale.

    Parameters
    ----------
    module : MultiTaskNetwork
        Network to set, in place; see :func:`check_random_feature_network`.
    X : Tensor of shape (N, n_features)
        Standardised training inputs.
    Y : Tensor of shape (N, T)
        Standardised targets, NaN where missing.
    alpha : float or Tensor of shape (N,) or (N, T), default=0.0
        Known per-row noise variance (in units of the standardised targets).
    lengthscales : sequence of float, default=LENGTHSCALES
        Candidates, in units of the standardised inputs; the one with the
        largest evidence summed over tasks wins (the backbone is shared).
    generator : torch.Generator, default=None
        Draws the directions and offsets (the same for every candidate).
    ard : bool, default=True
        After the isotropic choice, scale each input column's relevance by
        evidence (:func:`_ard_search`), then choose the lengthscale again;
        done for 2 to :data:`MAX_ARD_COLUMNS` backbone columns.
    relevance_of : LengthscaleChoice, default=None
        The choice of an earlier search on the same data (another member of
        an ensemble, with its own draw). Its relevances replace the ARD and
        per-task searches: they are placed on this draw's directions and
        offsets and kept if their best lengthscale has more evidence than the
        isotropic one; its ``task_relevance`` is taken as it is. About 30
        evidence evaluations instead of about 240 (8 columns, 3 tasks).
    **options
        Passed to :func:`~sk_mtbnn.nn.evidence.maximise_evidence`.

    Returns
    -------
    choice : LengthscaleChoice
        The lengthscale, the head's :class:`~sk_mtbnn.nn.evidence.Evidence`
        there, and the layout.
    """
    check_random_feature_network(module)
    layout = draw_layout(module, X, generator or torch.Generator().manual_seed(0))
    work = float64_copy(module)
    x, y = X.to(torch.float64), Y.to(torch.float64)

    def score(layout: FeatureLayout, lengthscale: float, **warm) -> tuple[float, Evidence]:
        set_random_features(work, layout, lengthscale)
        with torch.no_grad():
            evidence = head_evidence_of_features(work(x), y, alpha, **options, **warm)
        return float(evidence.log_evidence.sum()), evidence

    def scan(layout: FeatureLayout) -> list[tuple[float, Evidence, float]]:
        return [(*score(layout, float(ls)), float(ls)) for ls in lengthscales]

    def best_lengthscale(layout: FeatureLayout, scores=None) -> tuple[float, float, Evidence]:
        total, evidence, lengthscale = max(scores or scan(layout), key=lambda s: s[0])
        return total, lengthscale, evidence

    isotropic_scan = scan(layout)
    total, lengthscale, evidence = best_lengthscale(layout, isotropic_scan)
    choice = LengthscaleChoice(lengthscale, evidence, layout)
    if relevance_of is not None:
        if relevance_of.isotropic is not None:
            xb = x[:, module.backbone_columns]
            relevance = relevance_of.layout.relevance
            candidate = place_layout(layout.units, layout.shares, xb, relevance)
            value, ls, ev = best_lengthscale(candidate)
            if value > total:  # no margin: the first draw's search already required one
                choice = LengthscaleChoice(ls, ev, candidate, isotropic=choice)
        choice = choice._replace(task_relevance=relevance_of.task_relevance)
    elif ard and 2 <= len(layout.relevance) <= MAX_ARD_COLUMNS:
        xb = x[:, module.backbone_columns]
        # The search's candidates are near the isotropic optimum: one warm start (alpha
        # the same on every row) instead of a grid, about half the cost of each evaluation.
        warm = {"warm_start": evidence} if task_constant_alpha(alpha) is not None else {}

        def near(candidate, ls):
            return score(candidate, ls, **warm)

        candidates = [(_ard_search(layout, xb, total, lengthscale, near), 0.0)]
        n_tasks, task_relevance = y.shape[1], None
        if 2 <= n_tasks and n_tasks * len(layout.relevance) <= MAX_TASK_ARD:
            task_relevance = task_relevances(
                layout, xb, lengthscale, isotropic_scan, work, x, y, alpha, options
            )
            shared_out = task_relevance[_groups(layout, n_tasks)]
            union = place_layout(layout.units, layout.shares, xb, shared_out)
            candidates.append((union, ARD_MIN_GAIN * n_tasks))  # T times the relevances
        best = (total, choice)
        for candidate, margin in candidates:
            if candidate is layout:
                continue
            value, ls, ev = best_lengthscale(candidate)
            if value > best[0] + margin:
                best = (value, LengthscaleChoice(ls, ev, candidate, isotropic=choice))
        choice = best[1]._replace(task_relevance=task_relevance)
    set_random_features(module, choice.layout, choice.lengthscale)
    return choice


def _groups(layout: FeatureLayout, n_tasks: int) -> Tensor:
    """The task whose relevances pair ``p`` takes in the shared-out layout: ``p mod T``."""
    return torch.arange(len(layout.units)) % n_tasks


def task_relevances(layout, xb, lengthscale, isotropic_scan, work, x, y, alpha, options) -> Tensor:
    """Every task's relevances ``(T, d)``, searched on its own evidence, at ``lengthscale``.

    As a single-task fit searches them: from the task's own best isotropic
    lengthscale ``l_t`` (read off ``isotropic_scan``, the ``(total, evidence,
    lengthscale)`` of each candidate on the isotropic ``layout``), by
    :func:`_ard_search`. The result is expressed at the shared
    ``lengthscale`` ``l``: relevances ``r`` at ``l_t`` are relevances
    ``r l / l_t`` at ``l`` (a bump's width along column ``j`` is the
    lengthscale over ``r_j``). :func:`choose_lengthscale` shares the ramp
    pairs out among the tasks, pair ``p`` taking the relevances of task
    ``p mod T``; all heads see all pairs, so a task whose columns differ
    from the others' is not held to their relevances (measured on
    ``slump``: with one set for all tasks, single-task fits beat the shared
    fit on all three tasks). ``sharing="auto"`` gives a task its own
    relevances on every pair when its evidence prefers them.
    """
    per_task = torch.stack([evidence.log_evidence for _, evidence, _ in isotropic_scan])
    best = per_task.argmax(0)
    relevances = []
    alpha_t = torch.as_tensor(alpha)
    for t in range(y.shape[1]):
        _, own_evidence, own_lengthscale = isotropic_scan[int(best[t])]
        own_alpha = alpha_t[:, t : t + 1] if alpha_t.ndim == 2 else alpha_t
        own_options = dict(options)
        if task_constant_alpha(own_alpha) is not None:  # one warm start, at the task's optimum
            own_options["warm_start"] = Evidence(*(v[t : t + 1] for v in own_evidence))

        def score(candidate, ls, t=t, own_alpha=own_alpha, own_options=own_options):
            set_random_features(work, candidate, ls)
            with torch.no_grad():
                phi = work(x)[t : t + 1]
                evidence = head_evidence_of_features(phi, y[:, t : t + 1], own_alpha, **own_options)
            return float(evidence.log_evidence.sum()), evidence

        start = score(layout, own_lengthscale)[0]
        found = _ard_search(layout, xb, start, own_lengthscale, score).relevance
        relevances.append(found * (lengthscale / own_lengthscale))
    return torch.stack(relevances)


def _ard_search(layout: FeatureLayout, x: Tensor, total: float, lengthscale: float, score):
    """Coordinate ascent of the summed log evidence over the columns' relevances.

    Each sweep tries, column by column, the relevance times each of
    :data:`RELEVANCE_FACTORS` at a fixed lengthscale and keeps each change
    that gains at least :data:`ARD_MIN_GAIN` nats: type-II maximum
    likelihood of per-column lengthscales (ARD), as a GP with an ARD kernel
    chooses them, on a grid. The evidence never decreases. Returns
    ``layout`` itself when nothing changed.
    """
    best = layout
    per_task = score(layout, lengthscale)[1].log_evidence
    for _ in range(ARD_SWEEPS):
        changed = False
        for column in range(len(best.relevance)):
            for factor in RELEVANCE_FACTORS:
                relevance = best.relevance.clone()
                relevance[column] *= factor
                if not bool((relevance > 0).any()) or torch.equal(relevance, best.relevance):
                    continue
                candidate = place_layout(best.units, best.shares, x, relevance)
                value, evidence = score(candidate, lengthscale)
                loss = float((per_task - evidence.log_evidence).max())
                if value > total + ARD_MIN_GAIN and loss < TASK_MAX_LOSS:
                    best, total, changed = candidate, value, True
                    per_task = evidence.log_evidence
        if not changed:
            break
    return best
