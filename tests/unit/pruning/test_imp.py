"""IterativeMagnitudePruning: exact sparsity, masks that matter, honest selection."""

import pickle
from typing import ClassVar

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.linear_model import Ridge
from sklearn.model_selection import GridSearchCV, KFold

from sk_mtbnn import (
    BayesAggMTLClassifier,
    BayesAggMTLRegressor,
    IterativeMagnitudePruning,
    SparseMultiTaskBNNRegressor,
)
from sk_mtbnn.pruning import plot_mask_overlap, plot_validation_scores, prune_masks


def base(**kw):
    params = {
        "hidden_layer_sizes": (12, 10),
        "max_epochs": 15,
        "validation_fraction": None,
        "random_state": 0,
    }
    params.update(kw)
    return SparseMultiTaskBNNRegressor(**params)


def imp(estimator=None, **kw):
    params = {"prune_ratio": 0.3, "n_rounds": 2, "select": "last", "random_state": 0}
    params.update(kw)
    return IterativeMagnitudePruning(estimator or base(), **params)


@pytest.fixture
def data(multitask_data):
    return multitask_data


class SpyRegressor(SparseMultiTaskBNNRegressor):
    """Records the rows every preparation sees and the module every training starts from."""

    prepared: ClassVar[list] = []
    starts: ClassVar[list] = []

    def _prepare(self, X, y):
        SpyRegressor.prepared.append(np.asarray(X).copy())
        return super()._prepare(X, y)

    def _train(self, module, data, max_epochs=None):
        SpyRegressor.starts.append({k: v.clone() for k, v in module.state_dict().items()})
        super()._train(module, data, max_epochs)


# ------------------------------------------------------------ prune_masks
def test_prune_masks_keeps_the_largest_survivors_per_layer():
    rng = np.random.RandomState(0)
    w = [rng.standard_normal((6, 5)), rng.standard_normal((4, 6))]
    masks = [np.ones((6, 5), bool), np.ones((4, 6), bool)]
    masks[0][0, 0] = False  # an already pruned entry never comes back
    w[0][0, 0] = 100.0
    new = prune_masks(w, masks, keep_fraction=0.5, scope="layer")
    assert new[0].sum() == 15 and new[1].sum() == 12 and not new[0][0, 0]
    threshold = np.sort(np.abs(w[1]).ravel())[::-1][11]
    assert np.all(np.abs(w[1][new[1]]) >= threshold)


def test_global_scope_ranks_all_layers_together():
    w = [np.full((2, 2), 5.0), np.full((2, 2), 1.0)]
    new = prune_masks(w, [np.ones((2, 2), bool)] * 2, keep_fraction=0.5, scope="global")
    assert new[0].all() and not new[1].any()


# ------------------------------------------------------------ sparsity
@pytest.mark.parametrize("scope", ["layer", "global"])
@pytest.mark.parametrize("rounds", [1, 3])
def test_sparsity_after_r_rounds_is_exact(data, scope, rounds):
    p = 0.3
    model = imp(prune_ratio=p, n_rounds=rounds, scope=scope).fit(*data)
    expected = 1 - (1 - p) ** rounds
    n_weights = 12 * 2 + 10 * 12
    for t in range(2):
        kept = sum(w.sum() for w, _ in model.masks_[t])
        # Rounding: at most one weight per layer (2 layers).
        assert abs(kept - (1 - expected) * n_weights) <= 2
        assert model.sparsity_[t] == pytest.approx(1 - kept / n_weights)
    assert [h["round"] for h in model.history_] == list(range(rounds + 1)) * 2


def test_masks_change_outputs_and_pruned_weights_stay_zero(data):
    X, y = data
    model = imp().fit(X, y)
    net = model.estimator_.net_.module_
    before = model.predict(X, return_std=True)
    masks = [(w.clone(), b.clone()) for w, b in net.backbone.masks()]
    # Every weight pruned for *all* tasks is exactly zero after the final
    # training, and perturbing it changes nothing.
    for layer, (w, _) in zip(net.backbone.layers, masks):
        dead = w.amax(0) == 0
        assert torch.all(layer.weight[dead] == 0)
        with torch.no_grad():
            layer.weight[dead] += 3.0
    after = model.predict(X, return_std=True)
    for a, b in zip(before, after):
        np.testing.assert_allclose(a, b)
    # Switching the masks off changes the predictions.
    net.backbone.set_masks([(torch.ones_like(w), torch.ones_like(b)) for w, b in masks])
    assert not np.allclose(model.predict(X), before[0])


