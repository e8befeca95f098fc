"""Data-parallel training of one network over several processes, with torch.distributed.

:func:`fit_data_parallel` starts ``n_processes`` processes (torch's
``spawn``), joins them in a :mod:`torch.distributed` process group (gloo on
CPU, NCCL between GPUs; the rendezvous store is served by the calling
process) and fits the same estimator in each. The calling process
validates, standardises and splits the data once and sends each process
only its shard of the rows (:mod:`._shards`); every process draws the same
global mini-batches and computes the gradient of the rows of each that it
holds, the gradients are averaged by an all-reduce before every optimiser
step, and the epoch losses are averaged before early stopping decides. At
the end of the fit process 0 alone runs the steps that need all rows at
once (the sharing decision, the held-out noise search) and has every
process compute the per-row sums (the heads' statistics, the ELBO) and
per-row values (``ood_score``'s reference) on its rows. Process 0 returns
the fitted estimator.
"""

from __future__ import annotations

import dataclasses
import faulthandler
import os
import pickle
import resource
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from sklearn.base import clone

from .._param_validation import validate_params
from ..aggregators import resolve_aggregator
from ..aggregators.mean import MeanAggregator
from ..estimators._device import check_device
from ..estimators._regression import row_work
from ._shards import ShardLoader, shard_data, sharded_copy, write_shards
from ._sync import (
    SYNC_CALLBACK,
    GradientSync,
    LeadsRowWork,
    ServesRowWork,
    SharedRowWork,
    detach_from_group,
    run_processes,
    save_error,
)


@dataclasses.dataclass(frozen=True)
class DataParallelReport:
    """Timings and traffic of a data-parallel fit (process 0's view).

    Parameters
    ----------
    n_processes : int
        Processes in the group.
    backend : str
        The :mod:`torch.distributed` backend.
    n_steps : int
        Optimiser steps, each with one gradient all-reduce.
    bytes_per_step : int
        Size of the tensor each process all-reduces per step (float32
        gradients, plus ``1 + n_parameter_tensors`` counters).
    allreduce_seconds : float
        Time process 0 spent in the gradient all-reduces, waiting for the
        other processes included.
    fit_seconds : float
        Wall time of the fit in process 0, from the moment every process
        has started.
    fit_cpu_seconds : float
        CPU time of process 0 during the fit (on a machine shared with other
        work, the share of the work one process did).
    train_cpu_seconds : float
        CPU time of process 0 in the training loop (the epochs).
    total_seconds : float
        Wall time of :func:`fit_data_parallel`, starting the processes included.
    train_seconds : float
        Wall time of process 0's training loop (the epochs).
    end_seconds, end_cpu_seconds : float
        Wall and CPU time of process 0 from the end of the training loop to
        the end of the fit (the head refinement, the sharing decision, the
        ELBO and ``ood_score``'s reference).
    prepare_seconds : float
        Wall time of the calling process's preparation (validation,
        standardisation, the split, writing the shards), before the
        processes start.
    train_rows_held, valid_rows_held : tuple of int
        Per process, the training and validation rows of ``X`` it received.
    peak_rss_mib : tuple of float
        Per process, its peak resident memory (MiB, ``ru_maxrss``).

    Examples
    --------
    Returned by ``fit_data_parallel(..., return_report=True)``; the time per
    step in the all-reduce, for instance:

    >>> from sk_mtbnn.distributed import DataParallelReport
    >>> report = DataParallelReport(2, "gloo", 260, 2876, 0.52, 4.1, 3.9, 1.2, 15.4)
    >>> round(1e3 * report.allreduce_seconds / report.n_steps, 1)  # ms per step
    2.0
    """

    n_processes: int
    backend: str
    n_steps: int
    bytes_per_step: int
    allreduce_seconds: float
    fit_seconds: float
    fit_cpu_seconds: float
    train_cpu_seconds: float
    total_seconds: float
    train_seconds: float = float("nan")
    end_seconds: float = float("nan")
    end_cpu_seconds: float = float("nan")
    prepare_seconds: float = float("nan")
    train_rows_held: tuple = ()
    valid_rows_held: tuple = ()
    peak_rss_mib: tuple = ()


