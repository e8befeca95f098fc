"""The rows each process of a data-parallel fit holds, and the loader that batches them.

The calling process validates, standardises and splits the data once
(:func:`prepare_once`) and gives each process only its shard of the inputs
(:func:`plan_shards`): a contiguous ``1/world_size`` of the training rows and
its part of every validation batch (process 0 also holds every validation
row, for the held-out noise search it runs alone). The targets, a few
columns, go to every process in full. Every process draws the same global
permutation of the training rows each epoch (indices only, from the shared
seed) and computes the gradient of the rows of each global batch that it
holds (:class:`ShardLoader`), so the parts of a batch over the processes are
the one-process batch. The end-of-fit row work runs on the rows each process
holds (:class:`ShardedRows`).
"""

from __future__ import annotations

import math
import pickle
from pathlib import Path

import numpy as np
import torch
from sklearn.base import clone

from .._training.loader import batch_tensor


class _Prepared(Exception):
    """Raised by :class:`_StopsAfterPreparing` with the estimator and its prepared data."""

    def __init__(self, estimator, data) -> None:
        super().__init__()
        self.estimator, self.data = estimator, data


class _StopsAfterPreparing:
    """Mixed in front of the estimator's class: ``fit`` stops once the data is prepared."""

    def _prepare(self, X, y):
        raise _Prepared(self, super()._prepare(X, y))


def prepare_once(estimator, X, y, fit_params):
    """Run ``estimator``'s fit up to its prepared data: the fitted state so far, and the data.

    Returns ``(state, data)``: the attributes the fit set before training
    (``n_features_in_``, the standardisation, ...) and its ``TrainingData``.
    Errors in the data are raised here, before any process starts.
    """
    cls = type(estimator)
    stopper = type(f"_Preparing{cls.__name__}", (_StopsAfterPreparing, cls), {})
    params = estimator.get_params(deep=False)
    try:
        stopper(**params).fit(X, y, **fit_params)
    except _Prepared as prepared:
        state = {k: v for k, v in vars(prepared.estimator).items() if k not in params}
        return state, prepared.data
    raise RuntimeError(f"{cls.__name__}.fit did not prepare its data through _prepare.")


class FitsShard:
    """Mixed in front of the estimator's class in the processes: ``fit`` uses the shard.

    ``_prepare`` returns the data built from this process's shard (set as
    ``_shard = (state, data)`` before ``fit``) instead of validating ``X``.
    """

    def _prepare(self, X, y):
        state, data = self._shard
        vars(self).update(state)
        return data


