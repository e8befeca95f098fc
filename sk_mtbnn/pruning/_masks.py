"""Masks of the pruning meta-estimator: magnitude pruning, per-task masks, small helpers."""

from __future__ import annotations

import warnings

import numpy as np
import torch


def prune_masks(weights, masks, keep_fraction, scope="global"):
    """New binary masks that keep the largest-magnitude surviving entries.

    Parameters
    ----------
    weights : list of ndarray
        One array per layer (any shape).
    masks : list of bool ndarray
        Current masks, same shapes; only surviving entries (True) compete.
    keep_fraction : float
        Fraction of the *original* number of entries to keep, in (0, 1]:
        ``(1 - p)^r`` after ``r`` rounds of pruning ratio ``p``. Counting from
        the original size (not from the survivors) keeps the rounding error
        at one entry per layer whatever the number of rounds.
    scope : {"global", "layer"}, default="global"
        Rank all layers together, or within each layer.

    Returns
    -------
    list of bool ndarray

    Examples
    --------
    >>> import numpy as np
    >>> w = [np.array([[0.1, -3.0], [2.0, 0.5]])]
    >>> prune_masks(w, [np.ones((2, 2), bool)], keep_fraction=0.5)[0]
    array([[False,  True],
           [ True, False]])
    """
    if scope == "layer":
        return [
            prune_masks([w], [m], keep_fraction, scope="global")[0] for w, m in zip(weights, masks)
        ]
    sizes = [m.size for m in masks]
    magnitude = np.concatenate([np.abs(w).ravel() for w in weights])
    alive = np.concatenate([m.ravel() for m in masks])
    n_keep = min(round(keep_fraction * sum(sizes)), int(alive.sum()))
    order = np.argsort(np.where(alive, -magnitude, np.inf), kind="stable")
    new = np.zeros(len(alive), dtype=bool)
    new[order[:n_keep]] = True
    new &= alive
    out, start = [], 0
    for m, n in zip(masks, sizes):
        out.append(new[start : start + n].reshape(m.shape))
        start += n
    return out


# ------------------------------------------------------------------ helpers
def _check_selection_rows(rows: np.ndarray, t: int) -> None:
    if not rows.any():
        raise ValueError(
            f"Task {t} has no usable label among the validation rows that choose the pruning "
            "rounds: raise validation_fraction, or pass X_val and y_val with labels for every "
            "task."
        )


def _retrain(estimator, module, data, max_epochs) -> None:
    """Train ``module`` through the estimator's skeleton; Ctrl-C ends the whole fit."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the interruption is re-raised
        estimator._train(module, data, max_epochs=max_epochs)
    if estimator.training_interrupted_:
        raise KeyboardInterrupt


def _as_rows(X):
    """Arrays and DataFrames as they are; anything else (lists) as an array."""
    if X is None or hasattr(X, "iloc") or isinstance(X, np.ndarray):
        return X
    return np.asarray(X)


def _take(X, rows):
    return X.iloc[rows] if hasattr(X, "iloc") else X[rows]


def _task_masks(module, t):
    """Task ``t``'s backbone masks as bool arrays ``[(weight, bias), ...]``."""
    return [
        (w[t].detach().cpu().numpy() > 0.5, b[t].detach().cpu().numpy() > 0.5)
        for w, b in module.backbone.masks()
    ]


def _set_task_masks(module, t, masks) -> None:
    new = []
    for (w, b), (mw, mb) in zip(module.backbone.masks(), masks):
        w2, b2 = w.clone(), b.clone()
        w2[t] = torch.as_tensor(mw, dtype=w.dtype)
        b2[t] = torch.as_tensor(mb, dtype=b.dtype)
        new.append((w2, b2))
    module.backbone.set_masks(new)


def _sparsity(masks, with_bias: bool) -> float:
    total = sum(w.size + (b.size if with_bias else 0) for w, b in masks)
    kept = sum(int(w.sum()) + (int(b.sum()) if with_bias else 0) for w, b in masks)
    return 1.0 - kept / total


def _task_own_parameters(module) -> list[int]:
    """Per task, the parameters of its branch and its head's weights (bias included)."""
    n_tasks = module.backbone.n_tasks
    if hasattr(module, "heads"):  # classification: one linear head per task
        return [sum(p.numel() for p in head.parameters()) for head in module.heads]
    branch = sum(p.numel() for p in module.branches.parameters()) // n_tasks
    return [branch + module.head.mean.shape[1]] * n_tasks
