"""Data-parallel training over 2 processes (gloo on 127.0.0.1) against a one-process fit."""

import copy
import os
import resource
import signal
import socket

import numpy as np
import pytest
import torch

from sk_mtbnn import BayesAggMTLRegressor, SparseMultiTaskBNNRegressor
from sk_mtbnn._training.loader import TensorBatchLoader
from sk_mtbnn.distributed import DataParallelReport, fit_data_parallel
from sk_mtbnn.distributed._shards import (
    ShardedRows,
    ShardLoader,
    plan_shards,
    prepare_once,
    shard_data,
    shard_rows,
    valid_part_ids,
)
from sk_mtbnn.distributed.data_parallel import _rendezvous_store
from sk_mtbnn.estimators import _regression

#: 482 rows: 385 training rows (12 batches of 32 and one of 1) and 97 validation
#: rows (3 batches of 32 and one of 1), so one process's part of the last batch
#: of each is empty, the case where the parts are least alike.
N_ROWS = 482
SETTINGS = {
    "hidden_layer_sizes": (16,),
    "max_epochs": 20,
    "batch_size": 32,
    "regime": "network",
    "random_state": 0,
}
#: Bound on any test's processes: they are stopped (TimeoutError) after this.
TIMEOUT = 120.0


def _data(n_rows=N_ROWS, missing=False):
    rng = np.random.RandomState(0)
    X = rng.uniform(-2, 2, size=(n_rows, 3))
    y = np.column_stack([np.sin(2 * X[:, 0]), X[:, 1] * X[:, 2]])
    y += 0.1 * rng.standard_normal(y.shape)
    if missing:
        y[::3, 1] = np.nan
    return X, y


@pytest.fixture(scope="module")
def fits():
    """The same regressor fitted in one process and data-parallel over two."""
    X, y = _data()
    reg = SparseMultiTaskBNNRegressor(**SETTINGS)
    one = copy.deepcopy(reg).fit(X, y)
    two, report = fit_data_parallel(reg, X, y, n_processes=2, timeout=TIMEOUT, return_report=True)
    return X, y, one, two, report


def test_matches_one_process_fit(fits):
    X, _, one, two, _ = fits
    # Both fits draw the same global batches and each step's gradient is the
    # same mean over the same rows, summed in another order: the parts' sums
    # weighted by rows, then added across processes. That is float32 rounding
    # (eps = 6e-8) per step, compounded over 260 steps; measured: 2e-7 on the
    # weights, 2e-8 on the predictions. 1e-5 leaves a margin of 50-500; a
    # wrong weighting of the parts, a shifted batch or another seed moves the
    # predictions by 1e-3 to 0.5.
    assert two.n_epochs_ == one.n_epochs_
    for key in ("train_loss", "valid_loss"):
        np.testing.assert_allclose(two.history_[:, key], one.history_[:, key], rtol=1e-5)
    one_state, two_state = one.net_.module_.state_dict(), two.net_.module_.state_dict()
    assert one_state.keys() == two_state.keys()
    for key, value in one_state.items():
        np.testing.assert_allclose(two_state[key].numpy(), value.numpy(), atol=1e-5, err_msg=key)
    for a, b in zip(two.predict(X, return_std=True), one.predict(X, return_std=True)):
        np.testing.assert_allclose(a, b, atol=1e-5)
    np.testing.assert_allclose(two.noise_std_, one.noise_std_, rtol=1e-5)


def test_head_statistics_are_summed_over_processes(fits, monkeypatch):
    """The heads equal a one-process refinement on the same backbone (float64 summation order)."""
    X, y, _, two, _ = fits
    local = copy.deepcopy(two)
    data = copy.copy(local)._prepare(X, y)  # the same standardisation and split
    # Keep the noise chosen on held-out rows (the search starts from the current
    # head), so that only the statistics of the training rows differ.
    monkeypatch.setattr(_regression, "heldout_noise_var", lambda *args: args[4])
    local._refine_head(data)
    # Each process summed its half of the rows in float64 and one all-reduce
    # added the halves; one process sums all rows in sequence. The statistics
    # then differ by at most about n_rows * eps = 4e-14 relative, which the
    # posterior's solve amplifies by at most the condition number of the Gram
    # matrix (1.5e6 here): 6e-8, hence rtol=1e-7 (measured: bitwise equal).
    # The statistics of one process's half alone move the heads by 0.02 to 0.3.
    heads = local._inference_module.head, two._inference_module.head
    for a, b in zip(*(head.parameters() for head in heads)):
        np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=1e-7, atol=1e-12)


