"""Multi-fidelity test functions, and their two-task problems with missing labels."""

from __future__ import annotations

import numpy as np
from sklearn.utils import check_random_state

from .._docstrings import fill_doc
from ._validation import check_inputs, check_params


@fill_doc
def forrester(x, fidelity="high"):
    """Forrester et al. (2008) function on [0, 1] and its low-fidelity version.

    ``f_high = (6x - 2)^2 sin(12x - 4)``, ``f_low = 0.5 f_high + 10 (x - 0.5) - 5``.

    Parameters
    ----------
    x : array-like of shape (n,) or (n, 1)
        Finite inputs, usually in [0, 1] (the formula holds on the real line).
    %(fidelity_sections)s

    Examples
    --------
    >>> forrester([0.5]).round(4), forrester([0.5], "low").round(4)
    (array([0.9093]), array([-4.5454]))
    """
    check_params("forrester", fidelity=fidelity)
    x = check_inputs(x, "forrester", n_features=None)
    high = (6 * x - 2) ** 2 * np.sin(12 * x - 4)
    return high if fidelity == "high" else 0.5 * high + 10 * (x - 0.5) - 5


@fill_doc
def currin(x, fidelity="high"):
    """Currin et al. (1988) exponential function on [0, 1]^2, two fidelities.

    The low fidelity averages the high one over four shifted points
    (Xiong, Qian & Wu 2013).

    Parameters
    ----------
    x : array-like of shape (n, 2)
        Inputs in the unit square (its domain: ``exp(-1 / (2 x2))`` explodes
        for ``x2 < 0``).
    %(fidelity_sections)s

    Examples
    --------
    >>> import numpy as np
    >>> currin(np.array([[0.5, 0.5]])).round(4)
    array([7.4051])
    """
    check_params("currin", fidelity=fidelity)
    x = check_inputs(x, "currin", n_features=2, bounds=np.array([[0.0, 1.0], [0.0, 1.0]]))

    def high(x1, x2):
        with np.errstate(divide="ignore"):
            factor = 1 - np.exp(-1 / (2 * x2))
        poly = (2300 * x1**3 + 1900 * x1**2 + 2092 * x1 + 60) / (
            100 * x1**3 + 500 * x1**2 + 4 * x1 + 20
        )
        return factor * poly

    x1, x2 = x[:, 0], x[:, 1]
    if fidelity == "high":
        return high(x1, x2)
    lo2 = np.maximum(0.0, x2 - 0.05)
    return 0.25 * (
        high(x1 + 0.05, x2 + 0.05)
        + high(x1 + 0.05, lo2)
        + high(x1 - 0.05, x2 + 0.05)
        + high(x1 - 0.05, lo2)
    )


#: Input ranges of the borehole function (rw, r, Tu, Hu, Tl, Hl, L, Kw).
BOREHOLE_BOUNDS = np.array(
    [
        [0.05, 0.15],
        [100.0, 50000.0],
        [63070.0, 115600.0],
        [990.0, 1110.0],
        [63.1, 116.0],
        [700.0, 820.0],
        [1120.0, 1680.0],
        [9855.0, 12045.0],
    ]
)


@fill_doc
def borehole(x, fidelity="high"):
    """Borehole water-flow function (Harper & Gupta 1983) in physical units, two fidelities.

    The low fidelity (Xiong, Qian & Wu 2013) replaces ``2 pi`` by 5 and the
    constant 1 of the denominator by 1.5.

    Parameters
    ----------
    x : array-like of shape (n, 8)
        ``rw, r, Tu, Hu, Tl, Hl, L, Kw`` within ``BOREHOLE_BOUNDS`` (its domain).
    %(fidelity)s

    Returns
    -------
    f : ndarray of shape (n,)
        Water flow in m^3/year.

    Examples
    --------
    >>> from sk_mtbnn.datasets._synthetic import BOREHOLE_BOUNDS
    >>> centre = BOREHOLE_BOUNDS.mean(axis=1, keepdims=True).T
    >>> borehole(centre).round(2)
    array([70.87])
    """
    check_params("borehole", fidelity=fidelity)
    x = check_inputs(x, "borehole", n_features=8, bounds=BOREHOLE_BOUNDS)
    rw, r, tu, hu, tl, hl, length, kw = x.T
    log_ratio = np.log(r / rw)
    coef, const = (2 * np.pi, 1.0) if fidelity == "high" else (5.0, 1.5)
    return (
        coef
        * tu
        * (hu - hl)
        / (log_ratio * (const + 2 * length * tu / (log_ratio * rw**2 * kw) + tu / tl))
    )


_MULTIFIDELITY = {
    "forrester": (forrester, np.array([[0.0, 1.0]])),
    "currin": (currin, np.array([[0.0, 1.0], [0.0, 1.0]])),
    "borehole": (borehole, BOREHOLE_BOUNDS),
}


def make_multifidelity(
    function="forrester",
    n_samples=200,
    *,
    high_fidelity_fraction=0.25,
    noise=0.0,
    random_state=None,
):
    """Two-fidelity test function as a two-task problem with missing labels.

    Task 0 is the expensive high fidelity, labelled on a random
    ``high_fidelity_fraction`` of the rows; task 1 the cheap low fidelity,
    labelled everywhere. Inputs are uniform over the function's domain.

    Parameters
    ----------
    function : {"forrester", "currin", "borehole"}, default="forrester"
        The test function (1, 2 and 8 inputs).
    n_samples : int, default=200
        Number of rows.
    high_fidelity_fraction : float, default=0.25
        Fraction of rows with a high-fidelity label (the rest are NaN), in
        (0, 1]; at least one row must get one.
    noise : float, default=0.0
        Standard deviation of Gaussian noise, relative to each fidelity's
        standard deviation over the rows; non-negative.
    random_state : int, RandomState instance or None, default=None
        Seeds inputs, labelling and noise.

    Returns
    -------
    X : ndarray of shape (n_samples, n_features)
    y : ndarray of shape (n_samples, 2)
        ``y[:, 0]`` high fidelity (NaN where unlabelled), ``y[:, 1]`` low.

    Examples
    --------
    >>> from sk_mtbnn.datasets import make_multifidelity
    >>> X, y = make_multifidelity("borehole", 100, random_state=0)
    >>> X.shape, y.shape, int(np.isnan(y[:, 0]).sum())
    ((100, 8), (100, 2), 75)
    """
    check_params(
        "make_multifidelity",
        function=function,
        n_samples=n_samples,
        high_fidelity_fraction=high_fidelity_fraction,
        noise=noise,
        random_state=random_state,
    )
    n_high = round(high_fidelity_fraction * n_samples)
    if n_high == 0:
        raise ValueError(
            f"high_fidelity_fraction={high_fidelity_fraction!r} of n_samples={n_samples} rounds "
            "to no high-fidelity label; raise either."
        )
    fn, bounds = _MULTIFIDELITY[function]
    rng = check_random_state(random_state)
    X = bounds[:, 0] + rng.uniform(size=(n_samples, len(bounds))) * (bounds[:, 1] - bounds[:, 0])
    y = np.column_stack([fn(X, "high"), fn(X, "low")])
    if noise:
        y = y + noise * y.std(0) * rng.standard_normal(y.shape)
    unlabelled = rng.permutation(n_samples)[n_high:]
    y[unlabelled, 0] = np.nan
    return X, y
