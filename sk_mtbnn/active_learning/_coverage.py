"""Coverage clusters of cluster-EGL: k-means of the pool together with the labelled rows.

After the representativeness-diversity rule of Wu (2019): the pool and the
labelled rows are clustered into ``n_labelled + n_instances`` clusters, so
that (roughly) every labelled row holds a cluster of its own and
``n_instances`` clusters of the pool are left without a labelled row. Those
*uncovered* clusters are the regions of the pool that no label represents;
each gives one row of the batch. Everything is computed in the model's
standardised inputs and is deterministic (no random initialisation), so the
clusters do not depend on the units of a column (``docs/algorithms.rst``,
cluster-based EGL).
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy.spatial.distance import cdist
from sklearn.cluster import KMeans
from sklearn.exceptions import ConvergenceWarning

#: Default ``max_candidates`` of cluster-EGL: a larger pool is represented by this many
#: evenly spaced rows, scored and clustered (a 5-member ensemble scores 10^6 rows in ~30 s).
COVERAGE_ROWS = 20_000


def pool_sample(n_rows: int, limit: int | None = COVERAGE_ROWS) -> np.ndarray:
    """Evenly spaced row indices, all rows when there are at most ``limit`` (or no limit)."""
    if limit is None or n_rows <= limit:
        return np.arange(n_rows)
    return np.unique(np.linspace(0, n_rows - 1, limit).round().astype(int))


def greedy_centres(Z, sigma, n, Z_fixed=None) -> np.ndarray:
    """``n`` rows of ``Z`` chosen by the centre rule of Xiong et al. (2025).

    Greedily the row maximising ``d_min / max d_min + sigma / max sigma``,
    ``d_min`` the distance to the rows of ``Z_fixed`` and the rows chosen so
    far (without ``Z_fixed`` the first is the row of highest ``sigma``).
    """
    s_max = sigma.max() if sigma.max() > 0 else 1.0
    if Z_fixed is None or len(Z_fixed) == 0:
        chosen = [int(np.argmax(sigma))]
        d_min = np.linalg.norm(Z - Z[chosen[0]], axis=1)
    else:
        chosen = []
        d_min = np.full(len(Z), np.inf)
        for start in range(0, len(Z_fixed), 256):
            d_min = np.minimum(d_min, cdist(Z, Z_fixed[start : start + 256]).min(1))
    while len(chosen) < min(n, len(Z)):
        d_max = d_min.max() if d_min.max() > 0 else 1.0
        value = d_min / d_max + sigma / s_max
        value[chosen] = -np.inf
        best = int(np.argmax(value))
        chosen.append(best)
        d_min = np.minimum(d_min, np.linalg.norm(Z - Z[best], axis=1))
    return np.array(chosen, dtype=int)


def coverage_clusters(Z, sigma, n, Z_labelled=None, core_fraction=1.0):
    """Clusters of the pool rows ``Z`` ranked for the batch: the uncovered ones first.

    k-means (Lloyd's algorithm) with ``k = n_labelled + n`` clusters on the
    pool rows and the distinct labelled rows, started from the labelled rows
    and ``n`` pool rows of :func:`greedy_centres`. Clusters holding no
    labelled row come first, by decreasing sum of ``sigma`` over their pool
    rows (the uncertainty no label represents), then the others in the same
    order.

    Parameters
    ----------
    Z : ndarray of shape (m, d)
        Standardised pool rows.
    sigma : ndarray of shape (m,)
        Their predictive standard deviations.
    n : int
        Rows to query.
    Z_labelled : ndarray of shape (n_labelled, d) or None
        Standardised labelled rows.

    core_fraction : float, default=1.0
        Fraction of each cluster's pool rows, those nearest its centre, in its core
        (rounded up: at least one row).

    Returns
    -------
    rank : ndarray of shape (m,)
        Position of each pool row's cluster in the ranking (0: first).
    n_clusters : int
        Number of ranked clusters.
    core : ndarray of shape (m,), bool
        The rows in their cluster's core (at least the row nearest the centre).
    """
    fixed = np.zeros((0, Z.shape[1])) if Z_labelled is None else np.unique(Z_labelled, axis=0)
    start = greedy_centres(Z, sigma, n, fixed)
    data = np.vstack([fixed, Z])
    k = min(len(fixed) + len(start), len(np.unique(data, axis=0)))
    init = np.vstack([fixed, Z[start]])[:k]
    with warnings.catch_warnings():  # fewer distinct points than clusters: some stay empty
        warnings.simplefilter("ignore", ConvergenceWarning)
        kmeans = KMeans(k, init=init, n_init=1).fit(data)
    labels = kmeans.labels_
    pool_labels = labels[len(fixed) :]
    dist = np.linalg.norm(Z - kmeans.cluster_centers_[pool_labels], axis=1)
    by_cluster = np.lexsort((dist, pool_labels))
    size = np.bincount(pool_labels, minlength=k)
    first = np.cumsum(size) - size
    within = np.empty(len(Z), dtype=int)  # 0 for the row nearest its centre, then 1, ...
    within[by_cluster] = np.arange(len(Z)) - first[pool_labels[by_cluster]]
    n_core = np.maximum(1, np.ceil(np.round(core_fraction * size, 6)))  # 0.2 x 30 is 6 rows
    core = within < n_core[pool_labels]
    covered = np.zeros(k, dtype=bool)
    covered[labels[: len(fixed)]] = True
    mass = np.bincount(pool_labels, weights=sigma, minlength=k)
    ranking = np.lexsort((-mass, covered))  # uncovered first, then by decreasing mass
    position = np.empty(k, dtype=int)
    position[ranking] = np.arange(k)
    return position[pool_labels], k, core
