"""A mini-batch iterator over in-memory tensors, for skorch's ``iterator_*``."""

from __future__ import annotations

import numpy as np
import torch


def batch_tensor(values) -> torch.Tensor:
    """The tensor a loader cuts its batches from: the values as NumPy reads them.

    No copy for an ndarray, its dtype kept (the estimators' float32 inputs,
    NaN where a label is missing). The loaders of one process and of a
    data-parallel fit's processes both convert through it, so that their
    batches agree.
    """
    return torch.as_tensor(np.asarray(values))


class TensorBatchLoader:
    """Iterate over ``(X, y)`` mini-batches by slicing whole tensors.

    A drop-in for skorch's ``iterator_train`` / ``iterator_valid`` (it takes
    the dataset and keyword arguments and is iterable). It converts the
    arrays of a :class:`skorch.dataset.Dataset` to tensors once and yields
    index-sliced batches, avoiding ``DataLoader``'s per-sample fetch and
    collate, which dominates the cost of small networks on large data.
    Shuffling draws from torch's global generator, which the estimators seed.
    (The processes of a data-parallel fit use
    :class:`sk_mtbnn.distributed._shards.ShardLoader` instead, which draws the
    same permutation and yields the rows of each batch that a process holds.)
    """

    def __init__(
        self,
        dataset,
        batch_size: int = 128,
        shuffle: bool = False,
        **_ignored,
    ) -> None:
        self.X = batch_tensor(dataset.X)
        self.y = batch_tensor(dataset.y)
        self.batch_size = int(batch_size)
        self.shuffle = shuffle

    def __len__(self) -> int:
        return -(-len(self.X) // self.batch_size)

    def __iter__(self):
        n = len(self.X)
        order = torch.randperm(n) if self.shuffle else None
        for start in range(0, n, self.batch_size):
            stop = min(start + self.batch_size, n)
            idx = slice(start, stop) if order is None else order[start:stop]
            yield self.X[idx], self.y[idx]
