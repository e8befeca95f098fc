"""SparseMultiTaskBNNRegressor: GaussianProcessRegressor's contract, missing labels, errors."""

import numpy as np
import pytest
import torch
from sklearn.exceptions import NotFittedError
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.metrics import r2_score

from sk_mtbnn import SparseMultiTaskBNNRegressor
from sk_mtbnn._training.net import TaskLosses
from sk_mtbnn.nn.heads import GaussianVBLLHead


def make(**kw):
    params = {
        "hidden_layer_sizes": (16, 16),
        "max_epochs": 30,
        "validation_fraction": None,
        "random_state": 0,
    }
    params.update(kw)
    return SparseMultiTaskBNNRegressor(**params)


# ------------------------------------------------------------- GPR contract
@pytest.mark.parametrize("y_shape", [(40,), (40, 1), (40, 3)])
def test_shapes_match_gaussian_process_regressor(y_shape):
    rng = np.random.RandomState(0)
    X = rng.uniform(size=(40, 2))
    y = rng.standard_normal(y_shape)
    X_new = rng.uniform(size=(6, 2))
    gp = GaussianProcessRegressor(optimizer=None).fit(X, y)
    ours = make().fit(X, y)
    for kwargs in ({}, {"return_std": True}, {"return_cov": True}):
        expected, got = gp.predict(X_new, **kwargs), ours.predict(X_new, **kwargs)
        expected = expected if isinstance(expected, tuple) else (expected,)
        got = got if isinstance(got, tuple) else (got,)
        assert [a.shape for a in got] == [a.shape for a in expected], kwargs
    for n in (1, 4):
        assert ours.sample_y(X_new, n).shape == gp.sample_y(X_new, n).shape


def test_asking_for_std_and_cov_raises_like_gpr(multitask_data):
    est = make().fit(*multitask_data)
    with pytest.raises(RuntimeError, match="At most one of return_std or return_cov"):
        est.predict(multitask_data[0], return_std=True, return_cov=True)


def test_std_is_the_sum_of_epistemic_and_aleatoric(multitask_data):
    X, y = multitask_data
    est = make().fit(X, y)
    _, std = est.predict(X, return_std=True)
    epistemic, aleatoric = est.decompose_uncertainty(X)
    np.testing.assert_allclose(std**2, epistemic + aleatoric, rtol=1e-12)
    assert np.all(epistemic > 0) and np.all(aleatoric > 0)
    # The aleatoric part is the fitted noise, in units of y.
    np.testing.assert_allclose(aleatoric, np.broadcast_to(est.noise_std_**2, aleatoric.shape))


def test_covariance_diagonal_is_the_variance(multitask_data):
    X, y = multitask_data
    est = make().fit(X, y)
    _, std = est.predict(X[:9], return_std=True)
    _, cov = est.predict(X[:9], return_cov=True)
    np.testing.assert_allclose(np.diagonal(cov, axis1=0, axis2=1).T, std**2, rtol=1e-10)
    for t in range(2):
        assert np.all(np.linalg.eigvalsh(cov[:, :, t]) > 0)


def test_sample_y_mean_and_std_match_predict(multitask_data):
    X, y = multitask_data
    est = make().fit(X, y)
    n = 20_000
    samples = est.sample_y(X[:10], n_samples=n, random_state=1)
    mean, std = est.predict(X[:10], return_std=True)
    # Monte Carlo: the sample mean has standard error std / sqrt(n) and the
    # sample std about std / sqrt(2 n); allow 5 standard errors each.
    assert np.all(np.abs(samples.mean(-1) - mean) < 5 * std / np.sqrt(n))
    assert np.all(np.abs(samples.std(-1) - std) < 5 * std / np.sqrt(2 * n))


def test_sample_y_is_joint_across_points(multitask_data):
    X, y = multitask_data
    est = make().fit(X, y)
    samples = est.sample_y(X[:5], n_samples=20_000, random_state=0)  # (5, 2, n)
    _, cov = est.predict(X[:5], return_cov=True)
    for t in range(2):
        emp = np.cov(samples[:, t, :])
        sd = np.sqrt(np.diag(cov[:, :, t]))
        se = np.sqrt((np.outer(sd**2, sd**2) + cov[:, :, t] ** 2) / 20_000)
        assert np.all(np.abs(emp - cov[:, :, t]) < 5 * se)


