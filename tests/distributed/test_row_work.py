"""The end-of-fit row work shared by 2 processes (gloo on 127.0.0.1), on a toy estimator.

Process 0 runs :class:`SharedRowWork` on rows that the two processes hold
in parts, process 1 serves it; the results are compared here with the same
methods run on all rows in one process.
"""

import os
import pickle
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist

from sk_mtbnn.distributed._shards import ShardedRows
from sk_mtbnn.distributed._sync import SharedRowWork, run_processes, save_error, serve_row_work
from sk_mtbnn.distributed.data_parallel import _rendezvous_store
from sk_mtbnn.nn.blr import linear_stats

#: Bound on the processes (they are stopped with a TimeoutError after it).
TIMEOUT = 60.0
N_ROWS = 11
#: The rows each process holds of "all", in two blocks (like the training rows
#: and validation parts of a fit); process 1 holds no row of "none".
HELD = {
    "all": ([np.arange(0, 5), np.array([9])], [np.arange(5, 9), np.array([10])]),
    "none": ([np.arange(N_ROWS)], [np.zeros(0, dtype=np.int64)]),
}


def _data():
    """Integer-valued inputs (exact sums in any order) and targets with missing labels.

    Task 1 has no label on the rows process 1 holds of "all".
    """
    rng = np.random.RandomState(0)
    X = rng.randint(-5, 6, size=(N_ROWS, 3)).astype(np.float32)
    Y = rng.randint(-5, 6, size=(N_ROWS, 2)).astype(np.float32)
    Y[[5, 6, 7, 8, 10], 1] = np.nan
    Y[[1, 3], 0] = np.nan
    return X, Y


def _held_rows(rank: int) -> dict:
    X, _ = _data()
    return {
        name: ShardedRows(name, N_ROWS, tuple((X[ids], ids) for ids in held[rank]))
        for name, held in HELD.items()
    }


class _Toy:
    """The row methods of an estimator, on plain arrays (``_inference_module``: a factor)."""

    _inference_module = 1.0

    def _sums(self, X, Y):
        return np.array([X.sum() * self._inference_module, np.nansum(Y)])

    def _label_counts(self, X, Y):
        return (~np.isnan(Y)).sum(0)

    def _row_labels(self, X, Y):
        return ~np.isnan(Y)

    def _stats(self, X, Y):
        x = torch.as_tensor(X, dtype=torch.float64)
        return linear_stats(x.expand(Y.shape[1], *x.shape), torch.as_tensor(Y, dtype=torch.float64))

    def _row_sums(self, X):
        return X.sum(1) * self._inference_module


def _targets_as_given(Y):
    """Targets that are the processes' own, as another array, and other values."""
    other = np.where(np.isnan(Y), np.nan, 2 * Y + 1).astype(np.float32)
    return {
        "same": Y,
        "copy": Y.copy(),
        "view": Y[:],
        "float64": Y.astype(np.float64),
        "other": other,
    }


def _lead(rows: dict, tmp: Path) -> None:
    """Process 0: every call of the row work, its results written to ``result.pkl``."""
    _, Y = _data()
    work, toy, out = SharedRowWork(2), _Toy(), {}
    for key, targets in _targets_as_given(Y).items():
        out["sums", key] = work.run(toy, "_sums", "sum", rows["all"], targets)
    scaled = rows["all"] * np.array([2.0, 1.0, 0.5]) + 1.0  # recorded operations
    toy._inference_module = 3.0  # the model is sent with every call
    out["sums", "ops"] = work.run(toy, "_sums", "sum", scaled, Y)
    out["row_sums"] = work.run(toy, "_row_sums", "concatenate", scaled)
    toy._inference_module = 1.0
    for name in HELD:
        out["counts", name] = work.run(toy, "_label_counts", "sum", rows[name], Y)
        out["row_labels", name] = work.run(toy, "_row_labels", "concatenate", rows[name], Y)
        out["stats", name] = work.run(toy, "_stats", "sum", rows[name], Y)
        out["gather", name] = work.gather(rows[name])
    X, _ = _data()
    out["counts", "parts"] = work.run(toy, "_label_counts", "sum", X, Y)  # whole arrays
    out["n_calls"] = work.n_calls_
    work.close()
    (tmp / "result.pkl").write_bytes(pickle.dumps(out))


