"""Pool scoring in chunks draws one progress bar when verbose asks for it (as fit's bar)."""

import numpy as np
import pytest

from sk_mtbnn import SparseMultiTaskBNNRegressor
from sk_mtbnn.active_learning import (
    ClusterEGLSampling,
    _model,
    egl,
    expected_gradient_length,
    max_std_sampling,
)
from sk_mtbnn.active_learning._model import pool_scores


def _bars(err: str, desc: str) -> list[str]:
    return [line for line in err.replace("\r", "\n").split("\n") if line.startswith(f"{desc}:")]


@pytest.fixture(scope="module")
def data():
    rng = np.random.RandomState(0)
    X = rng.uniform(-2, 2, size=(40, 2))
    return X, np.column_stack([np.sin(X[:, 0]), X[:, 1]])


def _fit(data, verbose=0, **params):
    X, y = data
    reg = SparseMultiTaskBNNRegressor(
        hidden_layer_sizes=(8,), max_epochs=10, regime="network", random_state=0, **params
    )
    return reg.fit(X, y).set_params(verbose=verbose)


def test_one_bar_over_the_chunks_of_a_large_pool(data, monkeypatch, capsys):
    reg = _fit(data, verbose=2)
    pool = np.random.RandomState(1).uniform(-3, 3, size=(55, 2))
    whole = pool_scores(reg, pool)  # one chunk (8192 rows): no bar
    assert capsys.readouterr().err == ""
    monkeypatch.setattr(_model, "SCORE_CHUNK", 10)
    chunked = pool_scores(reg, pool)
    err = capsys.readouterr().err
    bars = _bars(err, "score")
    assert bars and "55/55" in bars[-1]
    assert err.count("\n") <= 2  # every redraw is of the same bar
    # Chunking is exact: the rows are scored independently of each other.
    for a, b in zip(whole, chunked):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=0)  # float64 round-off only


def test_silent_unless_verbose_asks(data, monkeypatch, capsys):
    monkeypatch.setattr(_model, "SCORE_CHUNK", 10)
    pool = np.random.RandomState(1).uniform(-3, 3, size=(55, 2))
    quiet = _fit(data, verbose=1)  # 1 prints the epoch table in fit, no bars
    max_std_sampling(quiet, pool, n_instances=3, X_labelled=data[0])
    assert capsys.readouterr().err == ""
    ClusterEGLSampling(verbose=2)(quiet, pool, n_instances=3, X_labelled=data[0])
    assert _bars(capsys.readouterr().err, "score")  # the strategy's verbose overrides
    loud = _fit(data, verbose=2)
    ClusterEGLSampling(verbose=0)(loud, pool, n_instances=3, X_labelled=data[0])
    assert capsys.readouterr().err == ""
    with pytest.raises(ValueError, match="verbose must be None or an integer"):
        ClusterEGLSampling(verbose="yes")(loud, pool, n_instances=3, X_labelled=data[0])


def test_an_ensemble_counts_every_member_on_one_bar(data, monkeypatch, capsys):
    reg = _fit(data, verbose=2, n_estimators=2)
    monkeypatch.setattr(_model, "SCORE_CHUNK", 10)
    pool_scores(reg, np.zeros((25, 2)))
    err = capsys.readouterr().err
    bars = _bars(err, "score")
    assert bars and "50/50" in bars[-1] and err.count("\n") <= 2


def test_expected_gradient_length_bar(data, monkeypatch, capsys):
    reg = _fit(data, verbose=0)
    pool = np.random.RandomState(2).uniform(-3, 3, size=(12, 2))
    monkeypatch.setattr(egl, "EGL_CHUNK", 5)
    expected_gradient_length(reg, pool, n_pseudo_labels=2, verbose=2)
    bars = _bars(capsys.readouterr().err, "EGL")
    assert bars and "12/12" in bars[-1]
    expected_gradient_length(reg, pool, n_pseudo_labels=2)  # the model's verbose: 0
    assert capsys.readouterr().err == ""


def test_query_pool_dask_draws_one_bar_over_the_graph(data, monkeypatch, capsys):
    dask = pytest.importorskip("dask")
    da = pytest.importorskip("dask.array")
    from sk_mtbnn.distributed import predictive_std_score, query_pool_dask

    reg = _fit(data, verbose=2)
    monkeypatch.setattr(_model, "SCORE_CHUNK", 5)  # blocks of 15 rows: 3 chunks each
    pool = da.from_array(np.random.RandomState(3).uniform(-3, 3, (60, 2)), chunks=(15, 2))
    with dask.config.set(scheduler="synchronous"):
        quiet = query_pool_dask(reg, pool, n_instances=4)
        assert capsys.readouterr().err == ""  # no bar per block in the workers either
        idx = query_pool_dask(reg, pool, n_instances=4, verbose=2)
    err = capsys.readouterr().err
    bars = _bars(err, "score pool")
    assert bars and err.count("\n") <= 2
    done, total = bars[-1].split("|")[-1].split()[0].split("/")
    assert done == total  # every task of the graph counted
    local = predictive_std_score(reg, pool.compute(), verbose=0)
    np.testing.assert_array_equal(idx, quiet)
    np.testing.assert_array_equal(idx, np.argsort(-local, kind="stable")[:4])