def test_sample_y_random_state(multitask_data):
    X, y = multitask_data
    est = make().fit(X, y)
    np.testing.assert_array_equal(est.sample_y(X[:3], 2), est.sample_y(X[:3], 2))
    assert not np.array_equal(est.sample_y(X[:3], 2, random_state=1), est.sample_y(X[:3], 2))


def test_score_is_r2_over_labelled_entries(multitask_data):
    X, y = multitask_data
    est = make().fit(X, y)
    pred = est.predict(X)
    lab = ~np.isnan(y[:, 1])
    expected = np.mean([r2_score(y[:, 0], pred[:, 0]), r2_score(y[lab, 1], pred[lab, 1])])
    assert est.score(X, y) == pytest.approx(expected)


# ---------------------------------------------------------- missing labels
def test_task_losses_use_only_labelled_rows():
    torch.manual_seed(0)
    head = GaussianVBLLHead(2, 3).double()
    phi = torch.randn(2, 6, 3, dtype=torch.float64)
    y = torch.randn(6, 2, dtype=torch.float64)
    y[[1, 4], 1] = float("nan")
    losses, present = TaskLosses(torch.tensor([0.1, 0.2]))(head, phi, y)
    assert present.tolist() == [True, True]
    rows = [0, 2, 3, 5]
    expected_1 = (
        head.expected_nll(phi[:, rows], y[rows].nan_to_num())[1].mean()
        + 0.2 * (head.regularizer()[1])
    )
    torch.testing.assert_close(losses[1], expected_1.float().double(), rtol=1e-6, atol=1e-6)
    assert torch.isfinite(losses).all()


def test_task_without_labels_in_a_batch_is_absent():
    head = GaussianVBLLHead(2, 3)
    y = torch.randn(4, 2)
    y[:, 0] = float("nan")
    _, present = TaskLosses(torch.ones(2))(head, torch.randn(2, 4, 3), y)
    assert present.tolist() == [False, True]


def test_rows_without_any_label_change_nothing(multitask_data):
    X, y = multitask_data
    X_extra = np.vstack([X, np.random.RandomState(1).uniform(-5, 5, size=(30, 2))])
    y_extra = np.vstack([y, np.full((30, 2), np.nan)])
    a = make().fit(X, y).predict(X, return_std=True)
    b = make().fit(X_extra, y_extra).predict(X, return_std=True)
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)


def test_fits_when_no_row_carries_every_task():
    rng = np.random.RandomState(0)
    X = rng.uniform(size=(60, 2))
    y = np.full((60, 3), np.nan)
    for t in range(3):
        y[t::3, t] = X[t::3, 0] * (t + 1)
    est = make().fit(X, y)
    assert est.predict(X).shape == (60, 3)
    assert np.all(np.isfinite(est.predict(X)))


# --------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    ("X", "y", "error", "match"),
    [
        ([[0.0, np.nan], [1.0, 2.0], [2.0, 1.0]], [1.0, 2.0, 3.0], ValueError, "NaN"),
        ([[0.0, np.inf], [1.0, 2.0], [2.0, 1.0]], [1.0, 2.0, 3.0], ValueError, "infinity"),
        ([[0.0, 1.0], [1.0, 2.0], [2.0, 1.0]], [1.0, np.inf, 3.0], ValueError, "infinity"),
        (
            [[0.0], [1.0], [2.0]],
            [[1.0, np.nan], [2.0, np.nan], [3.0, np.nan]],
            ValueError,
            r"task 1 has no label",
        ),
        ([[0.0, 1.0]], [[1.0, np.nan]], ValueError, "task 1 has no label"),
        ([[0.0], [1.0], [2.0]], ["a", "b", "c"], ValueError, "needs numeric targets"),
        ([[0.0], [1.0], [2.0]], [1.0, 2.0], ValueError, "inconsistent numbers of samples"),
        ([[0.0], [1.0], [2.0]], None, ValueError, "requires y to be passed"),
    ],
)
def test_bad_fit_input_gives_a_clear_error(X, y, error, match):
    with pytest.raises(error, match=match):
        make().fit(
            np.asarray(X),
            None
            if y is None
            else np.asarray(y, dtype=object)
            if isinstance(y[0], str)
            else np.asarray(y),
        )


def test_all_nan_task_error_names_the_column_of_a_dataframe():
    pd = pytest.importorskip("pandas")
    X = np.arange(6.0).reshape(3, 2)
    y = pd.DataFrame({"y_a": [1.0, 2.0, 3.0], "y_b": [np.nan] * 3})
    with pytest.raises(ValueError, match=r"task 1 \('y_b'\) has no label"):
        make().fit(X, y)