def shard_rows(n_rows: int, rank: int, world_size: int) -> slice:
    """The contiguous rows of ``rank`` when ``world_size`` processes share ``range(n_rows)``.

    The parts of ``np.array_split``: the first ``n_rows % world_size`` ranks
    hold one row more. Every split of rows among the processes (the training
    rows, each validation batch, the row work's parts) is this one.
    """
    sizes = [n_rows // world_size + (r < n_rows % world_size) for r in range(world_size)]
    start = sum(sizes[:rank])
    return slice(start, start + sizes[rank])


def valid_part_ids(n_rows: int, batch_size: int, rank: int, world_size: int) -> np.ndarray:
    """The rows of ``rank``'s parts of the consecutive batches over ``range(n_rows)``.

    The part of each batch is its :func:`shard_rows` part for ``rank``.
    """
    ids = [np.zeros(0, dtype=np.int64)]
    for start in range(0, n_rows, batch_size):
        part = shard_rows(min(batch_size, n_rows - start), rank, world_size)
        ids.append(np.arange(start + part.start, start + part.stop, dtype=np.int64))
    return np.concatenate(ids)


def plan_shards(data, world_size: int):
    """``data`` without its arrays, and (lazily) each process's shard of them.

    A shard holds ``X_train`` (the process's contiguous training rows, from
    ``train_start``), ``X_valid`` and ``valid_ids`` (its part of every
    validation batch), the targets of all rows (``Y``: the training rows,
    then the validation rows) and, for process 0, every validation row
    (``X_valid_all``).
    """
    X_train, Y_train = data.train
    Y = Y_train if data.valid is None else np.concatenate([Y_train, data.valid[1]])

    def shard(rank: int) -> dict:
        rows = shard_rows(len(X_train), rank, world_size)
        out = {"X_train": X_train[rows], "train_start": rows.start, "n_train": len(X_train)}
        out["Y"] = Y
        if data.valid is not None:
            ids = valid_part_ids(len(data.valid[0]), data.batch_size, rank, world_size)
            out.update(X_valid=data.valid[0][ids], valid_ids=ids)
            if rank == 0:
                out["X_valid_all"] = data.valid[0]
        return out

    skeleton = data.replace(X=None, Y=None, train=None, valid=None)
    return skeleton, (shard(rank) for rank in range(world_size))


def write_shards(estimator, X, y, fit_params, world_size: int, tmp: Path):
    """Prepare the data once and write each process's shard to ``tmp/shard_{rank}.pkl``.

    Returns ``(state, skeleton)``: the fit's state so far and the data
    without its arrays (see :func:`prepare_once`, :func:`plan_shards`).
    """
    state, data = prepare_once(estimator, X, y, fit_params)
    skeleton, shards = plan_shards(data, world_size)
    for rank, shard in enumerate(shards):
        with open(tmp / f"shard_{rank}.pkl", "wb") as f:
            pickle.dump(shard, f, protocol=pickle.HIGHEST_PROTOCOL)
    return state, skeleton


def shard_data(skeleton, shard: dict):
    """The ``TrainingData`` of one process, from its shard."""
    n_train, Y = shard["n_train"], shard["Y"]
    start = shard["train_start"]
    train_block = (shard["X_train"], np.arange(start, start + len(shard["X_train"])))
    train = ShardedRows("train", n_train, (train_block,))
    if "X_valid" not in shard:
        return skeleton.replace(X=train, Y=Y, train=(train, Y), valid=None)
    Y_train, Y_valid = Y[:n_train], Y[n_train:]
    part = (shard["X_valid"], shard["valid_ids"])
    valid = shard.get("X_valid_all")
    if valid is None:
        valid = ShardedRows("valid", len(Y_valid), (part,))
    every = ShardedRows("all", len(Y), (train_block, (part[0], n_train + part[1])))
    return skeleton.replace(X=every, Y=Y, train=(train, Y_train), valid=(valid, Y_valid))


class ShardedRows(np.lib.mixins.NDArrayOperatorsMixin):
    """An ``(n_rows, n_columns)`` array of which this process holds some rows.

    Parameters
    ----------
    name : str
        Which array it is (the same in every process).
    n_rows : int
        Rows of the whole array.
    blocks : tuple of (ndarray, ndarray of int)
        The rows held here and their indices in the whole array.
    ops : tuple, default=()
        Element-wise ufuncs with per-column operands (``X * scale + mean``)
        applied to the rows when they are used; recorded, not computed.

    Notes
    -----
    The end-of-fit row work (:class:`~sk_mtbnn.distributed._sync.SharedRowWork`)
    runs on each process's rows. Any other use of the values (``np.asarray``,
    indexing, a NumPy function) gathers the whole array into process 0,
    which is allowed only at the end of the fit, while the other processes
    serve it (``gather`` is then set).
    """

    def __init__(self, name: str, n_rows: int, blocks: tuple, ops=()) -> None:
        self.name, self.n_rows, self.blocks, self.ops = name, n_rows, blocks, ops
        self.gather = None
        self._full = None

    def __len__(self) -> int:
        return self.n_rows

    @property
    def shape(self) -> tuple[int, int]:
        return (self.n_rows, self.blocks[0][0].shape[1])

    @property
    def ndim(self) -> int:
        return 2

    @property
    def dtype(self) -> np.dtype:
        return next(self.local_blocks())[0].dtype

    @property
    def rows_held(self) -> int:
        return sum(len(ids) for _, ids in self.blocks)

    def held_ids(self) -> np.ndarray:
        """The indices of the rows held here, in the order of :meth:`local_blocks`."""
        return np.concatenate([np.zeros(0, dtype=np.int64), *(ids for _, ids in self.blocks)])

    def with_ops(self, ops) -> ShardedRows:
        rows = ShardedRows(self.name, self.n_rows, self.blocks, tuple(ops))
        rows.gather = self.gather
        return rows

    def local_blocks(self):
        """The rows held here, the recorded operations applied, and their indices."""
        for x, ids in self.blocks:
            for ufunc, position, others in self.ops:
                x = ufunc(*others[:position], x, *others[position:])
            yield x, ids

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        others = [a for a in inputs if a is not self]
        per_column = all(np.ndim(a) == 0 or np.shape(a) == (self.shape[1],) for a in others)
        if method == "__call__" and not kwargs and len(others) == len(inputs) - 1 and per_column:
            position = next(i for i, a in enumerate(inputs) if a is self)
            others = tuple(np.asarray(a) for a in others)
            return self.with_ops((*self.ops, (ufunc, position, others)))
        return getattr(ufunc, method)(*_materialised(inputs), **kwargs)

    def __array_function__(self, func, types, args, kwargs):
        return func(*_materialised(args), **dict(zip(kwargs, _materialised(kwargs.values()))))

    def __array__(self, dtype=None, copy=None):
        if self.gather is None:
            raise RuntimeError(
                f"The {self.name!r} rows of a data-parallel fit are spread over its processes; "
                "only process 0 can gather them, at the end of the fit."
            )
        full = self.gather(self)
        return full if dtype is None else full.astype(dtype, copy=False)

    def __getitem__(self, key):
        # Chunked reads (a head with input-dependent noise averages it over the
        # rows): gather the rows once.
        if self._full is None:
            self._full = np.asarray(self)
        return self._full[key]


def _materialised(values):
    out = []
    for v in values:
        if isinstance(v, ShardedRows):
            v = np.asarray(v)
        elif isinstance(v, list | tuple):
            v = type(v)(_materialised(v))
        out.append(v)
    return out


class ShardLoader:
    """The rows this process holds of each global mini-batch (skorch's ``iterator_*``).

    Every process draws the same permutation of all ``n`` rows (torch's
    global generator, seeded by the fit, as
    :class:`~sk_mtbnn._training.loader.TensorBatchLoader` draws it) and cuts
    it into the same global batches; a process yields the rows of each batch
    that it holds, in the batch's order (possibly none). Over the processes
    the parts are the one-process batch: the same values (the operations
    recorded on :class:`ShardedRows` applied, their dtype kept, NaN where a
    label is missing), converted as the one-process loader converts them.
    """

    def __init__(
        self,
        dataset,
        batch_size: int = 128,
        shuffle: bool = False,
        shard: tuple[int, int] = (0, 1),
        **_ignored,
    ) -> None:
        X = dataset.X
        if isinstance(X, ShardedRows):
            # The values np.asarray(X) has in one process: the recorded operations applied.
            rows = np.concatenate([x for x, _ in X.local_blocks()])
            ids = X.held_ids()
        else:  # process 0's validation rows, all of them: its parts of the batches
            rank, world_size = shard
            ids = valid_part_ids(len(X), int(batch_size), rank, world_size)
            rows = np.asarray(X)[ids]
        self.n_rows, self.ids = len(X), torch.as_tensor(ids, dtype=torch.long)
        self.X = batch_tensor(rows)
        self.y = batch_tensor(dataset.y)
        self.batch_size = int(batch_size)
        self.shuffle = shuffle

    def __len__(self) -> int:
        return math.ceil(self.n_rows / self.batch_size)

    def __iter__(self):
        n = self.n_rows
        order = torch.randperm(n) if self.shuffle else torch.arange(n)
        slot = torch.full((n,), -1, dtype=torch.long)  # where each row is held here
        slot[self.ids] = torch.arange(len(self.ids))
        slots = slot[order]
        for start in range(0, n, self.batch_size):
            here = slots[start : start + self.batch_size]
            mine = here >= 0
            yield self.X[here[mine]], self.y[order[start : start + self.batch_size][mine]]


def sharded_copy(estimator, rank: int, mixins: tuple = ()):
    """A copy of ``estimator`` of a class that fits on a shard (``mixins`` in front)."""
    cls = type(estimator)
    name = f"_Shard{rank}{cls.__name__}"
    return type(name, (FitsShard, *mixins, cls), {})(**clone(estimator).get_params(deep=False))
