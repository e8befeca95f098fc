"""sk_mtbnn.save / sk_mtbnn.load: exact round trips without pickle, and clear refusals.

The pandas values (DataFrames and Series) are tested in test_persistence_pandas.py.
"""

import io
import os
import pickle

import numpy as np
import pandas as pd
import pytest
import torch
from persistence_helpers import (
    NETWORK,
    S,
    X,
    Y,
    _fit,
    _members,
    _rewrite,
    _round_trip,
    _write,
    assert_same_fitted_state,
    assert_same_params,
    assert_same_value,
)
from sklearn.base import clone

import sk_mtbnn
from sk_mtbnn import (
    BayesAggMTLClassifier,
    BayesAggMTLRegressor,
    IterativeMagnitudePruning,
    SparseMultiTaskBNNRegressor,
)
from sk_mtbnn.aggregators import MeanAggregator, PCGrad
from sk_mtbnn.persistence import FORMAT_VERSION, read_metadata

Y_CLASSES = np.c_[
    np.where(X[:, 0] > 0, "up", "down"),
    np.where(X[:, 1] > 0.5, "x", np.where(X[:, 1] < -0.5, "y", "z")),
].astype(object)
Y_CLASSES[::5, 1] = None

# Every fitted configuration that keeps different state: regimes, ensembles,
# heads and covariances, head priors, backbone options, aggregators given as
# objects, optimiser classes, RandomState seeds, known noise, pruning.
REGRESSORS = {
    "network": NETWORK,
    "evidence": S((8, 8), regime="evidence", n_estimators=1, random_state=0),
    "evidence_ensemble": S((8, 8), regime="evidence", n_estimators=2, random_state=0),
    "network_ensemble": S((8,), n_estimators=2, max_epochs=3, random_state=0),
    "heteroscedastic": S((8,), head="heteroscedastic", max_epochs=5, random_state=0),
    "student_t": S((8,), head="student_t", max_epochs=5, random_state=0),
    "head_prior": S((8,), head_prior="clustering", max_epochs=5, random_state=0),
    "lowrank_branches": S(
        (8,),
        covariance="lowrank",
        branch_layer_sizes=(4,),
        aggregator=PCGrad(),
        optimizer=torch.optim.Adam,
        max_epochs=5,
        random_state=0,
    ),
    "diagonal_random_features": S(
        (8,), covariance="diagonal", random_features=16, max_epochs=5, random_state=0
    ),
    "spectral_residual_task_inputs": S(
        (8, 8),
        spectral_norm=1.0,
        residual=True,
        task_inputs={1: range(1, 2)},
        alpha=0.01,
        max_epochs=5,
        random_state=np.random.RandomState(0),
    ),
    "bayesagg": BayesAggMTLRegressor((8,), max_epochs=5, random_state=0),
    "bayesagg_ensemble": BayesAggMTLRegressor((8,), n_estimators=2, max_epochs=3, random_state=0),
    "pruned": IterativeMagnitudePruning(
        S((8,), max_epochs=3, random_state=0), n_rounds=1, retrain_epochs=2, random_state=0
    ),
}
CLASSIFIERS = {
    "bayesagg": BayesAggMTLClassifier((8,), max_epochs=5, random_state=0, missing_label=None),
    "pcgrad": BayesAggMTLClassifier(
        (8,), aggregator="pcgrad", max_epochs=5, random_state=0, missing_label=None
    ),
    "pruned": IterativeMagnitudePruning(
        BayesAggMTLClassifier(
            (8,), aggregator=MeanAggregator(), max_epochs=3, random_state=0, missing_label=None
        ),
        n_rounds=1,
        retrain_epochs=2,
        random_state=0,
    ),
}


@pytest.fixture(scope="module")
def fitted_regressors():
    return {name: _fit(est, X, Y) for name, est in REGRESSORS.items()}


@pytest.fixture(scope="module")
def fitted_classifiers():
    return {name: _fit(est, X, Y_CLASSES) for name, est in CLASSIFIERS.items()}


@pytest.mark.parametrize("name", sorted(REGRESSORS))
def test_regressor_round_trip_is_exact(name, fitted_regressors, tmp_path):
    reg = fitted_regressors[name]
    loaded = _round_trip(reg, tmp_path)
    assert type(loaded) is type(reg)
    assert_same_params(reg, loaded)
    assert_same_fitted_state(reg, loaded)
    Xq = X[:7] + 0.3
    # Exact equality: the same float64 networks run the same operations.
    for a, b in zip(reg.predict(Xq, return_std=True), loaded.predict(Xq, return_std=True)):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(
        reg.predict(Xq, return_cov=True)[1], loaded.predict(Xq, return_cov=True)[1]
    )
    np.testing.assert_array_equal(
        reg.sample_y(Xq, n_samples=4, random_state=3),
        loaded.sample_y(Xq, n_samples=4, random_state=3),
    )
    for a, b in zip(reg.decompose_uncertainty(Xq), loaded.decompose_uncertainty(Xq)):
        np.testing.assert_array_equal(a, b)
    if hasattr(reg, "ood_score"):
        np.testing.assert_array_equal(reg.ood_score(Xq), loaded.ood_score(Xq))
    assert loaded.n_features_in_ == reg.n_features_in_


