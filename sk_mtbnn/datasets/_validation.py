"""Parameter and input checks of the data-set functions: errors that say what to change."""

from __future__ import annotations

import numpy as np
from sklearn.utils.validation import check_array

from .._param_validation import (
    Integral,
    Interval,
    Real,
    StrOptions,
    validate_parameter_constraints,
)


def _at_least(low: int) -> list:
    return [Interval(Integral, low, None, closed="left")]


CONSTRAINTS = {
    "n_samples": _at_least(1),
    "n_features": _at_least(1),
    "n_tasks": _at_least(1),
    "n_latent": _at_least(1),
    "n_groups": _at_least(1),
    "n_few_labels": _at_least(0),
    "task_groups": ["array-like", None],
    "length_scale": [Interval(Real, 0, None, closed="neither"), None],
    "noise": [Interval(Real, 0, None, closed="left")],
    "missing_fraction": [Interval(Real, 0, 1, closed="left")],
    "high_fidelity_fraction": [Interval(Real, 0, 1, closed="right")],
    "few_labels_fraction": [Interval(Real, 0, 1, closed="neither")],
    "conflict": [Interval(Real, 0, 1, closed="both")],
    "label_noise": ["array-like"],
    "scale_range": ["array-like"],
    "noise_range": ["array-like"],
    "length_scale_range": ["array-like"],
    "fidelity": [StrOptions({"high", "low"})],
    "function": [StrOptions({"forrester", "currin", "borehole"})],
    "random_state": ["random_state"],
    "return_function": ["boolean"],
    "return_groups": ["boolean"],
    "return_X_y": ["boolean"],
    "as_frame": ["boolean"],
}


def check_params(caller: str, **params) -> None:
    """scikit-learn's ``InvalidParameterError`` (a ValueError and a TypeError) on a bad value."""
    validate_parameter_constraints(CONSTRAINTS, params, caller_name=caller)


def check_range(
    value, name: str, low: float, high: float, *, open_low: bool = False
) -> tuple[float, float]:
    """A pair ``(a, b)`` of finite numbers, ``low <= a <= b <= high`` (``low < a``: open_low)."""
    try:
        a, b = (float(v) for v in value)
    except (TypeError, ValueError):
        a = b = np.nan
    above = a > low if open_low else a >= low
    if not (np.isfinite(a) and np.isfinite(b) and above and a <= b <= high):
        sign = "<" if open_low else "<="
        raise ValueError(
            f"{name} must be a pair (smallest, largest) of finite numbers with "
            f"{low} {sign} smallest <= largest <= {high}; got {value!r}."
        )
    return a, b


def check_groups(task_groups) -> np.ndarray:
    """Group labels: a non-empty 1-D array of non-negative integers."""
    groups = np.asarray(task_groups)
    integral = groups.dtype.kind in "iu" or (
        groups.dtype.kind == "f" and np.all(np.isfinite(groups)) and np.all(groups == groups // 1)
    )
    if groups.ndim != 1 or groups.size == 0 or not integral or np.any(groups < 0):
        raise ValueError(
            "task_groups must be a non-empty sequence of non-negative integers, one group "
            f"label per task (e.g. [0, 0, 1]); got {task_groups!r}."
        )
    return groups.astype(int)


def check_inputs(x, name: str, *, n_features: int | None, bounds=None) -> np.ndarray:
    """Finite float inputs of shape ``(n, n_features)`` (``(n,)`` when ``n_features`` is None).

    With ``bounds`` (shape ``(n_features, 2)``), every input must lie in its
    interval, up to rounding.
    """
    try:
        x = check_array(x, ensure_2d=False, dtype=np.float64, input_name="x")
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"{name}: {exc}") from None
    if n_features is None:
        if x.ndim == 2 and x.shape[1] == 1:
            x = x[:, 0]
        if x.ndim != 1:
            raise ValueError(
                f"{name} has one input: pass x of shape (n,) or (n, 1); got {x.shape}."
            )
        return x
    if x.ndim != 2 or x.shape[1] != n_features:
        raise ValueError(
            f"{name} has {n_features} inputs: pass x of shape (n, {n_features}); got {x.shape}."
        )
    if bounds is not None:
        slack = 1e-12 * (bounds[:, 1] - bounds[:, 0])
        outside = (x < bounds[:, 0] - slack) | (x > bounds[:, 1] + slack)
        if outside.any():
            row, col = np.argwhere(outside)[0]
            raise ValueError(
                f"{name} is defined on {bounds.tolist()}; x[{row}, {col}] = {float(x[row, col])!r} "
                f"lies outside [{bounds[col, 0]}, {bounds[col, 1]}]."
            )
    return x