def test_sparse_X_is_refused():
    sparse = pytest.importorskip("scipy.sparse")
    with pytest.raises(TypeError, match="dense data is required"):
        make().fit(sparse.csr_matrix(np.eye(4)), np.arange(4.0))


def test_predict_before_fit_is_the_prior_but_masks_need_a_fit():
    # GaussianProcessRegressor's contract: before fit, predict and sample_y
    # use the prior (tests/unit/estimators/test_gpr_prior.py).
    assert np.all(make().predict(np.zeros((2, 2))) == 0)
    assert make().sample_y(np.zeros((2, 2))).shape == (2, 1)
    with pytest.raises(NotFittedError):
        make().masks_


def test_wrong_number_of_features_at_predict(multitask_data):
    est = make().fit(*multitask_data)
    with pytest.raises(
        ValueError,
        match="X has 3 features, but SparseMultiTaskBNNRegressor is expecting 2 features",
    ):
        est.predict(np.zeros((2, 3)))


def test_nan_at_predict_is_refused(multitask_data):
    est = make().fit(*multitask_data)
    with pytest.raises(ValueError, match="NaN"):
        est.predict([[np.nan, 0.0]])


@pytest.mark.parametrize(
    ("params", "match"),
    [
        (
            {"hidden_layer_sizes": (0,)},
            "'hidden_layer_sizes' parameter .* must be a sequence of positive integers",
        ),
        ({"covariance": "full"}, "'covariance' parameter .* must be a str among"),
        ({"head": "laplace"}, "'head' parameter .* must be a str among"),
        ({"learning_rate": -1.0}, r"'learning_rate' parameter .* range \(0.0, inf\)"),
        ({"validation_fraction": 1.5}, r"'validation_fraction' .* range \(0.0, 1.0\)"),
        ({"aggregator": "nash"}, "aggregator must be one of"),
        ({"optimizer": "lbfgs"}, "'optimizer' parameter .* must be a str among"),
        ({"task_inputs": [[0]]}, "task_inputs has 1 entries but y has 2 tasks"),
        ({"task_inputs": {0: ["nope"]}}, "X has no column names"),
        ({"task_inputs": {0: [7]}}, "neither a column name of X nor an integer position"),
        ({"task_inputs": {0: [0, 1]}}, "leave at least one column for the shared backbone"),
    ],
)
def test_bad_parameters_give_clear_errors_in_fit(multitask_data, params, match):
    est = make(**params)  # __init__ never validates
    with pytest.raises(ValueError, match=match):
        est.fit(*multitask_data)


def test_inputs_are_not_mutated(multitask_data):
    X, y = multitask_data
    X_copy, y_copy = X.copy(), y.copy()
    est = make().fit(X, y)
    est.predict(X, return_std=True)
    est.score(X, y)
    np.testing.assert_array_equal(X, X_copy)
    np.testing.assert_array_equal(y, y_copy)  # NaN positions included


# -------------------------------------------------------------- features
def test_dataframe_feature_names_and_task_inputs_by_name():
    pd = pytest.importorskip("pandas")
    rng = np.random.RandomState(0)
    X = pd.DataFrame(rng.uniform(size=(80, 3)), columns=["a", "b", "temperature"])
    y = np.column_stack([X["a"] + X["b"], X["a"] * X["temperature"]])
    est = make(task_inputs={1: ["temperature"]}).fit(X, y)
    np.testing.assert_array_equal(est.feature_names_in_, ["a", "b", "temperature"])
    X2 = X.copy()
    X2["temperature"] += 1.0
    a, b = est.predict(X), est.predict(X2)
    # The column reaches only task 1: task 0 cannot depend on it.
    np.testing.assert_array_equal(a[:, 0], b[:, 0])
    assert not np.allclose(a[:, 1], b[:, 1])


@pytest.mark.parametrize("covariance", ["diagonal", "dense", "lowrank"])
@pytest.mark.parametrize("head", ["gaussian", "student_t"])
def test_every_head_and_covariance_fits_and_predicts(multitask_data, head, covariance):
    X, y = multitask_data
    est = make(head=head, covariance=covariance, max_epochs=300, validation_fraction=0.2)
    est.fit(X, y)
    mean, std = est.predict(X, return_std=True)
    assert np.all(np.isfinite(mean)) and np.all(std > 0)
    assert est.score(X, y) > 0.5


