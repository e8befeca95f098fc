"""What the processes of a data-parallel fit exchange, and how their failures reach the caller.

The gradient and loss callback and the row work are collectives of
:mod:`torch.distributed`: all processes of the group call them at the same
point, with tensors of the same shapes. :func:`run_processes` starts the
processes and raises the first failure of any.
"""

from __future__ import annotations

import functools
import operator
import pickle
import re
import signal
import time
from multiprocessing.connection import wait
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from skorch.callbacks import Callback

from ..estimators._regression import RowWork
from ._shards import ShardedRows, shard_rows

#: Name of the callback in a net's callbacks.
SYNC_CALLBACK = "data_parallel_sync"


class GradientSync(Callback):
    """Average the gradients of every training step over the processes.

    The all-reduce that :class:`torch.nn.parallel.DistributedDataParallel`
    performs, done at skorch's ``on_grad_computed`` (after the aggregator has
    written ``.grad``, before the optimiser step): each process contributes
    its gradient times the rows of its part of the batch, and the sum is
    divided by the rows of the whole batch. A process's gradient is that of
    the mean loss over its rows, so the result is the gradient of the mean
    loss over the whole batch, as in a one-process fit (exactly so when every
    row is labelled for every task; with missing labels each task's mean is
    over the labels of each part, weighted by the part's rows). One flat
    all-reduce per step carries the gradients, the rows and which
    parameters received a gradient on any process.

    At the end of each epoch the training and validation losses are combined
    the same way (weighted by rows), so that early stopping and the
    divergence check decide the same on every process. The parameters and
    buffers of process 0 are broadcast before training.
    """

    def initialize(self):
        self.n_steps_ = 0
        self.bytes_per_step_ = 0
        self.allreduce_seconds_ = 0.0
        self.train_seconds_ = 0.0
        self.train_cpu_seconds_ = 0.0
        #: Wall-clock and CPU-clock readings at the end of training.
        self.train_end_ = (float("nan"), float("nan"))
        return self

    def on_train_end(self, net, **kwargs) -> None:
        self.train_end_ = (time.perf_counter(), time.process_time())
        self.train_seconds_, self.train_cpu_seconds_ = np.subtract(self.train_end_, self._start)

    def on_train_begin(self, net, X=None, y=None, **kwargs) -> None:
        self._start = (time.perf_counter(), time.process_time())
        if not dist.is_initialized():
            return
        world_size = dist.get_world_size()
        valid = None if net.train_split is None else net.train_split(X, y)[1]
        sizes = {"training": len(X), "validation": world_size if valid is None else len(valid)}
        for name, size in sizes.items():
            if size < world_size:
                raise ValueError(
                    f"Data-parallel training over {world_size} processes needs at least as many "
                    f"{name} rows; got {size}. Use fewer processes (n_processes)."
                )
        with torch.no_grad():
            for tensor in (*net.module_.parameters(), *net.module_.buffers()):
                dist.broadcast(tensor.data, src=0)

    def on_grad_computed(self, net, named_parameters, batch=None, training=False, **kwargs):
        if not (training and dist.is_initialized()):
            return
        params = [p for _, p in named_parameters if p.requires_grad]
        rows = float(len(batch[0]))
        n_values = sum(p.numel() for p in params)
        flags = [rows] + [float(p.grad is not None) for p in params]
        flat = torch.cat(
            [
                *(p.new_zeros(p.numel()) if p.grad is None else p.grad.reshape(-1) for p in params),
                params[0].new_tensor(flags),
            ]
        )
        flat[:n_values].mul_(rows)
        start = time.perf_counter()
        dist.all_reduce(flat)
        self.allreduce_seconds_ += time.perf_counter() - start
        self.n_steps_ += 1
        self.bytes_per_step_ = flat.numel() * flat.element_size()
        received = flat[n_values + 1 :].tolist()  # one read of the counters, not one per tensor
        grads = flat[:n_values].div_(flat[n_values]).split([p.numel() for p in params])
        for p, grad, got in zip(params, grads, received):
            if got > 0:
                if p.grad is None:
                    p.grad = grad.view_as(p).clone()
                else:
                    p.grad.copy_(grad.view_as(p))

    def on_epoch_end(self, net, **kwargs) -> None:
        if not dist.is_initialized():
            return
        row = net.history[-1]
        keys = [k for k in ("train", "valid") if f"{k}_loss" in row]
        sums = []
        for key in keys:
            n = sum(b.get(f"{key}_batch_size", 0) for b in row["batches"])
            sums += [row[f"{key}_loss"] * n, n]
        totals = torch.tensor(sums, dtype=torch.float64)
        dist.all_reduce(totals)
        for i, key in enumerate(keys):
            net.history.record(f"{key}_loss", float(totals[2 * i] / totals[2 * i + 1]))
        if "valid" in keys:
            losses = net.history[:, "valid_loss"]
            net.history.record(
                "valid_loss_best", bool(losses[-1] < min(losses[:-1], default=np.inf))
            )