def fit_data_parallel(
    estimator,
    X,
    y,
    *,
    n_processes: int = 2,
    backend: str = "gloo",
    master_addr: str = "127.0.0.1",
    master_port: int | None = None,
    threads_per_process: int = 1,
    timeout: float = 3600.0,
    return_report: bool = False,
    **fit_params,
):
    """Fit a copy of ``estimator`` data-parallel over ``n_processes`` processes.

    The data is validated, standardised and split once, here; each process
    receives only its shard of the rows of ``X``: a contiguous
    ``1/n_processes`` of the training rows and its part of every validation
    batch (process 0 also all validation rows, for the held-out noise
    search; the targets go to every process). Every process draws the same
    global mini-batches (with the estimator's seed, as in a one-process fit:
    indices only) and computes the gradient of the rows of each batch that
    it holds, and one all-reduce per step averages them (weighted by rows),
    so that the step is the one-process step up to float32 rounding. Epoch
    losses are averaged for early stopping. At the end of the fit, the
    closed-form head refinement sums the sufficient statistics
    ``Phi^T Phi``, ``Phi^T y``, ``y^T y`` and label counts of each
    process's training rows, and the training ELBO and
    ``ood_score``'s reference (a median over the rows) are computed on each
    process's rows as well; the sharing decision (``sharing="auto"``) and the
    held-out noise search run once, in process 0. The engine is
    :mod:`torch.distributed` (no new dependency).

    Parameters
    ----------
    estimator : SparseMultiTaskBNNRegressor
        The estimator to fit (not modified): ``aggregator="mean"``, one
        member (``n_estimators`` 1 or ``"auto"``), trained by mini-batches
        (``regime="auto"`` is fitted as ``"network"``; ``"evidence"`` is
        refused).
    X : array-like of shape (n_samples, n_features)
        Training inputs.
    y : array-like of shape (n_samples,) or (n_samples, n_tasks)
        Targets (NaN where missing).
    n_processes : int, default=2
        Processes to train in, on this machine.
    backend : {"gloo", "nccl"}, default="gloo"
        The :mod:`torch.distributed` backend: ``"gloo"`` on CPU, ``"nccl"``
        with ``device="cuda"`` (process ``r`` then uses ``cuda:r``).
    master_addr : str, default="127.0.0.1"
        Address the processes meet at.
    master_port : int, default=None
        Port on ``master_addr`` of the rendezvous store, which this process
        serves (and holds) until the fit ends; None lets the system pick a
        free one.
    threads_per_process : int, default=1
        Torch threads in each process.
    timeout : float, default=3600.0
        Seconds after which the processes are stopped and a ``TimeoutError``
        is raised (also the process group's timeout).
    return_report : bool, default=False
        Also return a :class:`DataParallelReport` (steps, bytes per step,
        time in the all-reduces).
    **fit_params : dict
        Passed to ``fit`` (e.g. ``task_features``).

    Returns
    -------
    fitted : estimator
        A fitted clone of ``estimator``, an ordinary estimator of this process.
    report : DataParallelReport
        Only with ``return_report=True``.

    Raises
    ------
    ValueError
        For a setting that data-parallel training does not support, a
        ``master_port`` that is in use, and whatever ``fit`` itself raises
        (its checks of the data here, before the processes start; the
        others re-raised from the process where it failed first).
    RuntimeError
        When a process ends without a Python error (killed by a signal, a
        native crash): the message names the process, its signal or exit
        code and, for processes other than 0, its last messages.
    TimeoutError
        When the processes have not finished after ``timeout`` seconds.

    Notes
    -----
    With every label present the parts of a batch are weighted exactly as
    in the batch, so the fit matches a one-process fit of the same
    estimator on the same data up to float32 rounding, which grows over the
    steps (measured: 2e-7 on the weights after 260 steps, see the tests);
    with missing labels each task's mean is taken per part. The heads'
    statistics are float64 sums, equal to the one-process ones up to the
    order of summation; the ELBO and ``ood_score``'s reference equal the
    one-process computation on the same network up to the order of the
    float64 additions. The rows of ``X`` are shared out: a process holds
    about ``1/n_processes`` of them (process 0 in addition the validation
    rows); the targets are held in full. Only with ``sharing="auto"`` and
    validation rows does process 0 gather the training rows for the sharing
    decision at the end of the fit (it then holds them until the fit ends).

    The processes are started with ``spawn``, which imports the main
    module: in a script, call this function under
    ``if __name__ == "__main__":``.

    Examples
    --------
    >>> import numpy as np
    >>> from sk_mtbnn import SparseMultiTaskBNNRegressor
    >>> from sk_mtbnn.distributed import fit_data_parallel
    >>> rng = np.random.RandomState(0)
    >>> X = rng.uniform(-2, 2, size=(400, 2))
    >>> y = np.sin(X[:, 0]) + 0.1 * rng.randn(400)
    >>> reg = SparseMultiTaskBNNRegressor((16,), max_epochs=5, random_state=0)
    >>> fitted = fit_data_parallel(reg, X, y, n_processes=2)  # doctest: +SKIP
    >>> fitted.predict(X[:3]).shape  # doctest: +SKIP
    (3,)
    """
    estimator = _checked_copy(estimator, n_processes, backend, threads_per_process, timeout)
    start = time.perf_counter()
    store = _rendezvous_store(master_addr, master_port, timeout)
    with tempfile.TemporaryDirectory(prefix="sk_mtbnn_ddp_") as tmp:
        state, skeleton = write_shards(estimator, X, y, fit_params, n_processes, Path(tmp))
        prepared = time.perf_counter()
        args = (
            n_processes,
            (master_addr, store.port),
            backend,
            threads_per_process,
            float(timeout),
            estimator,
            (state, skeleton),
            fit_params,
            tmp,
        )
        run_processes(_worker, args, n_processes, timeout, Path(tmp))
        with open(Path(tmp) / "result.pkl", "rb") as f:
            fitted, report = pickle.load(f)
        held = [np.loadtxt(Path(tmp) / f"held_{r}.txt", ndmin=1) for r in range(n_processes)]
    del store
    report = dataclasses.replace(
        report,
        total_seconds=time.perf_counter() - start,
        prepare_seconds=prepared - start,
        train_rows_held=tuple(int(h[0]) for h in held),
        valid_rows_held=tuple(int(h[1]) for h in held),
        peak_rss_mib=tuple(float(h[2]) for h in held),
    )
    return (fitted, report) if return_report else fitted