@pytest.mark.parametrize("aggregator", ["mean", "pcgrad", "task_sampling", "uniform_task_sampling"])
def test_every_aggregator_trains(multitask_data, aggregator):
    X, y = multitask_data
    est = make(aggregator=aggregator, max_epochs=300).fit(X, y)
    assert est.score(X, y) > 0.5


def test_torchjd_aggregator_object_trains_and_is_not_mutated(multitask_data):
    torchjd = pytest.importorskip("torchjd")
    agg = torchjd.aggregation.MGDA()
    est = make(aggregator=agg, max_epochs=300).fit(*multitask_data)
    assert est.aggregator is agg
    assert est.score(*multitask_data) > 0.5


def test_branches_and_lowrank_rank(multitask_data):
    est = make(branch_layer_sizes=(8,), covariance="lowrank", covariance_rank=3)
    est.fit(*multitask_data)
    assert est.net_.module_.head.covariance.factor.shape == (2, 9, 3)


def test_verbose_prints_skorch_epoch_table(multitask_data, capsys):
    make(verbose=1, max_epochs=3).fit(*multitask_data)
    out = capsys.readouterr().out
    assert "epoch" in out and "train_loss" in out


def test_early_stopping_stops_after_the_best_epoch(multitask_data):
    X, y = multitask_data
    est = make(
        validation_fraction=0.25,
        max_epochs=1000,
        batch_size=16,
        learning_rate=1e-2,
        n_iter_no_change=5,
    ).fit(X, y)
    best = np.flatnonzero(est.history_[:, "valid_loss_best"])[-1]
    assert est.n_epochs_ < 1000
    # Patience: at least 5 epochs and at least AUTO_STEPS / 10 steps (43 epochs
    # of 7 steps) past the best epoch, whose weights skorch restores.
    assert est.n_epochs_ - 1 - best == 43


def test_elbo_of_a_linear_model_is_its_log_marginal_likelihood():
    # Without hidden layers the network is Bayesian linear regression on the
    # standardised inputs; refine_head makes q the exact posterior, so the
    # ELBO equals the exact log evidence log N(y | 0, sigma^2 I + s0 Phi Phi^T).
    from scipy.stats import multivariate_normal

    rng = np.random.RandomState(0)
    X = rng.standard_normal((50, 3))
    y = X @ [1.0, -2.0, 0.5] + 0.3 * rng.standard_normal(50)
    est = make(hidden_layer_sizes=(), normalize_y=False, max_epochs=200).fit(X, y)
    Phi = np.column_stack([(X - X.mean(0)) / X.std(0), np.ones(50)])
    s0 = est.prior_scale / Phi.shape[1]
    cov = est.noise_std_[0] ** 2 * np.eye(50) + s0 * Phi @ Phi.T
    evidence = multivariate_normal(np.zeros(50), cov).logpdf(y)
    # float32 features (training precision) limit the agreement to ~1e-4 nats.
    assert est.elbo_ == pytest.approx(evidence, abs=5e-3)


def test_masks_attribute_structure(multitask_data):
    est = make(hidden_layer_sizes=(5, 4)).fit(*multitask_data)
    masks = est.masks_
    assert len(masks) == 2 and len(masks[0]) == 2
    assert masks[1][1][0].shape == (4, 5) and masks[1][1][1].shape == (4,)
    assert all(w.all() and b.all() for task in masks for w, b in task)


def test_one_labelled_row_is_enough_as_for_a_gp():
    # GaussianProcessRegressor fits a single sample; so does the regressor
    # (its noise cannot be identified from one label: unit-scale bands).
    for X, y in [(np.zeros((3, 1)), [1.0, np.nan, np.nan]), (np.ones((1, 2)), [2.0])]:
        est = make().fit(X, y)
        mean, std = est.predict(np.linspace(-1, 1, 5)[:, None].repeat(np.shape(X)[1], 1), True)
        assert np.allclose(mean, y[0]) and np.all(np.isfinite(std)) and np.all(std > 0)


def test_divergence_is_reported_clearly(multitask_data):
    X, y = multitask_data
    with pytest.raises(RuntimeError, match="Lower learning_rate"):
        make(learning_rate=1e12, optimizer="sgd", max_epochs=5).fit(X, y * 1e6)


def test_history_and_verbose_are_quiet_by_default(multitask_data, capsys):
    make(max_epochs=2).fit(*multitask_data)
    assert capsys.readouterr().out == ""