class SharedRowWork(RowWork):
    """Process 0's row work at the end of a fit, shared with the other processes.

    Each call of :meth:`run` sends the other processes the method to call and
    the float64 inference copy of the network it is to be called with
    (process 0's state at that point: the private features of
    ``sharing="auto"`` and the refined heads included); every process
    computes it on its part of the rows, and process 0 combines the parts
    (summed, or put in row order). For sharded rows
    (:class:`~sk_mtbnn.distributed._shards.ShardedRows`) a process's part is
    the rows it holds, and the arrays that go with them (the targets) are
    the ones :meth:`run` was given: process 0 sends each process their rows
    for the rows it holds (it learns which, :meth:`held_ids`, once per
    array). For whole arrays, process 0 sends each process a contiguous
    part. :meth:`gather` brings every row of sharded rows into process 0.
    The other processes run :func:`serve_row_work` until :meth:`close`.
    Everything else at the end of the fit (the sharing decision, the
    held-out noise search) runs in process 0 alone.
    """

    def __init__(self, world_size: int) -> None:
        self.world_size = world_size
        self.n_calls_ = 0
        self._held_ids: dict[str, list] = {}

    def run(self, estimator, method: str, combine: str, *arrays):
        rows, others = arrays[0], arrays[1:]
        if isinstance(rows, ShardedRows) and not any(isinstance(a, ShardedRows) for a in others):
            return self._run_sharded(estimator, method, combine, rows, others)
        arrays = tuple(np.asarray(a) for a in arrays)  # gathers sharded rows
        n_rows = len(arrays[0])
        if n_rows < self.world_size:  # a part would be empty: no need to share
            return super().run(estimator, method, combine, *arrays)
        dist.broadcast_object_list([("parts", method, estimator._inference_module)], src=0)
        parts = [
            tuple(a[shard_rows(n_rows, r, self.world_size)] for a in arrays)
            for r in range(self.world_size)
        ]
        results = [None] * self.world_size
        dist.gather_object(getattr(estimator, method)(*_scattered(parts)), results, dst=0)
        self.n_calls_ += 1
        if combine == "concatenate":
            return np.concatenate(results)
        return functools.reduce(operator.add, results)

    def _run_sharded(self, estimator, method: str, combine: str, rows: ShardedRows, others):
        """:meth:`run` on sharded ``rows``, with the row-aligned arrays ``others`` sent along."""
        others = tuple(np.asarray(a) for a in others)
        for a in others:
            if len(a) != len(rows):
                raise ValueError(
                    f"The arrays that go with the {rows.name!r} rows need one row each "
                    f"({len(rows)}); got {len(a)}."
                )
        ids = self.held_ids(rows) if others else ()
        spec = (rows.name, rows.ops, bool(others), combine)
        dist.broadcast_object_list([("rows", method, estimator._inference_module, spec)], src=0)
        mine = _scattered([tuple(a[i] for a in others) for i in ids]) if others else ()
        results = [None] * self.world_size
        dist.gather_object(_run_blocks(estimator, method, combine, rows, mine), results, dst=0)
        self.n_calls_ += 1
        return _combine(results, combine, len(rows))

    def held_ids(self, rows: ShardedRows) -> list:
        """Per process, the indices of the rows of ``rows`` it holds (asked once per array)."""
        if rows.name not in self._held_ids:
            dist.broadcast_object_list([("ids", rows.name)], src=0)
            ids = [None] * self.world_size
            dist.gather_object(rows.held_ids(), ids, dst=0)
            self._held_ids[rows.name] = ids
        return self._held_ids[rows.name]

    def gather(self, rows: ShardedRows) -> np.ndarray:
        """Every row of ``rows``, in order, in process 0 (the others serve)."""
        dist.broadcast_object_list([("gather", rows.name, rows.ops)], src=0)
        results = [None] * self.world_size
        dist.gather_object(_held(rows), results, dst=0)
        return _combine(results, "concatenate", len(rows))

    def close(self) -> None:
        """Let the other processes' :func:`serve_row_work` return."""
        dist.broadcast_object_list([None], src=0)


