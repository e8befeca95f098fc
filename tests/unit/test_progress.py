"""verbose=2 draws one progress bar for the whole fit, with epochs and losses."""

import numpy as np

from sk_mtbnn import SparseMultiTaskBNNRegressor


def test_one_bar_for_the_whole_fit(capsys):
    rng = np.random.RandomState(0)
    X = rng.rand(60, 2)
    est = SparseMultiTaskBNNRegressor(
        hidden_layer_sizes=(8,), max_epochs=20, verbose=2, regime="network", random_state=0
    )
    est.fit(X, X.sum(1))
    err = capsys.readouterr().err
    bars = [line for line in err.replace("\r", "\n").split("\n") if line.startswith("fit:")]
    assert bars and "20/20" in bars[-1] and "train_loss" in bars[-1]
    # One bar: every redraw is of the same "fit:" bar, no bar per epoch of batches.
    assert err.count("\n") <= 2
