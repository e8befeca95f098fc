"""Delta_m%: the multi-task literature's relative change against single-task models."""

from __future__ import annotations

import numpy as np

from ._validation import as_array, check_finite, check_params


def _check_direction(higher_is_better, n_tasks: int) -> np.ndarray:
    direction = np.asarray(higher_is_better)
    if direction.dtype.kind != "b" or direction.ndim > 1:
        raise TypeError(
            "higher_is_better must be a bool or a 1-D array-like of bools (one per task); "
            f"got {higher_is_better!r}."
        )
    if direction.ndim == 1 and len(direction) != n_tasks:
        raise ValueError(
            f"higher_is_better has {len(direction)} entries but there are {n_tasks} tasks; "
            "pass one bool per task, or a single bool."
        )
    return np.broadcast_to(direction, (n_tasks,))


def delta_m(metrics, reference, higher_is_better):
    """Delta_m%: mean relative change of per-task metrics against a reference.

    ``100 / T * sum_t (-1)^{delta_t} (M_t - M_t^ref) / M_t^ref`` with
    ``delta_t = 1`` where higher is better (Maninis et al. 2019): negative
    means better than the reference (usually single-task models).

    Parameters
    ----------
    metrics, reference : array-like of shape (n_tasks,)
        The method's and the reference's per-task metrics, finite; the
        reference must be strictly positive (a relative change against a
        negative or zero value, such as an NLL, is meaningless).
    higher_is_better : bool or array-like of bool of shape (n_tasks,)
        Direction of each metric.

    Returns
    -------
    delta : float
        In percent; lower is better.

    Examples
    --------
    Accuracy 10% lower (worse, +10) and error 20% lower (better, -20):

    >>> round(delta_m([0.9, 2.0], [1.0, 2.5], higher_is_better=[True, False]), 6)
    -5.0
    """
    check_params("delta_m", higher_is_better=higher_is_better)
    m = as_array(metrics, "metrics", max_dim=1)
    ref = as_array(reference, "reference", max_dim=1)
    if m.shape != ref.shape:
        raise ValueError(
            f"metrics and reference must have one entry per task each; got {m.shape[0]} "
            f"and {ref.shape[0]} entries."
        )
    check_finite(m, "metrics")
    check_finite(
        ref,
        "reference",
        positive=True,
        hint="Delta_m divides by the reference: use a positive metric (RMSE, MAE, accuracy).",
    )
    sign = np.where(_check_direction(higher_is_better, len(m)), -1.0, 1.0)
    return float(100.0 * np.mean(sign * (m - ref) / ref))
