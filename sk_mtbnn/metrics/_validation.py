"""Input checks shared by the metrics: clear errors that name the argument."""

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

_CONSTRAINTS = {
    "multioutput": [StrOptions({"uniform_average", "raw_values"})],
    "level": [Interval(Real, 0, 1, closed="neither")],
    "n_levels": [Interval(Integral, 1, None, closed="left")],
    "n_bins": [Interval(Integral, 1, None, closed="left")],
    "higher_is_better": ["boolean", "array-like"],
}


def check_params(caller: str, **params) -> None:
    validate_parameter_constraints(_CONSTRAINTS, params, caller_name=caller)


def as_array(a, name: str, *, max_dim: int = 2) -> np.ndarray:
    """A float64 copy of ``a``; sklearn's ``check_array`` messages, prefixed by ``name``."""
    try:
        out = check_array(a, ensure_2d=False, dtype="numeric", ensure_all_finite=False)
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"{name}: {exc}") from None
    if out.ndim > max_dim:
        raise ValueError(f"{name} must be {max_dim}-D at most; got shape {out.shape}.")
    return out.astype(np.float64)


def first_bad(bad: np.ndarray, a: np.ndarray) -> str:
    index = tuple(int(i) for i in np.argwhere(bad)[0])
    return f"{float(a[index])!r} at index {index if len(index) > 1 else index[0]}"


_PREDICTION_HINT = "Mark a missing label with NaN in y_true, never in the predictions."


def check_finite(a: np.ndarray, name: str, *, positive: bool = False, hint: str = "") -> None:
    bad = ~np.isfinite(a) | (a <= 0) if positive else ~np.isfinite(a)
    if bad.any():
        need = "finite and strictly positive" if positive else "finite"
        raise ValueError(f"{name} must be {need} everywhere; got {first_bad(bad, a)}. {hint}")


def check_predictions(y_mean, y_std, y_true=None):
    """2-D float arrays of one shape: targets (NaN = missing), means and stds."""
    named = {"y_true": y_true, "y_mean": y_mean, "y_std": y_std}
    arrays = {name: as_array(a, name) for name, a in named.items() if a is not None}
    shapes = {name: a.shape for name, a in arrays.items()}
    columns = {name: a.reshape(len(a), -1) for name, a in arrays.items()}
    if len({a.shape for a in columns.values()}) > 1:
        raise ValueError(
            f"{', '.join(shapes)} must have one shape, (n_samples,) or (n_samples, n_tasks); "
            f"got {', '.join(f'{k} {v}' for k, v in shapes.items())}."
        )
    check_finite(arrays["y_mean"], "y_mean", hint=_PREDICTION_HINT)
    check_finite(arrays["y_std"], "y_std", positive=True, hint=_PREDICTION_HINT)
    if y_true is None:
        return None, columns["y_mean"], columns["y_std"]
    y = arrays["y_true"]
    if np.isinf(y).any():
        raise ValueError(
            f"y_true must not be infinite; got {first_bad(np.isinf(y), y)}. Mark a "
            "missing label with NaN."
        )
    labelled_columns(columns["y_true"])
    return columns["y_true"], columns["y_mean"], columns["y_std"]


def labelled_columns(y: np.ndarray) -> np.ndarray:
    labelled = ~np.isnan(y)
    empty = np.flatnonzero(~labelled.any(0))
    if empty.size:
        raise ValueError(
            f"y_true has no label (every entry is NaN) in column(s) {empty.tolist()}: "
            "drop those columns, or score only tasks with at least one label."
        )
    return labelled


def per_task(values, labelled, multioutput):
    """Mean of ``values`` over the labelled rows of each column, then over columns."""
    means = np.array([values[labelled[:, t], t].mean() for t in range(values.shape[1])])
    return means if multioutput == "raw_values" else float(means.mean())


def standardised(y_true, y_mean, y_std):
    y, mu, sd = check_predictions(y_mean, y_std, y_true)
    with np.errstate(invalid="ignore"):  # NaN targets stay NaN and are skipped
        return (y - mu) / sd, sd, ~np.isnan(y)
