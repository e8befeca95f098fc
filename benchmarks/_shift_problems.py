"""Covariate-shift problems for ``benchmarks/shift.py``.

Every problem, for one seed, is a :class:`Problem`: training rows, an
in-distribution test set (a random hold-out of the training distribution, the
"random split" version of the problem) and one or more shifted test sets.

* group splits of real data: whole groups of rows (building shapes or
  orientations of ``enb``, element sets of ``mpea``) are left out as the
  shifted test set; of the rows of the remaining groups a random 20% is held
  out as the in-distribution test set, the rest trains;
* clustered synthetic tasks: training inputs in a few tight clusters, shifted
  test sets between the clusters and beyond them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from run import DATA
from run import mpea as mpea_random_split
from sklearn.model_selection import GroupShuffleSplit, train_test_split

from sk_mtbnn.datasets import load_enb, make_multitask_regression

ID_FRACTION = 0.2  # of the training groups' rows, held out as the in-distribution test set


@dataclass
class Problem:
    """One seed of one problem: the training data and the test sets."""

    X: np.ndarray
    y: np.ndarray
    X_id: np.ndarray
    y_id: np.ndarray
    shifted: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)


def _as_2d(y):
    return np.asarray(y, dtype=float).reshape(len(y), -1)


# ------------------------------------------------------------ group splits
def group_split(X, y, groups, test_groups, seed, name="left-out groups"):
    """Leave ``test_groups`` (a count or a fraction of the groups) out as the shifted set."""
    y = _as_2d(y)
    splitter = GroupShuffleSplit(n_splits=1, test_size=test_groups, random_state=seed)
    inside, outside = next(splitter.split(X, y, groups))
    train, held = train_test_split(inside, test_size=ID_FRACTION, random_state=seed)
    return Problem(X[train], y[train], X[held], y[held], {name: (X[outside], y[outside])})


def enb_shapes(seed):
    """enb leaving 3 of its 12 building shapes (unique X1..X5) out."""
    X, y = load_enb(return_X_y=True)
    shapes = np.unique(X[:, :5], axis=0, return_inverse=True)[1].ravel()
    return group_split(X, y, shapes, 3, seed, "3 of 12 shapes out")


def enb_orientations(seed):
    """enb leaving one of its 4 orientations (X6) out."""
    X, y = load_enb(return_X_y=True)
    return group_split(X, y, X[:, 5], 1, seed, "1 of 4 orientations out")


def mpea_element_sets(seed):
    """mpea leaving a quarter of the alloy families (sets of principal elements) out.

    The rows are those of ``run.py``'s mpea problem (rows with at least one
    label, log-transformed targets); its random split is undone by stacking
    the two halves, since the groups depend on the composition columns only.
    """
    X_tr, y_tr, X_te, y_te = mpea_random_split(0)
    X, y = np.vstack([X_tr, X_te]), np.vstack([y_tr, y_te])
    columns = [c for c in pd.read_csv(DATA / "mpea.csv", nrows=0).columns if c[:2] != "y_"]
    elements = [i for i, c in enumerate(columns) if c.isalpha()]  # chemical symbols
    families = ["-".join(np.array(columns)[elements][row > 0]) for row in X[:, elements]]
    groups = np.unique(families, return_inverse=True)[1]
    return group_split(X, y, groups, 0.25, seed, "25% of families out")


# --------------------------------------------------------- clustered tasks
def _noisy(function, X, noise, rng, missing=0.0):
    y = function(X)
    y = y + noise * rng.standard_normal(y.shape)
    if missing:
        y[rng.uniform(size=y.shape) < missing] = np.nan
    return y


def clustered(centres, spread, per_cluster, between, beyond, *, n_tasks, length_scale, seed):
    """Tasks of ``make_multitask_regression``, trained on clusters of inputs.

    ``between(rng, n)`` and ``beyond(rng, n)`` draw the shifted inputs.
    Training labels miss 30% of the entries at random; test labels are
    complete.
    """
    rng = np.random.RandomState(seed)
    _, _, function = make_multitask_regression(
        2,
        n_features=centres.shape[1],
        n_tasks=n_tasks,
        length_scale=length_scale,
        random_state=seed,
        return_function=True,
    )

    def around(n):
        picks = rng.randint(len(centres), size=n)
        return centres[picks] + spread * rng.standard_normal((n, centres.shape[1]))

    X = around(per_cluster * len(centres))
    X_id = around(200)
    shifted = {name: draw(rng, 200) for name, draw in (("between", between), ("beyond", beyond))}
    return Problem(
        X,
        _noisy(function, X, 0.1, rng, missing=0.3),
        X_id,
        _noisy(function, X_id, 0.1, rng),
        {name: (Xs, _noisy(function, Xs, 0.1, rng)) for name, Xs in shifted.items()},
    )


def _two_intervals(a, b):
    """Uniform draws from the union of the intervals ``a`` and ``b``."""

    def draw(rng, n):
        side = rng.uniform(size=(n, 1)) < 0.5
        return np.where(side, rng.uniform(*a, size=(n, 1)), rng.uniform(*b, size=(n, 1)))

    return draw


def clusters_1d(seed):
    """1-D, 2 tasks: 3 clusters at 0.2, 0.5, 0.8 (std 0.03, 40 rows each)."""
    return clustered(
        np.array([[0.2], [0.5], [0.8]]),
        0.03,
        40,
        _two_intervals((0.3, 0.4), (0.6, 0.7)),
        _two_intervals((-0.1, 0.1), (0.9, 1.1)),
        n_tasks=2,
        length_scale=0.2,
        seed=seed,
    )


def clusters_4d(seed, n_clusters=6, spread=0.05, per_cluster=60):
    """4-D, 3 tasks: 6 clusters with centres uniform on [0.2, 0.8]^4, 60 rows each.

    Between: midpoints of two distinct centres; beyond: a centre pushed to
    twice its distance from the centres' mean; both with the clusters' spread.
    """
    centres = np.random.RandomState(1000 + seed).uniform(0.2, 0.8, size=(n_clusters, 4))

    def between(rng, n):
        pairs = np.array([rng.choice(n_clusters, 2, replace=False) for _ in range(n)])
        mid = centres[pairs].mean(axis=1)
        return mid + spread * rng.standard_normal(mid.shape)

    def beyond(rng, n):
        far = 2 * centres[rng.randint(n_clusters, size=n)] - centres.mean(axis=0)
        return far + spread * rng.standard_normal(far.shape)

    return clustered(
        centres, spread, per_cluster, between, beyond, n_tasks=3, length_scale=0.4, seed=seed
    )


def clusters_4d_large(seed):
    """The 4-D problem with 500 rows per cluster (3,000, 30% of the labels missing).

    More labelled rows than the evidence regime takes (1,000): the default is the
    network regime, with its random-feature references.
    """
    return clusters_4d(seed, per_cluster=500)


PROBLEMS = {
    "synthetic 1-D, 3 clusters": clusters_1d,
    "synthetic 4-D, 6 clusters": clusters_4d,
    "synthetic 4-D, 6 clusters, 3,000 rows": clusters_4d_large,
    "enb, shapes": enb_shapes,
    "enb, orientations": enb_orientations,
    "mpea, alloy families": mpea_element_sets,
}
QUICK = ["synthetic 1-D, 3 clusters", "enb, shapes"]