def _checked_copy(estimator, n_processes, backend, threads_per_process, timeout):
    """A clone of ``estimator`` set up for data-parallel training, or a clear error."""
    from ..estimators.sparse_mtbnn import SparseMultiTaskBNNRegressor

    if not isinstance(estimator, SparseMultiTaskBNNRegressor):
        raise TypeError(
            "fit_data_parallel trains a SparseMultiTaskBNNRegressor; got "
            f"{type(estimator).__name__}."
        )
    for name, value in (("n_processes", n_processes), ("threads_per_process", threads_per_process)):
        if not isinstance(value, int | np.integer) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be an int >= 1; got {value!r}.")
    if not isinstance(backend, str) or backend not in dist.Backend.backend_list:
        raise ValueError(
            f"backend must be one of {dist.Backend.backend_list} ('gloo' on CPU); got {backend!r}."
        )
    if not (isinstance(timeout, int | float) and timeout > 0):
        raise ValueError(f"timeout must be a positive number of seconds; got {timeout!r}.")
    validate_params(estimator)
    check_device(estimator.device)
    if estimator.n_estimators not in ("auto", 1):
        raise ValueError(
            f"fit_data_parallel trains one network; got n_estimators={estimator.n_estimators}. "
            "Train ensemble members in parallel through joblib instead (n_jobs, or a dask or "
            "Ray joblib backend)."
        )
    if estimator.regime == "evidence":
        raise ValueError(
            "fit_data_parallel trains by mini-batches; regime='evidence' fits full-batch in one "
            "process. Use regime='network' (or 'auto')."
        )
    if not isinstance(resolve_aggregator(estimator.aggregator), MeanAggregator):
        raise ValueError(
            "fit_data_parallel averages the processes' gradients, which equals the one-process "
            f"step only for aggregator='mean'; got aggregator={estimator.aggregator!r}."
        )
    return clone(estimator).set_params(regime="network", n_estimators=1)


def _rendezvous_store(addr: str, port: int | None, timeout: float):
    """The processes' rendezvous store, served from this process until it is deleted.

    It listens on a port it holds for the whole fit (port 0: a free one that
    the system picks), so no other program can take the port between its
    choice and the processes' start, as with a port probed free and closed.
    """
    try:
        return dist.TCPStore(
            addr,
            0 if port is None else int(port),
            None,
            True,
            timedelta(seconds=timeout),
            wait_for_workers=False,
        )
    except (RuntimeError, OSError) as error:  # DistNetworkError is a RuntimeError
        raise ValueError(
            f"Cannot serve the processes' rendezvous on {addr}:{port or 0} ({error}). Pass "
            "master_port=None (a free port) or another port, and a local master_addr."
        ) from None