@pytest.mark.parametrize("name", sorted(CLASSIFIERS))
def test_classifier_round_trip_is_exact(name, fitted_classifiers, tmp_path):
    clf = fitted_classifiers[name]
    loaded = _round_trip(clf, tmp_path)
    assert_same_params(clf, loaded)
    assert_same_fitted_state(clf, loaded)
    for a, b in zip(clf.classes_, loaded.classes_):
        np.testing.assert_array_equal(a, b)
        assert a.dtype == b.dtype
    for a, b in zip(clf.predict_proba(X), loaded.predict_proba(X)):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(clf.predict(X), loaded.predict(X))
    assert set(loaded.predict(X)[:, 0]) <= {"up", "down"}


def test_pruned_masks_and_sparsity_are_restored(fitted_regressors, tmp_path):
    imp = fitted_regressors["pruned"]
    loaded = _round_trip(imp, tmp_path)
    assert imp.sparsity_.max() > 0  # something was pruned, so the masks matter
    for task_a, task_b in zip(imp.estimator_.masks_, loaded.estimator_.masks_):
        for (wa, ba), (wb, bb) in zip(task_a, task_b):
            np.testing.assert_array_equal(wa, wb)
            np.testing.assert_array_equal(ba, bb)
    assert_same_value(imp.masks_, loaded.masks_, "masks_")


def test_training_interrupted_and_regime_are_restored(fitted_regressors, tmp_path):
    for name in ("network", "evidence"):
        reg = fitted_regressors[name]
        loaded = _round_trip(reg, tmp_path, f"{name}.skmtbnn")
        assert loaded.regime_ == reg.regime_ == name
        assert loaded.training_interrupted_ is reg.training_interrupted_
    evidence = fitted_regressors["evidence"]
    loaded = _round_trip(evidence, tmp_path)
    assert loaded.log_marginal_likelihood_value_ == evidence.log_marginal_likelihood_value_


def test_loaded_estimator_refits_as_the_original(fitted_regressors, tmp_path):
    reg = fitted_regressors["network"]
    refit = _fit(_round_trip(reg, tmp_path), X, Y)
    # Same parameters and seed: the refit reproduces the original fit exactly.
    np.testing.assert_array_equal(refit.predict(X), reg.predict(X))


def test_dataframe_names_task_similarity_and_masks_after_load(tmp_path):
    frame = pd.DataFrame(X, columns=["u", "v"])
    reg = _fit(
        S((8,), head_prior="gating", max_epochs=3, random_state=0),
        frame,
        Y,
        task_features=np.array([[0.0], [1.0]]),
    )
    loaded = _round_trip(reg, tmp_path)
    np.testing.assert_array_equal(loaded.feature_names_in_, ["u", "v"])
    np.testing.assert_array_equal(loaded.task_similarity_, reg.task_similarity_)
    np.testing.assert_array_equal(loaded.predict(frame), reg.predict(frame))
    assert_same_value(reg.masks_, loaded.masks_, "masks_")
    with pytest.warns(UserWarning, match="feature names"):
        loaded.predict(X)  # still checks the names, as the original does


def test_unfitted_estimators_round_trip(tmp_path):
    for est in (
        S(aggregator=PCGrad()),
        BayesAggMTLClassifier(missing_label=np.nan),
        IterativeMagnitudePruning(BayesAggMTLRegressor((4,), tau=0.5)),
    ):
        loaded = _round_trip(est, tmp_path)
        assert_same_params(est, loaded)
        assert not hasattr(loaded, "_fit_state_names")
    # The GP-like prior predictions before fit are the same too.
    reg = S((8,), n_targets=2, random_state=0)
    np.testing.assert_array_equal(_round_trip(reg, tmp_path).predict(X), reg.predict(X))


def test_file_records_versions(fitted_regressors, tmp_path):
    sk_mtbnn.save(fitted_regressors["network"], tmp_path / "m")
    meta = read_metadata(tmp_path / "m")
    assert meta["format_version"] == FORMAT_VERSION
    assert meta["versions"]["sk_mtbnn"] == sk_mtbnn.__version__
    assert meta["versions"]["torch"] == torch.__version__
    assert meta["estimator"] == "SparseMultiTaskBNNRegressor"


