"""sharing="auto": a task leaves the shared features only when its held-out labels say so."""

import pickle

import numpy as np
import pytest
import torch

from sk_mtbnn import SparseMultiTaskBNNRegressor
from sk_mtbnn.estimators._task_sharing import choose_private_tasks
from sk_mtbnn.nn.network import MultiTaskNetwork


def _useless_network(n_tasks):
    """A network whose shared features are constant: it can only predict a constant."""
    torch.manual_seed(0)
    net = MultiTaskNetwork(1, n_tasks, hidden_layer_sizes=(32, 32), private_features=True)
    with torch.no_grad():
        for layer in net.backbone.layers:
            layer.weight.zero_()
    return net


def test_a_task_that_shared_features_cannot_serve_goes_private():
    rng = np.random.RandomState(0)
    X = rng.uniform(-2, 2, size=(200, 1))
    signal = np.sin(2 * X[:, 0]) + 0.05 * rng.randn(200)
    noise = rng.randn(200)  # nothing to learn: no feature map can do clearly better
    Y = np.column_stack([signal, noise])
    net = _useless_network(2)
    decision = choose_private_tasks(net, X, Y, np.arange(150), np.arange(150, 200), seed=0)
    # Task 0: constant features against a sine with 5% noise -- the private bump features
    # gain about a nat per held-out label, far beyond the two standard errors required.
    assert decision.shared.tolist() == [False, True]
    assert decision.gain[0] < -0.5
    assert net.private_tasks().tolist() == [0]


def test_too_few_labels_keep_sharing():
    rng = np.random.RandomState(1)
    X = rng.uniform(-2, 2, size=(100, 1))
    Y = np.column_stack([np.sin(2 * X[:, 0]), np.sin(2 * X[:, 0])])
    Y[8:, 1] = np.nan  # 8 labels, none held out
    decision = choose_private_tasks(
        _useless_network(2), X, Y, np.arange(80), np.arange(80, 100), seed=0
    )
    assert decision.shared[1] and np.isnan(decision.gain[1])


def _related(n=120, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.uniform(-2, 2, size=(n, 2))
    f = np.sin(X[:, 0]) + 0.5 * X[:, 1]
    Y = np.column_stack([f, 2 * f + 1]) + 0.05 * rng.randn(n, 2)
    return X, Y


@pytest.mark.parametrize("regime", ["evidence", "network"])
def test_the_tasks_that_keep_sharing_are_fitted_as_with_sharing_all(regime):
    X, Y = _related()
    kwargs = {"regime": regime, "n_estimators": 1, "random_state": 0}
    if regime == "network":
        kwargs.update(hidden_layer_sizes=(16, 16), max_epochs=15)
    auto = SparseMultiTaskBNNRegressor(**kwargs).fit(X, Y)
    shared = SparseMultiTaskBNNRegressor(sharing="all", **kwargs).fit(X, Y)
    assert shared.shared_tasks_.all() and np.isnan(shared.sharing_gain_).all()
    keep = auto.shared_tasks_
    assert keep.any()
    # The decision only reads the fit, and each head is conditioned on its own task's
    # labels: a task that keeps sharing predicts exactly as with sharing="all".
    for a, b in zip(auto.predict(X[:7], return_std=True), shared.predict(X[:7], return_std=True)):
        np.testing.assert_array_equal(a[:, keep], b[:, keep])


def test_a_private_task_survives_pickling():
    rng = np.random.RandomState(2)
    X = rng.uniform(0, 1, size=(300, 2))
    smooth = X[:, 0] + 0.01 * rng.randn(300)
    wiggly = np.sin(25 * X[:, 1]) + 0.01 * rng.randn(300)
    Y = np.column_stack([smooth, smooth * 3, wiggly])
    reg = SparseMultiTaskBNNRegressor(n_estimators=1, random_state=0).fit(X, Y)
    assert reg.regime_ == "evidence"
    copy = pickle.loads(pickle.dumps(reg))
    np.testing.assert_array_equal(copy.predict(X[:9]), reg.predict(X[:9]))
    if reg.shared_tasks_.all():
        pytest.skip("no task left the shared features on this draw")
    private = np.flatnonzero(~reg.shared_tasks_)
    # A task that left did so on held-out evidence: its held-out gain is negative.
    assert (reg.sharing_gain_[private] < 0).all()


def test_a_known_noise_per_task_decides_as_each_tasks_scalar_alpha():
    rng = np.random.RandomState(0)
    X = rng.uniform(-2, 2, size=(200, 1))
    Y = np.column_stack([np.sin(2 * X[:, 0]), np.cos(X[:, 0])]) + 0.05 * rng.randn(200, 2)
    rows = (np.arange(150), np.arange(150, 200))
    both = choose_private_tasks(
        _useless_network(2), X, Y, *rows, seed=0, alpha=np.tile([0.01, 0.5], (200, 1))
    )
    # Reference: the tasks' held-out comparisons are independent, so each one, with
    # its scalar alpha, must decide as in the joint call (same arithmetic: 1e-9).
    for t, alpha in enumerate((0.01, 0.5)):
        alone = choose_private_tasks(_useless_network(2), X, Y, *rows, seed=0, alpha=alpha)
        assert both.shared[t] == alone.shared[t]
        np.testing.assert_allclose(both.gain[t], alone.gain[t], rtol=1e-9, atol=1e-12)
    with pytest.raises(ValueError, match="same alpha on every row"):
        varying = np.tile([0.01, 0.5], (200, 1)) * np.linspace(1, 2, 200)[:, None]
        choose_private_tasks(_useless_network(2), X, Y, *rows, seed=0, alpha=varying)