def test_end_of_fit_is_shared_exactly(fits):
    """The ELBO and ood_score's reference, computed on two processes' rows, equal one process's."""
    X, y, one, two, _ = fits
    local = copy.deepcopy(two)
    data = copy.copy(local)._prepare(X, y)
    # Same model, all rows in this process: the sums differ only in the order of
    # the float64 additions (the two halves' sums, then added), and each row's
    # epistemic variance only by the chunk it is computed in (the worker_rtol of
    # tests/conftest.py, 1e-12). Leaving out one process's half, or counting it twice, changes the
    # ELBO by half of itself and the medians by O(1%).
    elbo = local._training_elbo(data.X, data.Y)
    np.testing.assert_allclose(two.elbo_, elbo, rtol=1e-12)
    local._set_epistemic_reference(data.X * local._x_scale + local._x_mean)  # as fit does
    np.testing.assert_allclose(two._epistemic_reference, local._epistemic_reference, rtol=1e-12)
    # Against the one-process fit: float32 rounding of the weights (see above).
    np.testing.assert_allclose(two.elbo_, one.elbo_, rtol=1e-5)
    np.testing.assert_allclose(two._epistemic_reference, one._epistemic_reference, rtol=1e-5)
    np.testing.assert_array_equal(two.shared_tasks_, one.shared_tasks_)
    np.testing.assert_allclose(two.sharing_gain_, one.sharing_gain_, rtol=1e-4, atol=1e-6)


def test_fitted_estimator_is_ordinary(fits):
    X, y, one, two, report = fits
    assert type(two) is SparseMultiTaskBNNRegressor
    assert two.regime_ == "network"
    assert all(name != "data_parallel_sync" for name, _ in two.net_.callbacks_)
    assert not any("shard" in name for name in two.net_.get_params())
    assert two.net_.iterator_train is two.net_.iterator_valid is TensorBatchLoader
    # Refitting in this process gives the one-process fit, bit for bit.
    refit = copy.deepcopy(two).fit(X, y)
    np.testing.assert_array_equal(refit.predict(X), one.predict(X))
    assert isinstance(report, DataParallelReport)
    # One all-reduce per step: 13 batches per epoch; the flat tensor holds the
    # gradients of every trainable parameter plus one counter per tensor and the rows.
    assert report.n_steps == 13 * two.n_epochs_
    params = [p for p in two.net_.module_.parameters() if p.requires_grad]
    assert report.bytes_per_step == 4 * (sum(p.numel() for p in params) + len(params) + 1)
    # The phases of process 0's fit: the epochs, then the end of the fit, inside the fit.
    assert 0 < report.train_seconds and 0 < report.end_seconds
    assert report.train_seconds + report.end_seconds <= report.fit_seconds < report.total_seconds
    assert 0 < report.end_cpu_seconds <= report.fit_cpu_seconds


@pytest.mark.slow
def test_early_stopping_stops_every_process_at_the_same_epoch():
    """Early stopping decides on the reduced validation loss: the one-process epoch, everywhere."""
    X, y = _data()
    settings = {**SETTINGS, "max_epochs": 150, "batch_size": 16, "n_iter_no_change": 1}
    settings["learning_rate"] = 1e-2
    one = SparseMultiTaskBNNRegressor(**settings).fit(X, y)
    two = fit_data_parallel(SparseMultiTaskBNNRegressor(**settings), X, y, timeout=TIMEOUT)
    assert one.n_epochs_ < settings["max_epochs"]  # it did stop early
    assert two.n_epochs_ == one.n_epochs_
    # The best epoch's weights restored in both: float32 rounding over 975
    # steps (measured 9e-7; 3.6e-4 after 3,136 steps of the 10^6-row
    # benchmark), far below the 0.1-0.5 of another seed.
    np.testing.assert_allclose(two.predict(X), one.predict(X), atol=1e-4)


@pytest.mark.slow
def test_missing_labels_stay_close():
    """With missing labels each part weights its own labels: close to, not equal to, one process."""
    X, y = _data(n_rows=300, missing=True)
    settings = {**SETTINGS, "validation_fraction": None, "max_epochs": 10}
    one = SparseMultiTaskBNNRegressor(**settings).fit(X, y)
    two = fit_data_parallel(SparseMultiTaskBNNRegressor(**settings), X, y, timeout=TIMEOUT)
    other_seed = SparseMultiTaskBNNRegressor(**{**settings, "random_state": 1}).fit(X, y)
    gap = np.abs(two.predict(X) - one.predict(X)).max()
    # The reweighting changes each step by a few percent of the gradient of
    # task 1; the fits stay much closer than two seeds are.
    assert gap < 0.2 * np.abs(other_seed.predict(X) - one.predict(X)).max()


