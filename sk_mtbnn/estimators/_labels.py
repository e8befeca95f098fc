"""Class labels of multi-task classification: missing entries and label types."""

from __future__ import annotations

import math

import numpy as np
from sklearn.utils.multiclass import check_classification_targets


def missing_mask(column: np.ndarray, missing_label) -> np.ndarray:
    """Entries equal to ``missing_label`` (NaN and None count as missing for NaN)."""
    if isinstance(missing_label, float) and math.isnan(missing_label):
        if column.dtype.kind == "f":
            return np.isnan(column)
        return np.array(
            [v is None or (isinstance(v, float) and math.isnan(v)) for v in column], dtype=bool
        )
    return np.asarray(column == missing_label, dtype=bool)


def label_array(y) -> np.ndarray:
    """``y`` as a 2-D array, one column per task (values and types as given)."""
    y_arr = np.asarray(y)
    if y_arr.ndim == 1:
        y_arr = y_arr[:, None]
    if y_arr.ndim != 2:
        raise ValueError(
            f"y must have shape (n_samples,) or (n_samples, n_tasks); got {y_arr.shape}."
        )
    return y_arr


def task_labels(column: np.ndarray, missing: np.ndarray, where: str, missing_label):
    """The labels of one task, with their own type."""
    labels = column[~missing]
    if labels.dtype == object:
        # Let numpy infer the labels' own type (ints, floats, strings).
        labels = np.array(labels.tolist())
    check_classification_targets(labels)
    return labels
