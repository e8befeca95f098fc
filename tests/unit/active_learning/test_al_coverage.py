"""Coverage clusters of cluster-EGL (k-means of the pool with the labelled rows)."""

import numpy as np
import pytest

from sk_mtbnn.active_learning import ClusterEGLSampling
from sk_mtbnn.active_learning._coverage import coverage_clusters, greedy_centres, pool_sample

CENTRES = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])


def three_groups(rng, sizes=(30, 20, 10)):
    """Tight groups of rows around three far-apart centres (a k-means with 3 clusters
    recovers them from any start with one row per group)."""
    parts = [c + 0.1 * rng.randn(n, 2) for c, n in zip(CENTRES, sizes)]
    return np.vstack(parts), np.repeat([0, 1, 2], sizes)


def test_uncovered_groups_come_first_ranked_by_their_summed_sigma():
    rng = np.random.RandomState(0)
    Z, group = three_groups(rng)
    # Group 2 is small but uncertain: its summed sigma (10 x 5) beats group 1's (20 x 1).
    sigma = np.where(group == 2, 5.0, 1.0)
    rank, k, _ = coverage_clusters(Z, sigma, n=2, Z_labelled=CENTRES[:1] + 0.05)
    assert k == 3  # one labelled row + two rows to query
    # The expected ranks per group: uncovered group 2 (mass 50), uncovered group 1 (20),
    # covered group 0 last. Exact: the groups are 10 apart with spread 0.1.
    np.testing.assert_array_equal(rank, np.array([2, 1, 0])[group])


def test_cold_start_spreads_the_batch_over_the_pool():
    rng = np.random.RandomState(1)
    Z, group = three_groups(rng, sizes=(40, 40, 40))
    sigma = np.where(group == 0, 3.0, 1.0)  # the paper's rule would stay in group 0
    rank, _, _ = coverage_clusters(Z, sigma, n=3)
    # Without labels the three clusters are the three groups: one rank per group.
    assert all(len(set(rank[group == g])) == 1 for g in range(3))
    assert len(set(rank.tolist())) == 3


def test_greedy_centres_against_a_hand_computed_case():
    Z = np.array([[0.0], [1.0], [4.0], [5.0]])
    sigma = np.array([1.0, 2.0, 0.0, 1.0])
    # First the highest sigma (row 1). Then d_min = [1, 0, 3, 4] / 4 + sigma / 2
    # = [0.75, 1, 0.75, 1.5]: row 3.
    np.testing.assert_array_equal(greedy_centres(Z, sigma, 2), [1, 3])
    # From a labelled row at 5: d_min = [5, 4, 1, 0] / 5 + sigma / 2 = [1.5, 1.8, 0.2, 0.5].
    np.testing.assert_array_equal(greedy_centres(Z, sigma, 1, np.array([[5.0]])), [1])


def test_pool_sample_is_evenly_spaced_and_complete_for_small_pools():
    np.testing.assert_array_equal(pool_sample(5, 10), np.arange(5))
    np.testing.assert_array_equal(pool_sample(5, None), np.arange(5))
    np.testing.assert_array_equal(pool_sample(9, 3), [0, 4, 8])


def test_a_large_pool_is_represented_by_evenly_spaced_rows(model, pool):
    X, _ = pool
    idx = ClusterEGLSampling(max_candidates=30)(model, X[40:], n_instances=4, X_labelled=X[:40])
    assert len(set(idx.tolist())) == 4
    assert np.isin(idx, pool_sample(360, 30)).all()
    with pytest.raises(ValueError, match="max_candidates"):
        ClusterEGLSampling(max_candidates=0)(model, X[40:], n_instances=2)


def test_the_papers_clusters_stay_available(model, pool):
    X, _ = pool
    strategy = ClusterEGLSampling(clusters="uncertain")
    idx = strategy(model, X[40:], n_instances=3, X_labelled=X[:40])
    assert len(set(idx.tolist())) == 3
    with pytest.raises(ValueError, match="clusters must be one of"):
        ClusterEGLSampling(clusters="kmeans")(model, X[40:])


def test_the_core_of_a_cluster_is_its_rows_nearest_the_centre():
    rng = np.random.RandomState(2)
    Z, group = three_groups(rng, sizes=(30, 20, 10))
    _, _, core = coverage_clusters(Z, np.ones(len(Z)), n=3, core_fraction=0.2)
    # The clusters are the groups, so the centres are the group means; the core of a
    # group of m rows is its ceil(0.2 m) rows nearest the mean: 6, 4 and 2 rows.
    for g, size in zip(range(3), (6, 4, 2)):
        rows = np.flatnonzero(group == g)
        dist = np.linalg.norm(Z[rows] - Z[rows].mean(0), axis=1)
        nearest = np.sort(rows[np.argsort(dist)[:size]])
        np.testing.assert_array_equal(np.sort(rows[core[rows]]), nearest)