@pytest.mark.slow
def test_errors_in_a_process_are_raised_here():
    # One labelled row cannot be split over two processes: the check runs in
    # the processes, and its ValueError reaches the caller as it is.
    X, y = _data(n_rows=20)
    with pytest.raises(ValueError, match="Use fewer processes"):
        fit_data_parallel(SparseMultiTaskBNNRegressor(**SETTINGS), X[:1], y[:1], timeout=TIMEOUT)


class _AbortsInProcess1(SparseMultiTaskBNNRegressor):
    """Process 1 dies of SIGABRT as it starts fitting, as a native crash would."""

    def _fit(self, X, y, **fit_params):
        if torch.distributed.is_initialized() and torch.distributed.get_rank() == 1:
            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # no core file
            os.write(2, b"native failure in process 1\n")
            os.kill(os.getpid(), signal.SIGABRT)
        return super()._fit(X, y, **fit_params)


@pytest.mark.slow
def test_a_crash_names_the_process_and_its_signal():
    X, y = _data(n_rows=100)
    match = r"(?s)Training process 1 of 2 \(pid \d+\) was killed by signal SIGABRT.*native failure"
    with pytest.raises(RuntimeError, match=match):
        fit_data_parallel(_AbortsInProcess1(**SETTINGS), X, y, timeout=TIMEOUT)


def test_rendezvous_port_is_held_until_the_fit_ends():
    """No free-port probe: the store listens on its port from the start, so none can take it."""
    store = _rendezvous_store("127.0.0.1", None, 5.0)
    with socket.socket() as other, pytest.raises(OSError):
        other.bind(("127.0.0.1", store.port))
    X, y = _data(n_rows=20)
    with pytest.raises(ValueError, match=r"rendezvous on 127\.0\.0\.1"):
        fit_data_parallel(SparseMultiTaskBNNRegressor(**SETTINGS), X, y, master_port=store.port)


@pytest.mark.slow
def test_timeout_stops_the_processes():
    X, y = _data()
    with pytest.raises(TimeoutError, match="did not finish within"):
        fit_data_parallel(SparseMultiTaskBNNRegressor(**SETTINGS), X, y, timeout=1.0)


@pytest.mark.parametrize(
    "change, match",
    [
        ({"aggregator": "pcgrad"}, "aggregator='mean'"),
        ({"n_estimators": 3}, "one network"),
        ({"regime": "evidence"}, "mini-batches"),
        ({"device": "gpu"}, "device='gpu'"),
        ({"learning_rate": -1.0}, "learning_rate"),
    ],
)
def test_unsupported_settings(change, match):
    X, y = _data(n_rows=20)
    with pytest.raises(ValueError, match=match):
        fit_data_parallel(SparseMultiTaskBNNRegressor(**{**SETTINGS, **change}), X, y)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"n_processes": 0}, "n_processes"),
        ({"threads_per_process": 1.5}, "threads_per_process"),
        ({"backend": "tcp"}, "backend"),
        ({"timeout": 0}, "timeout"),
    ],
)
def test_invalid_arguments(kwargs, match):
    X, y = _data(n_rows=20)
    with pytest.raises(ValueError, match=match):
        fit_data_parallel(SparseMultiTaskBNNRegressor(**SETTINGS), X, y, **kwargs)


def test_other_estimators_are_refused():
    X, y = _data(n_rows=20)
    with pytest.raises(TypeError, match="SparseMultiTaskBNNRegressor"):
        fit_data_parallel(BayesAggMTLRegressor(), X, y)


@pytest.mark.parametrize("n_rows, world_size", [(10, 3), (7, 2), (2, 2), (5, 1)])
def test_shard_rows_partition(n_rows, world_size):
    parts = [range(n_rows)[shard_rows(n_rows, r, world_size)] for r in range(world_size)]
    assert [i for part in parts for i in part] == list(range(n_rows))
    assert max(map(len, parts)) - min(map(len, parts)) <= 1