def _worker(
    rank, world_size, address, backend, threads, timeout, estimator, prepared, fit_params, tmp
):
    """One process: join the group, fit on its shard, process 0 saves the result."""
    if rank > 0:
        # The other processes' messages (native ones included) go to a file, which
        # the caller reads if the process crashes; process 0 writes to stderr.
        log = os.open(Path(tmp) / f"stderr_{rank}.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        os.dup2(log, 2)
    # On a fatal signal, the Python stack of every thread goes to stderr (the log).
    faulthandler.enable(all_threads=True)
    torch.set_num_threads(threads)
    try:
        store = dist.TCPStore(*address, None, False, timedelta(seconds=timeout))
        dist.init_process_group(
            backend,
            store=store,
            rank=rank,
            world_size=world_size,
            timeout=timedelta(seconds=timeout),
        )
        with open(Path(tmp) / f"shard_{rank}.pkl", "rb") as f:
            shard = pickle.load(f)
        held = [len(shard["X_train"]), len(shard.get("X_valid_all", shard.get("X_valid", ())))]
        try:
            dist.barrier()  # every process has started and imported
            start, cpu_start = time.perf_counter(), time.process_time()
            fitted, sync = _fit_rank(estimator, prepared, shard, fit_params, rank, world_size)
        finally:
            dist.destroy_process_group()
        peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
        np.savetxt(Path(tmp) / f"held_{rank}.txt", [*held, peak_mib])
        if rank == 0:
            end, end_cpu = np.subtract((time.perf_counter(), time.process_time()), sync.train_end_)
            report = DataParallelReport(
                n_processes=world_size,
                backend=backend,
                n_steps=sync.n_steps_,
                bytes_per_step=sync.bytes_per_step_,
                allreduce_seconds=sync.allreduce_seconds_,
                fit_seconds=time.perf_counter() - start,
                fit_cpu_seconds=time.process_time() - cpu_start,
                train_cpu_seconds=sync.train_cpu_seconds_,
                total_seconds=float("nan"),
                train_seconds=sync.train_seconds_,
                end_seconds=end,
                end_cpu_seconds=end_cpu,
            )
            part = Path(tmp) / "result.part"
            with open(part, "wb") as f:
                pickle.dump((fitted, report), f, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(part, Path(tmp) / "result.pkl")
        code = 0
    except BaseException as error:
        save_error(error, Path(tmp) / f"error_{rank}.pkl")
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    # Skip the interpreter's teardown, whose destruction of torch.distributed's
    # native objects sometimes aborts the process after its work is done
    # (measured: SIGABRT, "terminate called without an active exception", in
    # about 1 of 30 exits of process 1, after destroy_process_group).
    os._exit(code)


def _fit_rank(estimator, prepared, shard: dict, fit_params, rank: int, world_size: int):
    """Fit on this process's shard; the fitted estimator, of ``estimator``'s class."""
    state, skeleton = prepared
    work = sharded_copy(estimator, rank, (LeadsRowWork,) if rank == 0 else (ServesRowWork,))
    if rank > 0:
        work.set_params(verbose=0)
    work._shard = (state, shard_data(skeleton, shard))
    del shard
    device = check_device(work.device)
    if device.type == "cuda" and device.index is None:
        work.set_params(device=f"cuda:{rank % torch.cuda.device_count()}")
    sync = GradientSync()

    def hook(kwargs: dict) -> dict:
        return {
            **kwargs,
            "callbacks": [(SYNC_CALLBACK, sync), *kwargs["callbacks"]],
            "iterator_train": ShardLoader,
            "iterator_valid": ShardLoader,
            "iterator_train__shard": (rank, world_size),
            "iterator_valid__shard": (rank, world_size),
        }

    work._net_kwargs_hook = hook
    if rank == 0:
        with row_work(SharedRowWork(world_size)) as shared:
            work._shard_row_work = shared
            work.fit(None, None, **fit_params)
            shared.close()
    else:
        work.fit(None, None, **fit_params)
    for name in ("_net_kwargs_hook", "_shard", "_shard_row_work"):
        vars(work).pop(name, None)
    work.__class__ = type(estimator)  # the mixins hold no state: an ordinary estimator
    detach_from_group(work.net_)
    return work, sync
