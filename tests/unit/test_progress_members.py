"""verbose=2 draws one bar over the ensemble members and one over the pruning rounds."""

import numpy as np

from sk_mtbnn import IterativeMagnitudePruning, SparseMultiTaskBNNRegressor


def _bars(err: str, desc: str) -> list[str]:
    return [line for line in err.replace("\r", "\n").split("\n") if line.startswith(desc)]


def _data():
    rng = np.random.RandomState(0)
    X = rng.rand(40, 2)
    return X, np.column_stack([X.sum(1), X[:, 0] - X[:, 1]])


def _ensemble(verbose):
    return SparseMultiTaskBNNRegressor(
        hidden_layer_sizes=(4,),
        max_epochs=3,
        n_estimators=3,
        regime="network",
        verbose=verbose,
        random_state=0,
    )


def test_one_bar_over_the_ensemble_members(capsys):
    X, Y = _data()
    est = _ensemble(verbose=2).fit(X, Y)
    captured = capsys.readouterr()
    bars = _bars(captured.err, "ensemble:")
    assert bars and "3/3" in bars[-1] and "member" in bars[-1]
    assert not _bars(captured.err, "fit:")  # the members are silent at verbose=2
    assert captured.err.count("\n") <= 2  # one bar, redrawn in place
    assert captured.out == ""  # no epoch tables
    # The bar does not change the fit.
    quiet = _ensemble(verbose=0).fit(X, Y)
    assert capsys.readouterr().err == ""
    np.testing.assert_array_equal(est.predict(X), quiet.predict(X))


def test_verbose_3_adds_each_members_bar(capsys):
    X, Y = _data()
    _ensemble(verbose=3).fit(X, Y)
    err = capsys.readouterr().err
    assert _bars(err, "ensemble:") and len({b for b in _bars(err, "fit:") if "3/3" in b}) >= 1
    assert err.count("fit:") >= 3  # a bar per member


def test_one_bar_over_the_pruning_rounds(capsys):
    X, Y = _data()
    base = SparseMultiTaskBNNRegressor(hidden_layer_sizes=(8,), max_epochs=3, n_estimators=1)
    imp = IterativeMagnitudePruning(base, n_rounds=2, verbose=2, random_state=0).fit(X, Y)
    captured = capsys.readouterr()
    bars = _bars(captured.err, "pruning:")
    total = 2 * (2 + 1) + 1  # per task the dense training and 2 rounds, then the final one
    assert bars and f"{total}/{total}" in bars[-1] and "round" in bars[-1]
    assert "final joint training" in bars[-1]  # (tqdm redraws intermediate states by time)
    assert captured.err.count("\n") <= 2 and captured.out == ""
    assert len(imp.history_) == 2 * 3 and "_progress" not in vars(imp)


def test_pruning_verbose_1_prints_lines_without_bar(capsys):
    X, Y = _data()
    base = SparseMultiTaskBNNRegressor(hidden_layer_sizes=(8,), max_epochs=3, n_estimators=1)
    IterativeMagnitudePruning(base, n_rounds=1, verbose=1, random_state=0).fit(X, Y)
    captured = capsys.readouterr()
    assert captured.out.count("validation score") == 4 and "pruning:" not in captured.err


def test_pruning_refuses_a_verbose_that_is_not_a_level():
    import pytest

    X, Y = _data()
    base = SparseMultiTaskBNNRegressor(hidden_layer_sizes=(8,), max_epochs=3, n_estimators=1)
    with pytest.raises(ValueError, match="verbose must be a non-negative integer"):
        IterativeMagnitudePruning(base, verbose="x").fit(X, Y)