def test_each_process_receives_only_its_shard(fits):
    """Training rows: a contiguous half each; validation rows: each its part of every batch."""
    *_, report = fits
    n_train, n_valid = 385, 97  # see N_ROWS
    assert sum(report.train_rows_held) == n_train
    assert sorted(report.train_rows_held) == [192, 193]
    # Process 0 runs the held-out noise search: it holds every validation row;
    # process 1 its part of each of the 4 batches (16 + 16 + 16 + 0 rows).
    assert report.valid_rows_held == (n_valid, 48)
    assert len(report.peak_rss_mib) == 2 and min(report.peak_rss_mib) > 0


@pytest.fixture(scope="module")
def prepared():
    """The prepared data of the ``fits`` regressor and its shards for two processes."""
    X, y = _data()
    estimator = SparseMultiTaskBNNRegressor(**SETTINGS)
    state, data = prepare_once(estimator, X, y, {})
    skeleton, shards = plan_shards(data, 2)
    return state, data, [shard_data(skeleton, shard) for shard in shards]


def test_the_shards_partition_the_rows(prepared):
    _, data, parts = prepared
    X_train, Y_train = data.train
    got = np.concatenate([part.train[0].blocks[0][0] for part in parts])
    np.testing.assert_array_equal(got, X_train)  # contiguous halves, in order
    ids = np.concatenate([part.X.blocks[1][1] for part in parts])  # validation parts
    np.testing.assert_array_equal(np.sort(ids), np.arange(len(X_train), len(data.X)))
    for part in parts:
        assert len(part.X) == len(data.X) and part.X.rows_held < 0.6 * len(data.X)
        np.testing.assert_array_equal(part.Y, np.concatenate([Y_train, data.valid[1]]))
    assert isinstance(parts[1].valid[0], ShardedRows)
    np.testing.assert_array_equal(parts[0].valid[0], data.valid[0])  # process 0: all of them


def test_the_parts_of_each_batch_make_the_one_process_batch(prepared):
    """Same seed, same permutation: the rows each process holds of a batch are its rows."""
    from skorch.dataset import Dataset

    _, data, parts = prepared

    def batches(loader):
        torch.manual_seed(0)  # as the fit seeds torch's generator
        return [(x.numpy(), y.numpy()) for x, y in loader]

    one = batches(TensorBatchLoader(Dataset(*data.train), batch_size=32, shuffle=True))
    ranks = [
        batches(ShardLoader(Dataset(*part.train), batch_size=32, shuffle=True, shard=(r, 2)))
        for r, part in enumerate(parts)
    ]
    assert all(len(r) == len(one) for r in ranks)
    for b, (x, y) in enumerate(one):
        x2 = np.concatenate([r[b][0] for r in ranks])
        y2 = np.concatenate([r[b][1] for r in ranks])
        order, order2 = np.argsort(x[:, 0]), np.argsort(x2[:, 0])  # the same rows, reordered
        np.testing.assert_array_equal(x2[order2], x[order])
        np.testing.assert_array_equal(y2[order2], y[order])
    # Validation: each process's part of each batch, as np.array_split cuts it.
    for r, part in enumerate(parts):
        got = batches(ShardLoader(Dataset(*part.valid), batch_size=32, shard=(r, 2)))
        assert len(got) == 4  # 97 validation rows in batches of 32
        for b, (x, _) in enumerate(got):
            rows = np.array_split(np.arange(32 * b, min(32 * (b + 1), 97)), 2)[r]
            np.testing.assert_array_equal(x, data.valid[0][rows])


def test_sharded_rows_record_column_operations():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((7, 3)).astype(np.float32)
    scale, mean = rng.uniform(1, 2, 3), rng.standard_normal(3)
    ids = np.array([1, 4, 6])
    rows = ShardedRows("x", 7, ((X[ids], ids),))
    shifted = rows * scale + mean  # recorded, applied to the rows held here
    ((local, got_ids),) = shifted.local_blocks()
    np.testing.assert_array_equal(local, X[ids] * scale + mean)
    np.testing.assert_array_equal(got_ids, ids)
    with pytest.raises(RuntimeError, match="only process 0 can gather them"):
        np.asarray(shifted)
    shifted.gather = lambda r: X * scale + mean  # what process 0's row work returns
    np.testing.assert_array_equal(np.concatenate([shifted, X]), np.vstack([X * scale + mean, X]))
    assert len(valid_part_ids(97, 32, 1, 2)) == 48


def test_no_process_group_in_the_caller(fits):
    assert not torch.distributed.is_initialized()
