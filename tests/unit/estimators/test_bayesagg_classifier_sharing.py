"""BayesAggMTLClassifier(sharing="auto"): a label the shared network does not serve goes private.

The private alternative of each label is the shared network fine-tuned on that label alone
(``sk_mtbnn.estimators._classifier_sharing``); held-out log probabilities decide.
"""

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from sk_mtbnn import BayesAggMTLClassifier
from sk_mtbnn.estimators._classifier_sharing import (
    SharingClassificationNetwork,
    choose_private_classifier_tasks,
    fine_tune,
    write_private,
)


def _four_related_and_one_unrelated(n, seed):
    """Four thresholds of one direction of x0, x1, and sin(2.5 x4) > 0 (unrelated)."""
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(n, 8))
    z = X[:, 0] + 0.5 * X[:, 1]
    related = [z + 0.3 * rng.randn(n) > c for c in (-0.5, 0.0, 0.5, 1.0)]
    unrelated = np.sin(2.5 * X[:, 4]) + 0.1 * rng.randn(n) > 0
    return X, np.column_stack([*related, unrelated]).astype(int)


def _aucs(clf, X, Y):
    proba = clf.predict_proba(X)
    proba = proba if isinstance(proba, list) else [proba]
    return np.array([roc_auc_score(Y[:, t], p[:, 1]) for t, p in enumerate(proba)])


@pytest.fixture(scope="module")
def unrelated_fits():
    X, Y = _four_related_and_one_unrelated(600, 0)
    auto = BayesAggMTLClassifier(random_state=0).fit(X, Y)
    shared = BayesAggMTLClassifier(sharing="all", random_state=0).fit(X, Y)
    return X, Y, auto, shared


def test_an_unrelated_label_goes_private_and_matches_its_single_task_fit(unrelated_fits):
    X, Y, auto, shared = unrelated_fits
    X_test, Y_test = _four_related_and_one_unrelated(3000, 1)
    # Early stopping on the summed validation loss ends the joint training before the
    # sine label is learnt (test AUC 0.57 with sharing="all"); its fine-tuned copy learns it.
    assert auto.shared_tasks_.tolist() == [True, True, True, True, False]
    assert auto.sharing_gain_[4] < 0
    single = BayesAggMTLClassifier(random_state=0).fit(X, Y[:, 4])
    auc_auto, auc_all = _aucs(auto, X_test, Y_test), _aucs(shared, X_test, Y_test)
    auc_single = _aucs(single, X_test, Y_test[:, [4]])[0]
    assert auc_all[4] < 0.7
    # Tolerance 0.01 of AUC: about two standard errors of a test AUC near 0.96 on 3,000
    # rows (Hanley & McNeil 1982: SE ~ 0.004), with the fits' own seed noise.
    assert auc_auto[4] > auc_single - 0.01
    # The four related labels keep sharing, because it helps them: their fine-tuned copies
    # predict their held-out labels worse (positive gain).
    assert (auto.sharing_gain_[:4] > 0).all()


def test_the_labels_that_keep_sharing_predict_as_with_sharing_all(unrelated_fits):
    X, _, auto, shared = unrelated_fits
    # The decision only adds private networks; each head is conditioned on its own labels.
    for a, b in zip(auto.predict_proba(X[:20])[:4], shared.predict_proba(X[:20])[:4]):
        np.testing.assert_array_equal(a, b)
    assert np.isnan(shared.sharing_gain_).all() and shared.shared_tasks_.all()


def test_related_labels_keep_sharing():
    rng = np.random.RandomState(3)
    X = rng.normal(size=(300, 4))
    z = X[:, 0] - X[:, 1]
    Y = np.column_stack([z + 0.5 * rng.randn(300) > c for c in (-0.5, 0.0, 0.5)]).astype(int)
    clf = BayesAggMTLClassifier((32, 32), random_state=0).fit(X, Y)
    assert clf.shared_tasks_.all()
    assert np.isfinite(clf.sharing_gain_).all()


def test_too_few_labels_or_no_validation_rows_keep_sharing():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(200, 2))
    Y = np.column_stack([X[:, 0] > 0, X[:, 1] > 0]).astype(float)
    Y[30:, 1] = np.nan  # 30 labels: about 6 held out, fewer than the 10 needed
    clf = BayesAggMTLClassifier((8, 8), max_epochs=5, random_state=0).fit(X, Y)
    assert clf.shared_tasks_[1] and np.isnan(clf.sharing_gain_[1])
    assert np.isfinite(clf.sharing_gain_[0])
    clf = BayesAggMTLClassifier((8, 8), max_epochs=5, validation_fraction=None).fit(X, Y)
    assert clf.shared_tasks_.all() and np.isnan(clf.sharing_gain_).all()