def _scattered(parts):
    """This process's part of process 0's ``parts`` (one per process; None elsewhere)."""
    mine = [None]
    dist.scatter_object_list(mine, parts, src=0)
    return mine[0]


def _run_blocks(estimator, method: str, combine: str, rows: ShardedRows, others: tuple):
    """The method on the rows held here: summed, or with their indices.

    ``others`` are the arrays that go with the rows, one row for each row held
    here, in the order of :meth:`ShardedRows.held_ids`.
    """
    fn = getattr(estimator, method)
    done, start = [], 0
    for x, ids in rows.local_blocks():
        part, start = slice(start, start + len(ids)), start + len(ids)
        if len(ids):
            done.append((ids, fn(x, *(a[part] for a in others))))
    if not done:
        return None
    if combine == "sum":
        return functools.reduce(operator.add, (value for _, value in done))
    return np.concatenate([ids for ids, _ in done]), np.concatenate([v for _, v in done])


def _held(rows: ShardedRows):
    """The rows held here, with their indices."""
    return rows.held_ids(), np.concatenate([x for x, _ in rows.local_blocks()])


def _combine(results, combine: str, n_rows: int):
    """The processes' results as one: their sum, or their rows put in row order."""
    results = [r for r in results if r is not None]
    if combine == "sum":
        return functools.reduce(operator.add, results)
    ids, values = results[0]
    out = np.empty((n_rows, *values.shape[1:]), dtype=values.dtype)
    for ids, values in results:
        out[ids] = values
    return out


def shard_registry(data) -> dict:
    """The sharded arrays of ``data``, by name."""
    arrays = (data.X, data.train[0], None if data.valid is None else data.valid[0])
    return {a.name: a for a in arrays if isinstance(a, ShardedRows)}


def serve_row_work(estimator, registry: dict) -> None:
    """The other processes' side of :class:`SharedRowWork`, until process 0 closes it."""
    while True:
        message = [None]
        dist.broadcast_object_list(message, src=0)
        if message[0] is None:
            return
        kind, *rest = message[0]
        if kind == "ids":
            dist.gather_object(registry[rest[0]].held_ids(), None, dst=0)
            continue
        if kind == "gather":
            name, ops = rest
            dist.gather_object(_held(registry[name].with_ops(ops)), None, dst=0)
            continue
        method, estimator._inference_module, *spec = rest
        if kind == "parts":
            result = getattr(estimator, method)(*_scattered(None))
        else:
            name, ops, with_others, combine = spec[0]
            others = _scattered(None) if with_others else ()
            rows = registry[name].with_ops(ops)
            result = _run_blocks(estimator, method, combine, rows, others)
        dist.gather_object(result, None, dst=0)


class ServesRowWork:
    """The end of the fit in the processes other than 0: process 0's row work, nothing else.

    Mixed into the estimator's class in those processes: the sharing decision,
    the noise search and the rest run in process 0 alone, which has each of
    the others compute on its rows (:class:`SharedRowWork`).
    """

    def _finalise(self, data) -> None:
        serve_row_work(self, shard_registry(data))


