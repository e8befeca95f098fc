"""Calibration of a classifier's probabilities."""

from __future__ import annotations

import numpy as np

from ._validation import as_array, check_params, first_bad


def _check_class_indices(y: np.ndarray, n_classes: int) -> np.ndarray:
    """The labelled entries of ``y`` as class indices ``0..n_classes-1``."""
    labelled = ~np.isnan(y)
    if not labelled.any():
        raise ValueError("y_true has no label (every entry is NaN): nothing to score.")
    with np.errstate(invalid="ignore"):
        bad = labelled & ((y != np.round(y)) | (y < 0) | (y >= n_classes))
    if bad.any():
        raise ValueError(
            f"y_true must hold class indices 0..{n_classes - 1} (the columns of y_proba), "
            f"or NaN for missing; got {first_bad(bad, y)}. Encode class labels with "
            "sklearn.preprocessing.LabelEncoder."
        )
    return y[labelled].astype(int)


def _check_probabilities(y_proba) -> np.ndarray:
    p = as_array(y_proba, "y_proba")
    bad = ~np.isfinite(p) | (p < 0) | (p > 1)
    if bad.any() or (p.ndim == 2 and p.shape[1] < 2):
        got = first_bad(bad, p) if bad.any() else f"{p.shape[1]} column"
        raise ValueError(
            "y_proba must hold probabilities in [0, 1], shape (n,) for a binary task or "
            f"(n, n_classes) with n_classes >= 2; got {got}. Pass predict_proba's output, "
            "not logits or decision_function scores."
        )
    if p.ndim == 1:
        p = np.column_stack([1 - p, p])
    # float32 softmax outputs sum to one within a few 1e-7 per class; 1e-4 flags
    # unnormalised scores without rejecting rounding errors.
    off = np.abs(p.sum(1) - 1) > 1e-4
    if off.any():
        row = int(np.flatnonzero(off)[0])
        raise ValueError(
            f"every row of y_proba must sum to 1; row {row} sums to {float(p[row].sum())!r}. "
            "Normalise the rows, or pass the probabilities of every class."
        )
    return p


def expected_calibration_error(y_true, y_proba, *, n_bins=10):
    """Expected calibration error of a classifier's top-label confidence.

    Predictions are binned by their highest probability; ECE is the
    bin-size-weighted mean of ``|accuracy - confidence|`` (Guo et al. 2017).

    Parameters
    ----------
    y_true : array-like of shape (n,)
        True class indices ``0..C-1`` (NaN = missing).
    y_proba : array-like of shape (n, C) or (n,)
        Class probabilities, rows summing to one; a 1-D array is the
        positive-class probability of a binary task.
    n_bins : int, default=10
        Number of equal-width confidence bins, at least 1.

    Returns
    -------
    ece : float
        Between 0 and 1; lower is better.

    Examples
    --------
    >>> expected_calibration_error([1, 0], [[0.0, 1.0], [1.0, 0.0]])
    0.0
    """
    check_params("expected_calibration_error", n_bins=n_bins)
    p = _check_probabilities(y_proba)
    y = as_array(y_true, "y_true", max_dim=1)
    if len(y) != len(p):
        raise ValueError(
            f"y_true and y_proba must have one row per sample; got {len(y)} and {len(p)} rows."
        )
    p = p[~np.isnan(y)]
    y = _check_class_indices(y, p.shape[1])
    confidence = p.max(1)
    correct = (p.argmax(1) == y).astype(float)
    bins = np.minimum((confidence * n_bins).astype(int), n_bins - 1)
    ece = 0.0
    for b in np.unique(bins):
        in_bin = bins == b
        ece += in_bin.mean() * abs(correct[in_bin].mean() - confidence[in_bin].mean())
    return float(ece)