def _worker(rank: int, port: int, tmp: str) -> None:
    tmp = Path(tmp)
    try:
        store = dist.TCPStore("127.0.0.1", port, None, False, timedelta(seconds=TIMEOUT))
        dist.init_process_group(
            "gloo", store=store, rank=rank, world_size=2, timeout=timedelta(seconds=TIMEOUT)
        )
        try:
            rows = _held_rows(rank)
            # No gather is set: a call that fell back to gathering the rows would raise.
            if rank == 0:
                _lead(rows, tmp)
            else:
                serve_row_work(_Toy(), rows)
        finally:
            dist.destroy_process_group()
    except BaseException as error:
        save_error(error, tmp / f"error_{rank}.pkl")
        os._exit(1)
    os._exit(0)  # as fit_data_parallel's processes end (no torch.distributed teardown)


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    """The results of process 0's row work over 2 processes."""
    tmp = tmp_path_factory.mktemp("row_work")
    store = _rendezvous_store("127.0.0.1", None, TIMEOUT)
    run_processes(_worker, (store.port, str(tmp)), 2, TIMEOUT, tmp)
    del store
    return pickle.loads((tmp / "result.pkl").read_bytes())


@pytest.mark.parametrize("key", list(_targets_as_given(_data()[1])))
def test_targets_are_the_ones_given(shared, key):
    """A copy, a view, another dtype or other values of the targets: used as given, rows sharded."""
    X, Y = _data()
    # Integer-valued data: the sums are exact in any order, so the two processes'
    # parts add up to the one-process value exactly.
    expected = _Toy()._sums(X, _targets_as_given(Y)[key])
    np.testing.assert_array_equal(shared["sums", key], expected)


def test_operations_and_model_reach_the_other_process(shared):
    X, Y = _data()
    toy = _Toy()
    toy._inference_module = 3.0
    scaled = X * np.array([2.0, 1.0, 0.5]) + 1.0  # exact in float64: halves of integers
    np.testing.assert_array_equal(shared["sums", "ops"], toy._sums(scaled, Y))
    np.testing.assert_array_equal(shared["row_sums"], toy._row_sums(scaled))


@pytest.mark.parametrize("name", list(HELD))
def test_label_counts_survive_the_round_trip_exactly(shared, name):
    """Per-task label counts of the parts add up to the whole, with a part that has none.

    Process 1 holds no label of task 1 in "all", and no row at all of "none".
    """
    X, Y = _data()
    counts = (~np.isnan(Y)).sum(0)
    held_1 = np.concatenate(HELD[name][1])
    assert (~np.isnan(Y[held_1, 1])).sum() == 0  # the case under test
    got = shared["counts", name]
    assert got.dtype == counts.dtype
    np.testing.assert_array_equal(got, counts)
    np.testing.assert_array_equal(shared["row_labels", name], ~np.isnan(Y))  # row by row
    stats, one = shared["stats", name], _Toy()._stats(X, Y)
    # The float64 counts are sums of 0/1: exact. The other statistics are sums of
    # products of integers below 2^53: exact too, whatever the order.
    for got_part, expected in zip(stats, one):
        assert torch.isfinite(got_part).all()
        np.testing.assert_array_equal(got_part.numpy(), expected.numpy())
    np.testing.assert_array_equal(shared["gather", name], X)  # every row, in order
    np.testing.assert_array_equal(shared["counts", "parts"], counts)


def test_one_exchange_per_call(shared):
    # 5 target variants, 2 calls with operations, 3 per array of HELD, 1 on whole arrays.
    assert shared["n_calls"] == 5 + 2 + 3 * len(HELD) + 1
