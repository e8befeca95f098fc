"""Batch diversity: the dynamic distance threshold and the exclusion box around points.

The distance rule (one for every strategy that excludes points): two inputs
are *close* when, in the model's standardised inputs, they differ by less
than ``thr_d`` along **every** dimension ``d`` (a box, i.e. the Chebyshev
distance after dividing dimension ``d`` by ``thr_d``). The half-widths
``thr_d`` follow the dynamic rule of Xiong et al. (2025), computed from the
standardised labelled inputs (:func:`distance_thresholds`). The rule is
homogeneous of degree two in the units of a column, which is why it must
never see raw inputs: on raw inputs, multiplying a column by 1000 multiplies
its half-width by a million. Along a dimension where ``thr_d`` is zero (the
labelled inputs are constant along it, fewer than two rows are labelled, or
``alpha=0``), only an exact tie counts as close: such a dimension neither
switches exclusion off nor makes rows that differ only along it duplicates.
"""

from __future__ import annotations

import numpy as np
from sklearn.neighbors import KDTree

from .._validation import check_positive_float

#: Half-widths below this (in standardised units) count as zero: only exact ties are close.
MIN_THRESHOLD = 1e-12


def mean_abs_pairwise_difference(values) -> np.ndarray | float:
    """``mean_{i < j} |v_i - v_j|`` per column, in O(n log n) from sorted values.

    For sorted ``v_(1) <= ... <= v_(n)`` the sum over pairs is
    ``sum_i (2 i - n - 1) v_(i)``.

    Parameters
    ----------
    values : array-like of shape (n,) or (n, d)
        Values of one variable, or points.

    Returns
    -------
    mean_difference : float or ndarray of shape (d,)
        Mean absolute difference over all pairs (per column for 2-D
        ``values``); 0 for fewer than two values.

    Examples
    --------
    >>> import numpy as np
    >>> from sk_mtbnn.active_learning import mean_abs_pairwise_difference
    >>> float(mean_abs_pairwise_difference([0.0, 1.0, 3.0]))  # (1 + 3 + 2) / 3
    2.0
    >>> mean_abs_pairwise_difference(np.array([[0.0, 0.0], [1.0, 2.0], [3.0, 4.0]]))
    array([2.        , 2.66666667])
    """
    v = np.asarray(values, dtype=float)
    if v.ndim not in (1, 2):
        raise ValueError(f"values must be 1-D or 2-D; got an array of shape {v.shape}.")
    v_sorted = np.sort(v.reshape(len(v), -1), axis=0)
    n = len(v_sorted)
    if n < 2:
        out = np.zeros(v_sorted.shape[1])
    else:
        coef = 2 * np.arange(1, n + 1) - n - 1
        out = coef @ v_sorted / (n * (n - 1) / 2)
    return float(out[0]) if v.ndim == 1 else out


def distance_thresholds(X_labelled, alpha: float = 0.02) -> np.ndarray:
    """Per-dimension half-widths of the exclusion box: the seed's dynamic rule.

    ``thr_d = alpha * dbar_d * (dbar_d / (R_d + dbar_d)) * R_d`` with ``dbar_d``
    the mean pairwise distance of the labelled inputs along dimension ``d``
    and ``R_d`` their range (Xiong et al. 2025); zero where the labelled
    inputs are constant along ``d`` or fewer than two. The query strategies
    apply it to the model's standardised inputs, where their choices do not
    depend on the units of a column.

    Parameters
    ----------
    X_labelled : array-like of shape (n, d)
        Labelled inputs.
    alpha : float, default=0.02
        Scale of the threshold (the seed's default is 0.02); non-negative.

    Returns
    -------
    thresholds : ndarray of shape (d,)
        Half-widths of the exclusion box along each dimension.

    Examples
    --------
    >>> import numpy as np
    >>> from sk_mtbnn.active_learning import distance_thresholds
    >>> distance_thresholds(np.array([[0.0], [1.0], [3.0]]), alpha=0.02).round(4)
    array([0.048])
    """
    alpha = check_positive_float(alpha, "alpha", allow_zero=True)
    S = np.asarray(X_labelled, dtype=float)
    if S.ndim != 2:
        raise ValueError(f"X_labelled must be 2-D (n, d); got an array of shape {S.shape}.")
    if len(S) < 2:
        return np.zeros(S.shape[1])
    dbar = mean_abs_pairwise_difference(S)
    span = np.ptp(S, axis=0)
    thr = np.zeros(S.shape[1])
    np.divide(alpha * dbar * dbar * span, span + dbar, out=thr, where=span > 0)
    return thr


