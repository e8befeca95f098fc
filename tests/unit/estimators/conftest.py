"""Shared checks of the estimator tests."""

import pickle

import numpy as np
import pytest

import sk_mtbnn


@pytest.fixture
def assert_sharing_round_trips(tmp_path):
    """A check: ``sk_mtbnn.save``/``load`` and pickle keep the sharing decisions and predictions.

    ``predict`` maps an estimator to a tuple of arrays (e.g. ``predict_proba`` of
    some rows); every copy must give them bitwise.
    """

    def check(estimator, predict):
        path = tmp_path / "model.skmtbnn"
        sk_mtbnn.save(estimator, path)
        for copy in (sk_mtbnn.load(path), pickle.loads(pickle.dumps(estimator))):
            np.testing.assert_array_equal(copy.shared_tasks_, estimator.shared_tasks_)
            np.testing.assert_array_equal(copy.sharing_gain_, estimator.sharing_gain_)
            for a, b in zip(predict(copy), predict(estimator)):
                np.testing.assert_array_equal(a, b)

    return check