def _network(n_classes=(2, 3, 2)):
    torch.manual_seed(0)
    return SharingClassificationNetwork(3, list(n_classes), (8, 8), private_features=True)


def test_an_untuned_private_copy_is_the_shared_network():
    # Zero fine-tuning steps: the private copies equal the shared network, so the private
    # forward pass (per-task batched layers) must reproduce the backbone's, to rounding.
    net = _network()
    x = torch.randn(50, 3, generator=torch.Generator().manual_seed(1))
    y = torch.zeros(50, 3)
    before = [z.detach().clone() for z in net(x)]
    tuned = fine_tune(
        net,
        x,
        y,
        [0, 1, 2],
        steps=0,
        batch_size=8,
        learning_rate=1e-2,
        generator=torch.Generator(),
    )
    write_private(net, [0, 1, 2], tuned)
    assert net.private_tasks().tolist() == [0, 1, 2]
    for a, b in zip(before, net(x)):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-6)  # float32 rounding


def test_fine_tuned_copies_do_not_interact():
    # Task 0's copy is trained on task 0's labels alone: changing task 2's labels (same
    # rows labelled, so the same mini-batch draws) leaves it exactly as it was.
    net = _network()
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(80, 3, generator=gen)
    y = torch.stack([x[:, 0] > 0, (x[:, 1] > 0).long() + (x[:, 1] > 1), x[:, 2] > 0], 1).float()
    flipped = y.clone()
    flipped[:, 2] = 1 - flipped[:, 2]
    runs = [
        fine_tune(
            net,
            x,
            labels,
            [0, 2],
            steps=5,
            batch_size=16,
            learning_rate=1e-2,
            generator=torch.Generator().manual_seed(0),
        )
        for labels in (y, flipped)
    ]
    for a, b in zip(runs[0].weights, runs[1].weights):
        torch.testing.assert_close(a[0], b[0], rtol=0, atol=0)
        assert not torch.equal(a[1], b[1])
    torch.testing.assert_close(runs[0].heads[0][0], runs[1].heads[0][0], rtol=0, atol=0)


def test_the_decision_needs_two_standard_errors():
    # Labels that no network can predict (coin flips): the fine-tuned copies only overfit,
    # so no label leaves, whatever its gain's sign.
    net = _network((2, 2))
    rng = np.random.RandomState(0)
    X = rng.normal(size=(300, 3))
    Y = rng.randint(0, 2, size=(300, 2)).astype(float)
    decision = choose_private_classifier_tasks(
        net, X, Y, np.arange(240), np.arange(240, 300), seed=0, batch_size=32
    )
    assert decision.shared.all() and np.isfinite(decision.gain).all()
    assert len(net.private_tasks()) == 0


def test_a_private_label_round_trips(unrelated_fits, assert_sharing_round_trips):
    X, _, auto, _ = unrelated_fits
    assert_sharing_round_trips(auto, lambda clf: clf.predict_proba(X[:9]))


def test_a_multiclass_label_can_go_private():
    # The multiclass path of the fine-tuning and of write_private: a 3-class label on
    # x2 next to two binary labels on x0. 40 epochs leave the shared network short of
    # training; 500 fine-tuning steps continue it, so every label leaves.
    rng = np.random.RandomState(0)
    X = rng.normal(size=(400, 3))
    Y = np.column_stack([X[:, 0] > 0, X[:, 0] > 0.5, np.digitize(np.sin(3 * X[:, 2]), [-0.5, 0.5])])
    clf = BayesAggMTLClassifier((32, 32), max_epochs=40, random_state=0).fit(X, Y)
    assert not clf.shared_tasks_[2]
    proba = clf.predict_proba(X[:10])
    assert proba[2].shape == (10, 3)
    np.testing.assert_allclose(proba[2].sum(1), 1.0, rtol=1e-12)
    assert np.isfinite(clf.sharing_gain_).all()


def test_sharing_is_validated():
    X = np.random.RandomState(0).normal(size=(20, 2))
    with pytest.raises(ValueError, match="sharing"):
        BayesAggMTLClassifier(sharing="never").fit(X, X[:, 0] > 0)
