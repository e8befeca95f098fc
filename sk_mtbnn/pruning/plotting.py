"""Plots of a fitted :class:`IterativeMagnitudePruning` (matplotlib, an optional extra)."""

from __future__ import annotations

import numpy as np


def _axes(ax):
    if ax is None:
        try:
            import matplotlib.pyplot as plt
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ImportError("Plotting needs matplotlib: pip install 'sk_mtbnn[plot]'.") from exc
        _, ax = plt.subplots()
    return ax


def plot_mask_overlap(pruning, task_names=None, ax=None):
    """Heat map of the Jaccard overlap between the tasks' masks.

    Parameters
    ----------
    pruning : IterativeMagnitudePruning
        A fitted meta-estimator.
    task_names : list of str, optional
        Axis labels.
    ax : matplotlib Axes, optional
        Where to draw; a new figure by default.

    Returns
    -------
    ax : matplotlib Axes

    Examples
    --------
    >>> import numpy as np
    >>> from sk_mtbnn import IterativeMagnitudePruning, SparseMultiTaskBNNRegressor
    >>> X = np.random.RandomState(0).uniform(size=(60, 2))
    >>> imp = IterativeMagnitudePruning(
    ...     SparseMultiTaskBNNRegressor(hidden_layer_sizes=(8,), max_epochs=5),
    ...     n_rounds=1, random_state=0).fit(X, X)
    >>> plot_mask_overlap(imp).get_title()
    "Overlap (Jaccard) of the tasks' kept weights"
    """
    ax = _axes(ax)
    overlap = pruning.overlap_
    names = task_names or [f"task {t}" for t in range(len(overlap))]
    image = ax.imshow(overlap, vmin=0, vmax=1, cmap="viridis")
    for i in range(len(overlap)):
        for j in range(len(overlap)):
            ax.text(
                j,
                i,
                f"{overlap[i, j]:.2f}",
                ha="center",
                va="center",
                color="white" if overlap[i, j] < 0.6 else "black",
                fontsize=8,
            )
    ax.set_xticks(range(len(names)), names, rotation=45, ha="right")
    ax.set_yticks(range(len(names)), names)
    ax.set_title("Overlap (Jaccard) of the tasks' kept weights")
    ax.figure.colorbar(image, ax=ax)
    return ax


def plot_validation_scores(pruning, task_names=None, ax=None):
    """Validation score of every task against its sparsity, round by round.

    Parameters
    ----------
    pruning : IterativeMagnitudePruning
        A fitted meta-estimator.
    task_names : list of str, optional
        Legend labels.
    ax : matplotlib Axes, optional
        Where to draw; a new figure by default.

    Returns
    -------
    ax : matplotlib Axes

    Examples
    --------
    >>> import numpy as np
    >>> from sk_mtbnn import IterativeMagnitudePruning, SparseMultiTaskBNNRegressor
    >>> X = np.random.RandomState(0).uniform(size=(60, 2))
    >>> imp = IterativeMagnitudePruning(
    ...     SparseMultiTaskBNNRegressor(hidden_layer_sizes=(8,), max_epochs=5),
    ...     n_rounds=1, random_state=0).fit(X, X)
    >>> plot_validation_scores(imp).get_xlabel()
    "sparsity of the task's backbone mask (%)"
    """
    ax = _axes(ax)
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
