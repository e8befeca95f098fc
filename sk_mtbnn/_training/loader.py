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

    With ``shard=(rank, world_size)`` (data-parallel training,
    :func:`sk_mtbnn.distributed.fit_data_parallel`) every process draws the
    same global batches and yields only its part of each:
    ``torch.tensor_split(batch, world_size)[rank]``. The parts of a batch
    over all processes are then exactly the batch of a one-process fit, and
    every process yields the same number of batches (a part may be empty
    when a batch has fewer rows than processes).
    """

    def __init__(
        self,
        dataset,
        batch_size: int = 128,
        shuffle: bool = False,
        shard: tuple[int, int] | None = None,
        **_ignored,
    ) -> None:
        self.X = torch.as_tensor(np.asarray(dataset.X))
        self.y = torch.as_tensor(np.asarray(dataset.y))
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.shard = shard

    def __len__(self) -> int:
        return -(-len(self.X) // self.batch_size)

    def __iter__(self):
        n = len(self.X)
        order = torch.randperm(n) if self.shuffle else None
        for start in range(0, n, self.batch_size):
            stop = min(start + self.batch_size, n)
            if self.shard is not None:
                rank, world_size = self.shard
                part = torch.tensor_split(torch.arange(start, stop), world_size)[rank]
                start, stop = (int(part[0]), int(part[-1]) + 1) if len(part) else (start, start)
            idx = slice(start, stop) if order is None else order[start:stop]
            yield self.X[idx], self.y[idx]