# ------------------------------------------------------------- refusals
class OwnAggregator(MeanAggregator):
    """A user-defined aggregator: not in the allow-list."""


class MyRegressor(SparseMultiTaskBNNRegressor):
    pass


@pytest.mark.parametrize(
    ("estimator", "match"),
    [
        (S(aggregator=OwnAggregator()), "OwnAggregator, which the safe format cannot store"),
        (S(optimizer=type("MyOpt", (torch.optim.SGD,), {})), "MyOpt"),
        (MyRegressor(), "Subclasses are refused"),
        (PCGrad(), "stores the sk_mtbnn estimators"),
        (
            IterativeMagnitudePruning(S(), scoring=lambda est, X, y, t: 0.0),
            r"IterativeMagnitudePruning\.scoring is the function .*<lambda>",
        ),
    ],
)
def test_save_refuses_what_it_cannot_represent(estimator, match, tmp_path):
    with pytest.raises(TypeError, match=match):
        sk_mtbnn.save(estimator, tmp_path / "m")
    assert list(tmp_path.iterdir()) == []  # nothing written, no temporary left
    sk_mtbnn.save(S(), tmp_path / "m")
    with pytest.raises(TypeError):
        sk_mtbnn.save(estimator, tmp_path / "m")
    assert sk_mtbnn.load(tmp_path / "m").get_params() == S().get_params()  # kept intact


def test_save_refuses_unrepresentable_fitted_state(tmp_path):
    reg = _fit(S((8,), max_epochs=2, random_state=0), X, Y)
    reg.net_.module_.extra = torch.nn.Linear(2, 2)  # structure changed after fit
    with pytest.raises(TypeError, match="differs from the network"):
        sk_mtbnn.save(reg, tmp_path / "m")
    assert list(tmp_path.iterdir()) == []


@pytest.fixture
def saved(fitted_regressors, tmp_path):
    path = tmp_path / "m.skmtbnn"
    sk_mtbnn.save(fitted_regressors["network"], path)
    return path


def test_load_refuses_another_format_version(saved):
    _rewrite(saved, metadata=lambda m: m.update(format_version=FORMAT_VERSION + 1))
    with pytest.raises(
        ValueError, match=rf"format version {FORMAT_VERSION + 1}.*reads format"
    ) as e:
        sk_mtbnn.load(saved)
    assert sk_mtbnn.__version__ in str(e.value) and "refit" in str(e.value)


@pytest.mark.parametrize("written", ["9.4.0", "0.0.1"])
def test_load_refuses_another_release_series(saved, written):
    _rewrite(saved, metadata=lambda m: m["versions"].update(sk_mtbnn=written))
    with pytest.raises(ValueError, match=f"written by sk_mtbnn {written}; this is sk_mtbnn") as e:
        sk_mtbnn.load(saved)
    assert f"sk_mtbnn=={written}" in str(e.value)


def test_load_accepts_another_patch_release(saved):
    major, minor = sk_mtbnn.__version__.split(".")[:2]
    _rewrite(saved, metadata=lambda m: m["versions"].update(sk_mtbnn=f"{major}.{minor}.7"))
    assert sk_mtbnn.load(saved).n_tasks_ == 2


def test_load_refuses_an_unknown_class(saved):
    def rename(meta):
        meta["tree"]["__estimator__"] = "os.system"

    _rewrite(saved, metadata=rename)
    with pytest.raises(ValueError, match=r"'os\.system', which is not one that sk_mtbnn loads"):
        sk_mtbnn.load(saved)


def test_load_refuses_missing_and_corrupted_members(saved, tmp_path):
    original = saved.read_bytes()
    _rewrite(saved, **{"arrays.npz": None})
    with pytest.raises(ValueError, match="not a complete sk_mtbnn file"):
        sk_mtbnn.load(saved)
    # A changed byte inside the tensors (the checksum is the original's).
    saved.write_bytes(original)
    members = _members(saved)
    tensors = bytearray(members["tensors.pt"])
    tensors[len(tensors) // 2] ^= 0xFF
    members["tensors.pt"] = bytes(tensors)
    _write(saved, members)
    with pytest.raises(ValueError, match=r"checksum of tensors\.pt does not match"):
        sk_mtbnn.load(saved)
    (tmp_path / "junk").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match=r"not a file written by sk_mtbnn\.save"):
        sk_mtbnn.load(tmp_path / "junk")


class _Payload:
    """Pickling this creates a directory when unpickled: the attack load must refuse."""

    def __init__(self, target):
        self.target = str(target)

    def __reduce__(self):
        return (os.mkdir, (self.target,))


