"""Metrics for probabilistic predictions and multi-task comparisons.

Every regression metric skips NaN targets (missing labels), works on one
task (1-D arrays) or several (2-D arrays, one column per task, averaged over
tasks unless ``multioutput="raw_values"``), and returns floats. Inputs are
validated: a wrong shape, an empty array, a NaN or infinite prediction, a
non-positive standard deviation or a task without any label raises a
``ValueError`` that names the argument, instead of a NaN or a silently
wrong score.
"""

from ._classification import expected_calibration_error
from ._delta_m import delta_m
from ._regression import (
    crps_gaussian,
    gaussian_nll,
    interval_coverage,
    interval_width,
    neg_gaussian_nll_scorer,
    regression_calibration_error,
)

__all__ = [
    "crps_gaussian",
    "delta_m",
    "expected_calibration_error",
    "gaussian_nll",
    "interval_coverage",
    "interval_width",
    "neg_gaussian_nll_scorer",
    "regression_calibration_error",
]