def test_a_second_fit_gives_the_same_masks(data):
    model = imp(random_state=3)
    first = [w for w, _ in model.fit(*data).masks_[0]]
    second = [w for w, _ in model.fit(*data).masks_[0]]
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)


def test_round_selection_sees_only_the_validation_split(data):
    X, y = data
    seen = []

    def spy_scoring(estimator, X_sel, y_sel, task):
        seen.append(np.asarray(X_sel).copy())
        mean = estimator.predict(X_sel)[:, task]
        rows = ~np.isnan(y_sel)
        return -float(np.mean((mean[rows] - y_sel[rows]) ** 2))

    SpyRegressor.prepared = []
    spy_base = SpyRegressor(hidden_layer_sizes=(8,), max_epochs=10, validation_fraction=None)
    imp(spy_base, scoring=spy_scoring, select="best").fit(X, y)
    trained_on = SpyRegressor.prepared[0]
    for X_sel in seen:
        assert len(X_sel) == round(0.2 * len(X))
        # No selection row was used for training the rounds...
        assert not (X_sel[:, None, :] == trained_on[None, :, :]).all(-1).any()
    # ...and training plus selection rows are exactly the data.
    both = np.vstack([trained_on, seen[0]])
    assert sorted(map(tuple, both)) == sorted(map(tuple, X))
    # The final joint training uses all rows.
    assert len(SpyRegressor.prepared[-1]) == len(X)


def test_user_validation_data_is_the_only_selection_data(data):
    X, y = data
    seen = []

    def spy_scoring(estimator, X_sel, y_sel, task):
        seen.append(np.asarray(X_sel))
        return 0.0

    imp(scoring=spy_scoring).fit(X[:100], y[:100], X_val=X[100:], y_val=y[100:])
    # Two tasks, each scored at round 0 (dense) and after its two rounds.
    assert all(np.array_equal(s, X[100:]) for s in seen) and len(seen) == 6


@pytest.mark.parametrize("rewind", ["init", "warmup", "none"])
def test_rewinding_restarts_survivors_where_asked(data, rewind):
    SpyRegressor.starts = []
    spy_base = SpyRegressor(hidden_layer_sizes=(8,), max_epochs=5, validation_fraction=None)
    imp(spy_base, rewind=rewind, n_rounds=1).fit(*data)
    # Calls for task 0: [warm-up], dense round 0, round 1, ...
    offset = 1 if rewind == "warmup" else 0
    start_round1 = SpyRegressor.starts[offset + 1]["backbone.layers.0.weight"]
    init = SpyRegressor.starts[0]["backbone.layers.0.weight"]
    if rewind == "init":
        torch.testing.assert_close(start_round1, init)
    elif rewind == "warmup":
        assert not torch.allclose(start_round1, init)  # a trained warm-up point
    else:
        assert not torch.allclose(start_round1, init)


def test_overlap_and_effective_parameters(data):
    model = imp(prune_ratio=0.5, n_rounds=1).fit(*data)
    a = np.concatenate([w.ravel() for w, _ in model.masks_[0]])
    b = np.concatenate([w.ravel() for w, _ in model.masks_[1]])
    assert model.overlap_[0, 1] == pytest.approx((a & b).sum() / (a | b).sum())
    assert np.all(np.diag(model.overlap_) == 1)
    head = 10 + 1  # head weights and bias of one task
    kept = [sum(int(w.sum() + bb.sum()) for w, bb in m) for m in model.masks_]
    np.testing.assert_array_equal(model.n_effective_parameters_, np.array(kept) + head)


def test_masks_survive_pickling(data):
    X, y = data
    model = imp().fit(X, y)
    restored = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(restored.predict(X), model.predict(X))
    np.testing.assert_array_equal(restored.masks_[1][0][0], model.masks_[1][0][0])
    assert not restored.estimator_.net_.module_.backbone.is_dense()


def test_clone_and_grid_search_over_prune_ratio(data):
    X, y = data
    model = imp()
    assert clone(model).get_params()["prune_ratio"] == 0.3
    search = GridSearchCV(model, {"prune_ratio": [0.2, 0.5]}, cv=KFold(2)).fit(X, y)
    assert search.best_params_["prune_ratio"] in (0.2, 0.5)


def test_delegation(data):
    X, y = data
    model = imp().fit(X, y)
    assert model.sample_y(X[:3], 2).shape == (3, 2, 2)
    epistemic, _ = model.decompose_uncertainty(X[:3])
    assert epistemic.shape == (3, 2)
    assert model.score(X, y) == model.estimator_.score(X, y)
    assert model.n_features_in_ == 2
    assert not hasattr(model, "predict_proba")


