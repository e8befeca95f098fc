"""Ensembles validate X, y and the fit parameters before dispatching their members.

Bad input raises in the calling process, with the exception of a single fit, instead
of inside a joblib worker (whose re-raised error carries the worker's traceback as its
cause); the early check draws nothing from ``random_state`` and leaves the user's
arrays as they were.
"""

import re

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_array_equal

import sk_mtbnn.estimators._ensemble as ensemble_module
from sk_mtbnn import BayesAggMTLRegressor, SparseMultiTaskBNNRegressor
from sk_mtbnn.estimators._regression import member_seeds

SMALL = {"hidden_layer_sizes": (8,), "max_epochs": 5, "random_state": 0}


def data():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(30, 2))
    return X, X[:, 0] + 0.1 * rng.normal(size=30)


def bad_input(case: str):
    X, y = data()
    if case == "nan_in_X":
        X[2, 1] = np.nan
    elif case == "short_y":
        y = y[:-1]
    elif case == "string_y":
        y = np.array(["a"] * len(X), dtype=object)
    else:  # duplicate column names
        X = pd.DataFrame(X, columns=["a", "a"])
    return X, y


def raised(make, X, y, **fit_params) -> BaseException:
    with pytest.raises((ValueError, TypeError)) as info:
        make().fit(X, y, **fit_params)
    return info.value


@pytest.mark.parametrize("case", ["nan_in_X", "short_y", "string_y", "duplicate_names"])
@pytest.mark.parametrize("cls", [BayesAggMTLRegressor, SparseMultiTaskBNNRegressor])
def test_ensemble_raises_as_a_single_fit(cls, case):
    X, y = bad_input(case)
    single = raised(lambda: cls(**SMALL, n_estimators=1), X, y)
    parallel = raised(lambda: cls(**SMALL, n_estimators=3, n_jobs=2), X, y)
    assert type(parallel) is type(single)
    assert str(parallel) == str(single)
    # Raised in a loky worker, joblib re-raises the same type and message with the
    # worker's traceback (a joblib _RemoteTraceback) as the cause: that was the defect.
    assert parallel.__cause__ is None and single.__cause__ is None


@pytest.mark.parametrize(
    "task_features, match",
    [
        (None, r"head_prior='gating' needs task features"),
        (np.ones((3, 2)), r"task_features has 3 rows but y has 1 tasks"),
    ],
)
def test_ensemble_checks_the_fit_parameters_first(task_features, match):
    X, y = data()

    def make(n_estimators):
        return SparseMultiTaskBNNRegressor(
            **SMALL, head_prior="gating", n_estimators=n_estimators, n_jobs=2
        )

    single = raised(lambda: make(1), X, y, task_features=task_features)
    parallel = raised(lambda: make(3), X, y, task_features=task_features)
    assert re.search(match, str(single))
    assert (type(parallel), str(parallel)) == (type(single), str(single))
    assert parallel.__cause__ is None


def test_no_member_is_dispatched_for_bad_input(monkeypatch):
    def no_dispatch(*args, **kwargs):
        raise AssertionError("a member was dispatched before the input was validated")

    monkeypatch.setattr(ensemble_module, "Parallel", no_dispatch)
    X, y = bad_input("nan_in_X")
    with pytest.raises(ValueError, match="Input X contains NaN"):
        BayesAggMTLRegressor(**SMALL, n_estimators=3).fit(X, y)


def test_early_check_draws_nothing_and_leaves_the_inputs_as_they_were():
    X, y = data()
    frame = pd.DataFrame(X, columns=["a", "b"]).astype({"b": object})
    frame_before, y_before = frame.copy(), y.copy()
    state = np.random.RandomState(0)
    model = SparseMultiTaskBNNRegressor(**{**SMALL, "random_state": state}, n_estimators=3)
    model.fit(frame, y)
    # The members' seeds are the first three draws of the user's generator, and the
    # generator has made exactly those draws (the check drew nothing).
    reference = np.random.RandomState(0)
    assert [m.random_state for m in model.estimators_] == list(member_seeds(reference, 3))
    assert state.randint(2**31 - 1) == reference.randint(2**31 - 1)
    pd.testing.assert_frame_equal(frame, frame_before)
    assert_array_equal(y, y_before)
