"""The shards of a data-parallel fit and their loader, in one process (no process group)."""

import numpy as np
import pytest
import torch
from skorch.dataset import Dataset

from sk_mtbnn import SparseMultiTaskBNNRegressor
from sk_mtbnn._training.loader import TensorBatchLoader
from sk_mtbnn.distributed import _shards
from sk_mtbnn.distributed._shards import (
    ShardLoader,
    plan_shards,
    prepare_once,
    shard_data,
    shard_rows,
    valid_part_ids,
)

SETTINGS = {"hidden_layer_sizes": (16,), "max_epochs": 2, "batch_size": 8, "random_state": 0}


def _prepared(n_rows=62, missing=True):
    rng = np.random.RandomState(0)
    X = rng.uniform(-2, 2, size=(n_rows, 3))
    y = np.column_stack([np.sin(2 * X[:, 0]), X[:, 1] * X[:, 2]])
    if missing:
        y[::3, 1] = np.nan
    return prepare_once(SparseMultiTaskBNNRegressor(**SETTINGS), X, y, {})[1]


@pytest.mark.parametrize("world_size", [1, 2, 3, 5])
@pytest.mark.parametrize("batch_size", [1, 3, 8, 32])
def test_validation_parts_are_array_split_parts_of_each_batch(batch_size, world_size):
    # Independent reference: np.array_split of each batch, which the docstrings promise.
    for n_rows in range(0, 41):
        for r in range(world_size):  # shard_rows is np.array_split too
            split = np.array_split(np.arange(n_rows), world_size)[r]
            np.testing.assert_array_equal(
                np.arange(n_rows)[shard_rows(n_rows, r, world_size)], split
            )
        parts = [valid_part_ids(n_rows, batch_size, r, world_size) for r in range(world_size)]
        for r, part in enumerate(parts):
            expected = [
                np.array_split(np.arange(start, min(start + batch_size, n_rows)), world_size)[r]
                for start in range(0, n_rows, batch_size)
            ]
            np.testing.assert_array_equal(part, np.concatenate([np.zeros(0, int), *expected]))
            assert part.dtype == np.int64
        np.testing.assert_array_equal(np.sort(np.concatenate(parts)), np.arange(n_rows))


def _extra_rows_last(n_rows: int, rank: int, world_size: int) -> slice:
    """Another valid split of ``range(n_rows)``: the last ranks hold the extra rows."""
    extra = n_rows % world_size
    sizes = [n_rows // world_size + (r >= world_size - extra) for r in range(world_size)]
    start = sum(sizes[:rank])
    return slice(start, start + sizes[rank])


def test_one_split_decides_every_shard(monkeypatch):
    """The training rows, each validation batch and process 0's loader follow shard_rows alone.

    With another split in its place, every consumer changes with it: no
    second copy of the arithmetic can disagree with the first.
    """

    split = _extra_rows_last
    monkeypatch.setattr(_shards, "shard_rows", split)
    data = _prepared(n_rows=62)
    X_train, X_valid = data.train[0], data.valid[0]
    n_valid = len(X_valid)
    assert len(X_train) % 3 and n_valid % 3 and n_valid > data.batch_size  # uneven parts
    _, shards = plan_shards(data, 3)
    for rank, shard in enumerate(shards):
        rows = split(len(X_train), rank, 3)
        np.testing.assert_array_equal(shard["X_train"], X_train[rows])
        assert shard["train_start"] == rows.start
        expected = np.concatenate(
            [
                np.arange(start, min(start + data.batch_size, n_valid))[
                    split(min(data.batch_size, n_valid - start), rank, 3)
                ]
                for start in range(0, n_valid, data.batch_size)
            ]
        )
        np.testing.assert_array_equal(shard["valid_ids"], expected)
        np.testing.assert_array_equal(shard["X_valid"], X_valid[expected])
        # Process 0 holds every validation row and picks its parts in its loader.
        loader = ShardLoader(Dataset(*data.valid), batch_size=data.batch_size, shard=(rank, 3))
        np.testing.assert_array_equal(torch.cat([x for x, _ in loader]).numpy(), X_valid[expected])


def _batches(loader, seed=0):
    torch.manual_seed(seed)  # as the fit seeds torch's generator
    return [(x.numpy(), y.numpy()) for x, y in loader]


@pytest.mark.parametrize("shuffle", [True, False])
@pytest.mark.parametrize("which", ["train", "all"])
@pytest.mark.parametrize("world_size", [1, 2, 3])
def test_shard_batches_are_the_in_memory_batches(world_size, which, shuffle):
    """The two loaders on the same data: the processes' parts of each batch make its batch.

    The rows carry the column operations the estimators record on them
    (``X * scale + mean``, which also turns float32 into float64) and NaN
    labels; "all" is held in two blocks (training rows and validation parts).
    """
    data = _prepared()
    skeleton, shards = plan_shards(data, world_size)
    parts = [shard_data(skeleton, shard) for shard in shards]
    scale, mean = np.array([2.0, 0.5, 3.0]), np.array([1.0, -1.0, 0.25])
    if which == "train":
        X, Y = data.train
        held = [part.train[0] for part in parts]
    else:
        X, Y = np.concatenate([data.train[0], data.valid[0]]), parts[0].Y
        held = [part.X for part in parts]
    assert np.isnan(Y).any() and X.dtype == np.float32
    X_ops = X * scale + mean
    kwargs = {"batch_size": data.batch_size, "shuffle": shuffle}
    one = _batches(TensorBatchLoader(Dataset(X_ops, Y), **kwargs))
    rows = _batches(TensorBatchLoader(Dataset(np.arange(len(X))[:, None], Y), **kwargs))
    for rows_held in held:
        got = _batches(ShardLoader(Dataset(rows_held * scale + mean, Y), **kwargs))
        ids = np.concatenate([i for _, i in rows_held.blocks])
        assert len(got) == len(one)
        for (x, y), (x1, y1), (index, _) in zip(got, one, rows):
            mine = np.isin(index[:, 0], ids)  # the rows of the batch held here, in its order
            assert x.dtype == x1.dtype == np.float64 and y.dtype == y1.dtype == np.float32
            np.testing.assert_array_equal(x, x1[mine])
            np.testing.assert_array_equal(y, y1[mine])  # NaN at the same places