def test_load_refuses_a_pickle_payload_without_running_it(saved, tmp_path):
    marker = tmp_path / "pwned"
    buffer = io.BytesIO()
    torch.save({"t0": _Payload(marker)}, buffer)  # torch.save pickles it
    # The checksum is updated too: only the loader's own refusal stands in the way.
    _rewrite(saved, **{"tensors.pt": buffer.getvalue()})
    with pytest.raises(ValueError, match="something other than tensors"):
        sk_mtbnn.load(saved)
    assert not marker.exists()
    # The same in the arrays: an object array needs pickle, which np.load refuses.
    arrays = io.BytesIO()
    np.savez(arrays, a0=np.array([_Payload(marker)], dtype=object))
    _rewrite(saved, **{"arrays.npz": arrays.getvalue()})
    with pytest.raises(ValueError, match="other than plain numpy arrays"):
        sk_mtbnn.load(saved)
    assert not marker.exists()


def test_load_refuses_tampered_tree(saved):
    def tamper(meta):
        meta["tree"]["params"]["hidden_layer_sizes"] = {"__import__": "os"}

    _rewrite(saved, metadata=tamper)
    with pytest.raises(ValueError, match="is not a stored value"):
        sk_mtbnn.load(saved)


def test_device_is_stored_and_can_be_replaced_on_load(tmp_path):
    reg = _fit(S((8,), device=torch.device("cpu"), max_epochs=2, random_state=0), X, Y)
    path = tmp_path / "m"
    sk_mtbnn.save(reg, path)
    assert sk_mtbnn.load(path).device == torch.device("cpu")
    if torch.cuda.is_available():
        pytest.skip("the refusal needs a machine without a GPU")

    def on_gpu(meta):
        meta["tree"]["params"]["device"] = "cuda"

    _rewrite(path, metadata=on_gpu)  # as if trained on a GPU
    with pytest.raises(ValueError, match=r"Pass load\(path, device='cpu'\)"):
        sk_mtbnn.load(path)
    loaded = sk_mtbnn.load(path, device="cpu")
    assert loaded.device == "cpu"
    np.testing.assert_array_equal(loaded.predict(X), reg.predict(X))


@pytest.mark.parametrize("name", ["predict", "__class__", "__dict__"])
def test_load_refuses_attributes_that_replace_methods(saved, name):
    def inject(meta):
        meta["tree"]["state"]["attributes"][name] = 1

    _rewrite(saved, metadata=inject)
    with pytest.raises(ValueError, match=f"sets an attribute '{name}'"):
        sk_mtbnn.load(saved)


def test_an_interrupted_fit_round_trips(monkeypatch, ctrl_c_after_two_epochs, tmp_path):
    reg = _fit(S((8,), max_epochs=10, random_state=0), X, Y)
    monkeypatch.undo()
    assert reg.training_interrupted_ and reg.n_epochs_ == 2
    loaded = _round_trip(reg, tmp_path)
    assert loaded.training_interrupted_ and loaded.n_epochs_ == 2 and len(loaded.history_) == 2
    np.testing.assert_array_equal(loaded.predict(X), reg.predict(X))


@pytest.mark.slow  # the evidence regime with a per-row alpha takes 10-20 s on 40 rows
def test_per_row_alpha_round_trips(tmp_path):
    reg = _fit(S((8, 8), regime="evidence", n_estimators=1, alpha=np.full(40, 1e-3)), X, Y)
    loaded = _round_trip(reg, tmp_path)
    np.testing.assert_array_equal(loaded._alpha, reg._alpha)
    for a, b in zip(reg.predict(X, return_std=True), loaded.predict(X, return_std=True)):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name", ["network", "evidence", "pruned"])
def test_a_loaded_estimator_saves_again_clones_and_pickles(name, fitted_regressors, tmp_path):
    reg = fitted_regressors[name]
    loaded = _round_trip(reg, tmp_path)
    again = _round_trip(loaded, tmp_path, "again.skmtbnn")
    np.testing.assert_array_equal(again.predict(X), reg.predict(X))
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(loaded)).predict(X), reg.predict(X))
    assert_same_params(clone(loaded), reg)


@pytest.mark.parametrize(
    "y",
    [(X[:, 0] > 0).astype(int) + 3, X[:, 0] > 0, pd.Series(pd.Categorical(X[:, 0] > 0))],
    ids=["int", "bool", "categorical"],
)
def test_single_task_classifier_labels_round_trip(y, tmp_path):
    clf = _fit(BayesAggMTLClassifier((8,), max_epochs=3, random_state=0), X, y)
    loaded = _round_trip(clf, tmp_path)
    assert loaded.classes_.dtype == clf.classes_.dtype
    np.testing.assert_array_equal(loaded.classes_, clf.classes_)
    np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))
    np.testing.assert_array_equal(loaded.predict(X), clf.predict(X))