def test_classifier_can_be_pruned():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(200, 3))
    y = np.column_stack([X[:, 0] > 0, X[:, 1] > 0]).astype(int)
    clf = BayesAggMTLClassifier(
        hidden_layer_sizes=(10,),
        aggregator="mean",
        max_epochs=15,
        validation_fraction=None,
        random_state=0,
    )
    model = imp(clf, prune_ratio=0.5, n_rounds=1).fit(X, y)
    assert model.sparsity_ == pytest.approx([0.5, 0.5], abs=0.05)
    assert [p.shape for p in model.predict_proba(X[:4])] == [(4, 2), (4, 2)]
    assert model.classes_[0].tolist() == [0, 1]


@pytest.mark.parametrize(
    ("estimator", "params", "error", "match"),
    [
        (BayesAggMTLRegressor(), {}, ValueError, "BayesAgg trains one representation"),
        (base(aggregator="bayesagg"), {}, ValueError, "BayesAgg trains one representation"),
        (base(), {"prune_ratio": 1.0}, ValueError, r"prune_ratio must be in \(0, 1\)"),
        (base(), {"rewind": "late"}, ValueError, "rewind must be one of"),
        (base(), {"scoring": "mse"}, ValueError, "scoring must be"),
        (Ridge(), {}, TypeError, "needs an sk_mtbnn estimator"),
    ],
)
def test_errors(data, estimator, params, error, match):
    with pytest.raises(error, match=match):
        IterativeMagnitudePruning(estimator, **params).fit(*data)


def test_plots(data):
    model = imp().fit(*data)
    assert plot_mask_overlap(model).get_title().startswith("Overlap")
    assert plot_validation_scores(model).get_ylabel().startswith("validation score")
    import matplotlib.pyplot as plt

    plt.close("all")


@pytest.mark.parametrize(
    ("params", "fit_kw", "match"),
    [
        ({"estimator": base(hidden_layer_sizes=())}, {}, "no hidden layer"),
        ({"estimator": base(n_estimators=2)}, {}, "prunes one network"),
        ({"scoring": "accuracy"}, {}, "does not apply to a regressor"),
        ({}, {"y_val_columns": 1}, "y_val has 1 task column"),
    ],
)
def test_more_errors_name_what_to_change(data, params, fit_kw, match):
    X, y = data
    kw = {}
    if fit_kw:
        kw = {"X_val": X[:20], "y_val": y[:20, : fit_kw["y_val_columns"]]}
    with pytest.raises(ValueError, match=match):
        imp(**params).fit(X, y, **kw)


def test_a_failed_refit_leaves_the_pruned_model_as_it_was(data):
    X, y = data
    model = imp().fit(X, y)
    before = model.predict(X[:5])
    model.set_params(prune_ratio=2.0)
    with pytest.raises(ValueError):
        model.fit(X, y)
    np.testing.assert_array_equal(model.predict(X[:5]), before)


def test_ctrl_c_during_training_ends_the_whole_pruning_fit(data, monkeypatch):
    X, y = data
    from sk_mtbnn.estimators import _base

    calls = {"n": 0}
    original = _base.NetworkEstimatorMixin._warn_if_interrupted

    def interrupted_on_second_training(self, max_epochs):
        original(self, max_epochs)
        calls["n"] += 1
        if calls["n"] == 2:
            self.training_interrupted_ = True

    monkeypatch.setattr(
        _base.NetworkEstimatorMixin, "_warn_if_interrupted", interrupted_on_second_training
    )
    model = imp()
    with pytest.raises(KeyboardInterrupt):
        model.fit(X, y)
    assert not hasattr(model, "estimator_")


def test_tiny_and_sparse_data_give_errors_that_say_what_to_change():
    X = np.array([[-0.5], [-0.9], [-0.66], [0.75]])
    Y = np.array([[-0.98, -0.94], [-0.42, -0.52], [np.nan, np.nan], [np.nan, 0.7]])
    model = IterativeMagnitudePruning(
        SparseMultiTaskBNNRegressor(hidden_layer_sizes=(8,), max_epochs=5),
        n_rounds=1,
        random_state=0,
    )
    # Four rows, two tasks, half the labels missing: either a fit with finite
    # predictions or an error that names the task and the remedy.
    for seed in range(6):
        try:
            model.set_params(random_state=seed).fit(X, Y)
        except ValueError as error:
            assert "no label among the" in str(error) or "no usable label" in str(error)
        else:
            assert np.isfinite(model.predict(X, return_std=True)[1]).all()
    with pytest.raises(ValueError, match="leaves fewer than 2 to train on"):
        model.fit(X[:1], Y[:1])
