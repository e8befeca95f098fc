"""Plots of fitted multi-task quantities (matplotlib, an optional extra, imported lazily)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def plot_task_similarity(similarity, task_names: Sequence[str] | None = None, ax=None):
    """Heat map of a task-similarity matrix, each cell annotated with its value.

    Parameters
    ----------
    similarity : array-like of shape (T, T)
        E.g. the ``task_similarity_`` of a task prior
        (:mod:`sk_mtbnn.nn.task_priors`): values in ``[0, 1]``, or a
        correlation in ``[-1, 1]`` (then the colour scale is symmetric).
    task_names : sequence of str, default=None
        Axis labels; ``task 0, task 1, ...`` by default.
    ax : matplotlib Axes, default=None
        Where to draw; a new figure by default.

    Returns
    -------
    ax : matplotlib Axes

    Examples
    --------
    >>> import numpy as np
    >>> from sk_mtbnn.plotting import plot_task_similarity
    >>> ax = plot_task_similarity(np.array([[1.0, 0.2], [0.2, 1.0]]), ["a", "b"])
    >>> ax.get_title()
    'Task similarity'
    """
    sim = _as_matrix(similarity)
    n = len(sim)
    names = list(task_names) if task_names is not None else [f"task {t}" for t in range(n)]
    if len(names) != n:
        raise ValueError(f"task_names has {len(names)} names for {n} tasks.")
    ax = _axes(ax)
    low = -1.0 if sim.min() < 0 else 0.0
    image = ax.imshow(sim, vmin=low, vmax=1.0, cmap="RdBu_r" if low < 0 else "viridis")
    middle = 0.5 * (low + 1.0)
    for i in range(n):
        for j in range(n):
            dark = sim[i, j] < middle if low == 0 else abs(sim[i, j]) > 0.6
            colour = "white" if dark else "black"
            ax.text(j, i, f"{sim[i, j]:.2f}", ha="center", va="center", fontsize=8, color=colour)
    ax.set_xticks(range(n), names, rotation=45, ha="right")
    ax.set_yticks(range(n), names)
    ax.set_title("Task similarity")
    ax.figure.colorbar(image, ax=ax)
    return ax


def _as_matrix(similarity) -> np.ndarray:
    if hasattr(similarity, "detach"):  # a torch tensor
        similarity = similarity.detach().cpu().numpy()
    sim = np.asarray(similarity, dtype=float)
    if sim.ndim != 2 or sim.shape[0] != sim.shape[1]:
        raise ValueError(f"similarity must be a square (T, T) matrix, got shape {sim.shape}.")
    if not np.isfinite(sim).all():
        raise ValueError("similarity contains NaN or infinite values.")
    return sim


def _axes(ax):
    if ax is None:
        try:
            import matplotlib.pyplot as plt
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ImportError("Plotting needs matplotlib: pip install 'sk_mtbnn[plot]'.") from exc
        _, ax = plt.subplots()
    return ax
