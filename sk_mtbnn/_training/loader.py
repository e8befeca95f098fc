"""A mini-batch iterator over in-memory tensors, for skorch's ``iterator_*``."""

from __future__ import annotations

import numpy as np
import torch


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
        self.X = torch.as_tensor(np.asarray(dataset.X))
        self.y = torch.as_tensor(np.asarray(dataset.y))
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
