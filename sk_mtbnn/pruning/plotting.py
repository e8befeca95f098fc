"""Plots of a fitted :class:`IterativeMagnitudePruning` (matplotlib, an optional extra)."""

from __future__ import annotations

import numpy as np

from .._docstrings import fill_doc
from ..plotting import get_axes, heatmap


@fill_doc
def plot_mask_overlap(pruning, task_names=None, ax=None):
    """Heat map of the Jaccard overlap between the tasks' masks.

    Cell ``(s, t)`` is ``|M_s & M_t| / |M_s | M_t|`` for the kept weights
    ``M_t`` of tasks ``s`` and ``t`` (``overlap_``): 1 on the diagonal, near 0
    for tasks that kept disjoint subnetworks.

    %(pruning_plot_sections)s

    Examples
    --------
    %(example_pruning)s
    >>> plot_mask_overlap(imp).get_title()
    "Overlap (Jaccard) of the tasks' kept weights"
    """
    overlap = pruning.overlap_
    names = task_names or [f"task {t}" for t in range(len(overlap))]
    title = "Overlap (Jaccard) of the tasks' kept weights"
    return heatmap(get_axes(ax), overlap, names, title, vmin=0, cmap="viridis", dark=overlap < 0.6)


@fill_doc
def plot_validation_scores(pruning, task_names=None, ax=None):
    """Validation score of every task against its sparsity, round by round.

    One line per task through its pruning rounds (``history_``); a star marks
    the round whose mask was kept (``sparsity_``).

    %(pruning_plot_sections)s

    Examples
    --------
    %(example_pruning)s
    >>> plot_validation_scores(imp).get_xlabel()
    "sparsity of the task's backbone mask (%)"
    """
    ax = get_axes(ax)
    history = pruning.history_
    tasks = sorted({h["task"] for h in history})
    names = task_names or [f"task {t}" for t in tasks]
    for t, name in zip(tasks, names):
        rows = [h for h in history if h["task"] == t]
        ax.plot([100 * h["sparsity"] for h in rows], [h["score"] for h in rows], "o-", label=name)
        chosen = 100 * pruning.sparsity_[t]
        score = [h["score"] for h in rows if np.isclose(100 * h["sparsity"], chosen)]
        if score:
            ax.plot(chosen, score[-1], "k*", ms=10)
    ax.set_xlabel("sparsity of the task's backbone mask (%)")
    ax.set_ylabel("validation score (higher is better)")
    ax.set_title("Validation score per pruning round (* kept)")
    ax.legend()
    return ax