class LeadsRowWork:
    """The end of the fit in process 0: its sharded rows can be gathered, the others serve.

    Mixed into the estimator's class in process 0; ``_shard_row_work`` is the
    :class:`SharedRowWork` in force.
    """

    def _finalise(self, data) -> None:
        for rows in shard_registry(data).values():
            rows.gather = self._shard_row_work.gather
        super()._finalise(data)


def detach_from_group(net) -> None:
    """The fitted net as a one-process net: no sync callback, unsharded loaders."""
    from .._training.loader import TensorBatchLoader

    net.callbacks = [c for c in net.callbacks if c[0] != SYNC_CALLBACK]
    net.callbacks_ = [c for c in net.callbacks_ if c[0] != SYNC_CALLBACK]
    net.iterator_train = net.iterator_valid = TensorBatchLoader
    for name in ("iterator_train__shard", "iterator_valid__shard"):  # ShardLoader's alone
        vars(net).pop(name, None)
        net._params_to_validate.discard(name)


def run_processes(worker, args, n_processes: int, timeout: float, tmp: Path) -> None:
    """Start ``worker`` in the processes and wait for them; raise the first failure of any."""
    context = mp.start_processes(
        worker, args=args, nprocs=n_processes, join=False, start_method="spawn"
    )
    processes = context.processes
    deadline = time.monotonic() + timeout
    try:
        while True:
            codes = [p.exitcode for p in processes]
            if any(code not in (None, 0) for code in codes):
                _raise_failure(processes, tmp)
            if all(code == 0 for code in codes):
                return
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(
                    f"The {n_processes} training processes did not finish within "
                    f"timeout={timeout} s; they were stopped. Raise timeout, or check that "
                    "they can reach each other (master_addr, master_port)."
                )
            # Woken by the first process to end: a process that dies without a
            # Python error (a signal) is noticed at once.
            wait([p.sentinel for p in processes if p.exitcode is None], timeout=min(left, 5.0))
    finally:
        for process in processes:
            if process.is_alive():
                process.terminate()
                process.join(5.0)
            if process.is_alive():  # SIGTERM ignored inside a native call
                process.kill()
            process.join()


def _raise_failure(processes, tmp: Path) -> None:
    """The error of the first process to fail: a crash by a signal, or its Python error."""
    codes = [p.exitcode for p in processes]
    crashed = [r for r, code in enumerate(codes) if code is not None and code < 0]
    errors = sorted(tmp.glob("error_*.pkl"), key=lambda p: p.stat().st_mtime_ns)
    if errors and not crashed:
        with open(errors[0], "rb") as f:
            raise pickle.load(f) from None
    rank = crashed[0] if crashed else next(r for r, code in enumerate(codes) if code)
    code, n = codes[rank], len(processes)
    if code < 0:
        how = f"was killed by signal {signal.Signals(-code).name} (exit code {code})"
    else:
        how = f"exited with code {code} without a Python error from fit"
    log = tmp / f"stderr_{rank}.log"
    text = log.read_text(errors="replace") if log.exists() else ""
    # faulthandler's list of loaded extension modules says nothing about the crash.
    tail = re.sub(r"\n\s*Extension modules:.*", "", text).strip()[-3000:]
    raise RuntimeError(
        f"Training process {rank} of {n} (pid {processes[rank].pid}) {how}; the fit was "
        "stopped."
        + (f" Its last messages:\n{tail}" if tail else " Its messages, if any, are above.")
        + "\nIn a script, call fit_data_parallel under `if __name__ == '__main__':` (the "
        "processes are started with 'spawn', which imports the main module)."
    )


def save_error(error: BaseException, path: Path) -> None:
    try:
        payload = pickle.dumps(error)
    except Exception:  # an exception that does not pickle: keep its text
        payload = pickle.dumps(RuntimeError(f"{type(error).__name__}: {error}"))
    path.write_bytes(payload)
