"""Plots of fitted multi-task quantities (matplotlib, an optional extra, imported lazily)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["plot_task_similarity"]


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
    low = -1.0 if sim.min() < 0 else 0.0
    # Light text on the dark cells of each colour map.
    dark = sim < 0.5 * (low + 1.0) if low == 0 else np.abs(sim) > 0.6
    cmap = "RdBu_r" if low < 0 else "viridis"
    return heatmap(get_axes(ax), sim, names, "Task similarity", vmin=low, cmap=cmap, dark=dark)


def heatmap(ax, matrix, names, title: str, *, vmin: float, cmap: str, dark: np.ndarray):
    """A square heat map on ``ax`` up to 1, each cell annotated with its value, and a colour bar.

    ``names`` label both axes; ``dark`` marks the cells whose text is white.
    """
    image = ax.imshow(matrix, vmin=vmin, vmax=1.0, cmap=cmap)
    for (i, j), value in np.ndenumerate(matrix):
        colour = "white" if dark[i, j] else "black"
        ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=8, color=colour)
    ax.set_xticks(range(len(names)), names, rotation=45, ha="right")
    ax.set_yticks(range(len(names)), names)
    ax.set_title(title)
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


def get_axes(ax):
    """``ax``, or the axes of a new figure (matplotlib is imported only then)."""
    if ax is None:
        try:
            import matplotlib.pyplot as plt
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ImportError("Plotting needs matplotlib: pip install 'sk_mtbnn[plot]'.") from exc
        _, ax = plt.subplots()
    return ax