class ExclusionBox:
    """Which pool rows are close (module docstring) to a labelled or an already picked row.

    Parameters
    ----------
    Z : ndarray of shape (m, d)
        Standardised pool inputs.
    Z_labelled : ndarray of shape (n, d) or None
        Standardised labelled inputs.
    thresholds : ndarray of shape (d,)
        Half-widths in standardised units.
    """

    def __init__(self, Z: np.ndarray, Z_labelled: np.ndarray | None, thresholds: np.ndarray):
        thresholds = np.asarray(thresholds, dtype=float)
        self._box = thresholds > MIN_THRESHOLD
        self._thr = thresholds[self._box]
        self._Z = Z
        self._tree = None
        if Z_labelled is not None and len(Z_labelled):
            self._ties = [np.unique(column) for column in Z_labelled[:, ~self._box].T]
            labelled = self._labelled_coordinates(Z_labelled)
            self._tree = KDTree(labelled, metric="chebyshev")

    def _labelled_coordinates(self, Z):
        """Coordinates in which "close to a labelled row" is a Chebyshev distance < 1.

        Box dimensions are divided by their half-widths. Along a zero-width
        dimension a value becomes twice its rank among the labelled values,
        or -2 if no labelled value equals it: then equal values coincide and
        any other pair is at least 2 apart.
        """
        codes = []
        for values, column in zip(self._ties, Z[:, ~self._box].T):
            rank = np.searchsorted(values, column).clip(max=len(values) - 1)
            codes.append(np.where(values[rank] == column, 2.0 * rank, -2.0))
        return np.column_stack([Z[:, self._box] / self._thr, *codes])

    def excluded(self, rows: np.ndarray, picked: list[int]) -> np.ndarray:
        """Boolean mask: ``rows`` close to a labelled row or to a row of ``picked``."""
        Z = self._Z[rows]
        out = np.zeros(len(Z), dtype=bool)
        if self._tree is not None:
            out |= self._tree.query(self._labelled_coordinates(Z), k=1)[0][:, 0] < 1.0
        if picked:
            diff = np.abs(Z[:, None, :] - self._Z[picked][None, :, :])
            inside = (diff[..., self._box] < self._thr).all(-1)
            out |= (inside & (diff[..., ~self._box] == 0).all(-1)).any(1)
        return out


def first_allowed(rows, picked, box, start=0, block=256) -> int | None:
    """Position in ``rows`` (from ``start``) of the first row neither picked nor excluded."""
    rows = np.asarray(rows, dtype=int)
    for begin in range(start, len(rows), block):
        part = rows[begin : begin + block]
        ok = ~np.isin(part, picked)
        if box is not None and ok.any():
            ok[ok] = ~box.excluded(part[ok], picked)
        if ok.any():
            return begin + int(np.argmax(ok))
    return None


def extend_picks(picked: list[int], rows, n: int, box: ExclusionBox | None) -> None:
    """Append rows, in the order of ``rows``, that are neither picked nor excluded, up to ``n``.

    Exclusion only grows as rows are picked, so the scan never goes back.
    """
    position = 0
    while len(picked) < n:
        position = first_allowed(rows, picked, box, position)
        if position is None:
            return
        picked.append(int(rows[position]))
        position += 1


def diverse_top(order, n: int, box: ExclusionBox) -> np.ndarray:
    """The first ``n`` rows of ``order`` that are not close to labelled or earlier picks.

    When fewer than ``n`` rows lie outside the exclusion, the rest of the
    batch is filled with distinct rows in order, so that ``n`` rows are
    always returned.
    """
    picked: list[int] = []
    extend_picks(picked, order, n, box)
    extend_picks(picked, order, n, None)
    return np.array(picked, dtype=int)


def exclusion_box(Z: np.ndarray, Z_labelled: np.ndarray | None, alpha: float) -> ExclusionBox:
    """The box of :func:`distance_thresholds` (standardised labelled inputs) around points."""
    if Z_labelled is None:
        return ExclusionBox(Z, None, np.zeros(Z.shape[1]))
    return ExclusionBox(Z, Z_labelled, distance_thresholds(Z_labelled, alpha))
