"""Data-parallel training: one process against two (CPU, gloo), on up to 10^6 rows.

A :class:`~sk_mtbnn.SparseMultiTaskBNNRegressor` (``hidden_layer_sizes=(64, 64)``,
2 tasks, 4 features, ``regime="network"``, the automatic step budget
(``max_epochs="auto"``: about 3,000 steps) and a large global batch) is fitted

* in this process with one torch thread (the baseline),
* in this process with two torch threads (the other way to use 2 cores),
* by :func:`sk_mtbnn.distributed.fit_data_parallel` over 2 processes x 1
  thread (gloo on 127.0.0.1), each process computing half of every global
  batch.

Reported: the load average (the machine may be shared), wall times (for the
data-parallel fit both the fit itself, from the process group's start, and
the whole call, starting the processes and importing torch in them
included), the speed-ups over the baseline, wall and CPU time per phase
(before the epochs, the epochs, the end of the fit), the CPU time of both
processes together, the all-reduce per step (bytes, process 0's time in it,
waiting for the other process included, and the same all-reduce timed alone
between two idle processes), and the largest difference between the
predictions of the one- and two-process fits (the same global batches:
float32 rounding only), and the peak resident memory (``VmHWM``) of the
one-process fit's process, of the calling process during the data-parallel
call, and of each training process (read from ``/proc`` while they run, so
the same measurement applies to any version of ``fit_data_parallel``).

Large batches keep the step's computation ahead of its fixed costs (Python,
skorch, the optimiser, the all-reduce's latency): the global batch is
``--batch-size`` rows (default 4,096), the same in every run.

Run ``python benchmarks/data_parallel.py --rows 100000`` first (about a
minute), then ``python benchmarks/data_parallel.py`` (10^6 rows, several
minutes on 2 cores). Writes ``benchmarks/results/data_parallel.md``.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import re
import resource
import sys
import threading
import time
from datetime import date
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import torch

N_FEATURES = 4


def make_data(n: int, seed: int = 0):
    rng = np.random.RandomState(seed)
    X = rng.uniform(-2, 2, size=(n, N_FEATURES))
    y = np.column_stack([np.sin(2 * X[:, 0]) + X[:, 1], X[:, 2] * X[:, 3]])
    return X, y + 0.1 * rng.standard_normal(y.shape)


def _peak_rss_mib(pid="self") -> float:
    """``VmHWM`` of a process (its peak resident memory), MiB; NaN once it has ended."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return float("nan")
    return int(re.search(r"VmHWM:\s+(\d+)", status).group(1)) / 1024


def _reset_peak_rss() -> float:
    """Restart this process's ``VmHWM`` at its resident memory (Linux >= 4.0); that, MiB."""
    Path("/proc/self/clear_refs").write_text("5")
    return _peak_rss_mib()


class ChildrenPeakMemory:
    """Peak resident memory of this process's training processes, polled while they run."""

    def __init__(self, interval: float = 0.2) -> None:
        self.interval, self.peaks, self._stop = interval, {}, threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _poll(self) -> None:
        me = str(os.getpid())
        while not self._stop.wait(self.interval):
            for proc in Path("/proc").iterdir():
                try:
                    if not proc.name.isdigit() or (proc / "stat").read_text().split()[3] != me:
                        continue
                    if b"resource_tracker" in (proc / "cmdline").read_bytes():
                        continue
                except (OSError, IndexError):
                    continue
                peak = _peak_rss_mib(proc.name)
                if peak == peak:  # not NaN
                    self.peaks[int(proc.name)] = max(peak, self.peaks.get(int(proc.name), 0.0))

    def by_process(self) -> list[float]:
        """The peaks in the order the processes started (process 0 first)."""
        return [self.peaks[pid] for pid in sorted(self.peaks)]


def model(args):
    from sk_mtbnn import SparseMultiTaskBNNRegressor

    return SparseMultiTaskBNNRegressor(
        hidden_layer_sizes=(64, 64),
        regime="network",
        max_epochs=args.epochs,
        batch_size=args.batch_size,
        random_state=0,
    )


def fit_here(args, X, y, threads: int):
    """Fit in this process; the fitted model and its :class:`Phases`."""
    from sk_mtbnn.distributed._sync import GradientSync

    torch.set_num_threads(threads)
    clock = GradientSync()  # outside a process group it only reads the clocks
    estimator = model(args)
    # The private hook fit_data_parallel uses: here, to add the clock callback.
    estimator._net_kwargs_hook = lambda kw: {
        **kw,
        "callbacks": [("clock", clock), *kw["callbacks"]],
    }
    start, cpu = time.perf_counter(), time.process_time()
    fitted = estimator.fit(X, y)
    end, end_cpu = time.perf_counter(), time.process_time()
    del estimator._net_kwargs_hook
    phases = Phases(
        end - start,
        clock.train_seconds_,
        end - clock.train_end_[0],
        end_cpu - cpu,
        clock.train_cpu_seconds_,
        end_cpu - clock.train_end_[1],
    )
    return fitted, phases


@dataclasses.dataclass
class Phases:
    """Wall and CPU seconds of a fit (process 0's): all of it, the epochs, the end."""

    fit: float
    train: float
    end: float
    fit_cpu: float
    train_cpu: float
    end_cpu: float

    def row(self, name: str) -> str:
        before = self.fit - self.train - self.end
        before_cpu = self.fit_cpu - self.train_cpu - self.end_cpu
        cells = (before, self.train, self.end, before_cpu, self.train_cpu, self.end_cpu)
        return f"| {name} | " + " | ".join(f"{c:.1f}" for c in cells) + " |"


def _allreduce_worker(rank, port, n_values, n_calls, out):
    import torch.distributed as dist

    torch.set_num_threads(1)
    store = dist.TCPStore("127.0.0.1", port, None, False)
    dist.init_process_group("gloo", store=store, rank=rank, world_size=2)
    flat = torch.zeros(n_values)
    times = []
    for _ in range(n_calls):
        start = time.perf_counter()
        dist.all_reduce(flat)
        times.append(time.perf_counter() - start)
    dist.destroy_process_group()
    if rank == 0:
        Path(out).write_text(str(float(np.median(times))))


def allreduce_alone(n_bytes: int, n_calls: int = 2000) -> float:
    """Median seconds of one gloo all-reduce of ``n_bytes`` between two processes on 127.0.0.1."""
    import tempfile
    from datetime import timedelta

    import torch.distributed as dist
    import torch.multiprocessing as mp

    store = dist.TCPStore(
        "127.0.0.1", 0, None, True, timedelta(seconds=120), wait_for_workers=False
    )
    with tempfile.TemporaryDirectory() as tmp:
        out = str(Path(tmp) / "median.txt")
        mp.start_processes(
            _allreduce_worker,
            args=(store.port, n_bytes // 4, n_calls, out),
            nprocs=2,
            start_method="spawn",
        )
        return float(Path(out).read_text())


def report(args, rows, phases, dp, diff, load, n_epochs, cpu_both, alone, memory) -> str:
    """The results as markdown."""
    base = rows["1 process x 1 thread"]
    lines = [
        "# Data-parallel training: 1 process against 2 (CPU, gloo)",
        "",
        f"Measured {date.today()} on {platform.machine()}, {os.cpu_count()} cores shared with "
        f"other jobs (load average {load[0]:.1f} before, {load[1]:.1f} after), Python "
        f"{platform.python_version()}, torch {torch.__version__}, by "
        f"`python benchmarks/data_parallel.py {' '.join(sys.argv[1:])}`.",
        "",
        f"{args.rows:,} rows x {N_FEATURES} features, 2 tasks; "
        "`SparseMultiTaskBNNRegressor(hidden_layer_sizes=(64, 64), regime='network', "
        f"max_epochs={args.epochs!r}, batch_size={args.batch_size}, random_state=0)`: "
        f"{n_epochs} epochs, {dp.n_steps:,} steps of a global batch of {args.batch_size:,} rows.",
        "",
        "| run | wall time (s) | speed-up over 1 x 1 |",
        "| --- | ---: | ---: |",
    ]
    for name, seconds in rows.items():
        lines.append(f"| {name} | {seconds:.1f} | {base / seconds:.2f} |")
    lines += [
        "",
        "Where the time goes (process 0): before the epochs (validation, standardisation, "
        "the split, building the net), the epochs (split between the processes), the end of "
        "the fit (heads' statistics, ELBO and ood_score's reference split; sharing decision "
        "and held-out noise search in process 0 alone).",
        "",
        "| run | before, wall (s) | epochs, wall (s) | end, wall (s) | before, CPU (s) | "
        "epochs, CPU (s) | end, CPU (s) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    lines += [p.row(name) for name, p in phases.items()]
    one, two = phases.values()
    lines += [
        "",
        f"- Epochs: wall-time speed-up {one.train / two.train:.2f}; process 0's CPU time is "
        f"{two.train_cpu / one.train_cpu:.2f} of one process's.",
        f"- End of the fit: wall-time speed-up {one.end / two.end:.2f}; process 0's CPU time "
        f"is {two.end_cpu / one.end_cpu:.2f} of one process's.",
        f"- Whole fit: process 0's CPU time is {two.fit_cpu / one.fit_cpu:.2f} of one "
        "process's. With a core per process and nothing else running, the fit would take "
        f"about that share of the time, a speed-up of about {one.fit_cpu / two.fit_cpu:.2f} "
        "(a projection from CPU time, not a measurement).",
        f"- CPU time of both processes together, over their whole life (imports and start "
        f"included): {cpu_both:.1f} s; of the one process's fit: {one.fit_cpu:.1f} s.",
    ]
    per_step = 1e3 * dp.allreduce_seconds / max(dp.n_steps, 1)
    lines += [
        "",
        f"- All-reduce per step: {dp.bytes_per_step:,} bytes (float32 gradients and counters); "
        f"process 0 spent {dp.allreduce_seconds:.1f} s in the {dp.n_steps:,} all-reduces, "
        f"{per_step:.2f} ms per step, waiting for the other process included "
        f"({100 * dp.allreduce_seconds / dp.fit_seconds:.0f}% of its fit). The same "
        f"all-reduce between two otherwise idle processes: {1e3 * alone:.2f} ms (median of "
        "2,000).",
        f"- Starting the 2 processes (spawn, imports, sending the data) took "
        f"{dp.total_seconds - dp.fit_seconds:.1f} s of the call.",
        f"- Largest difference of the predicted means (1 x 1 against 2 processes, on 10,000 "
        f"training rows, units of y): {diff:.1e}.",
    ]
    lines += ["", *memory_lines(args, memory, dp)]
    return "\n".join(lines) + "\n"


def memory_lines(args, memory: dict, dp) -> list[str]:
    """The memory table: peak resident memory per process."""
    x_mib = args.rows * N_FEATURES * 8 / 2**20
    lines = [
        f"Peak resident memory (VmHWM, MiB; `X` itself is {x_mib:.0f} MiB of float64, "
        "`y` half of that; importing torch and the package alone takes about 300-400 MiB "
        "per process):",
        "",
        "| process | peak RSS (MiB) | rise over its start (MiB) |",
        "| --- | ---: | ---: |",
    ]
    for name, (peak, start) in memory.items():
        rise = "" if start != start else f"{peak - start:.0f}"
        lines.append(f"| {name} | {peak:.0f} | {rise} |")
    held = getattr(dp, "train_rows_held", ())
    if held:
        lines += [
            "",
            f"Rows of X received per process: training {', '.join(f'{n:,}' for n in held)}; "
            f"validation {', '.join(f'{n:,}' for n in dp.valid_rows_held)} (process 0 all of "
            "them, the others their part of each validation batch).",
        ]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--epochs", default="auto", help="max_epochs (an int or 'auto')")
    parser.add_argument("--batch-size", type=int, default=4096)
    parser.add_argument("--skip-two-threads", action="store_true")
    parser.add_argument(
        "--out", default=str(Path(__file__).parent / "results" / "data_parallel.md")
    )
    args = parser.parse_args()
    args.epochs = args.epochs if args.epochs == "auto" else int(args.epochs)
    from sk_mtbnn.distributed import fit_data_parallel

    X, y = make_data(args.rows)
    load_before = os.getloadavg()[0]
    rows, memory = {}, {}
    start = _reset_peak_rss()
    one, one_phases = fit_here(args, X, y, threads=1)
    memory["1 process x 1 thread (the data and the fit)"] = (_peak_rss_mib(), start)
    rows["1 process x 1 thread"] = one_phases.fit
    print(f"1 x 1: {one_phases}", flush=True)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = _reset_peak_rss()
    with ChildrenPeakMemory() as peaks:
        two, dp = fit_data_parallel(model(args), X, y, n_processes=2, return_report=True)
    memory["2 processes: the calling process"] = (_peak_rss_mib(), start)
    for rank, mib in enumerate(peaks.by_process()):
        memory[f"2 processes: training process {rank}"] = (mib, float("nan"))
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_both = (after.ru_utime + after.ru_stime) - (children.ru_utime + children.ru_stime)
    rows["2 processes x 1 thread (fit_data_parallel, the fit)"] = dp.fit_seconds
    rows["2 processes x 1 thread (fit_data_parallel, whole call)"] = dp.total_seconds
    print(f"2 x 1: {dp}; CPU of both processes {cpu_both:.1f} s", flush=True)
    load_after = os.getloadavg()[0]
    if not args.skip_two_threads:
        rows["1 process x 2 threads"] = fit_here(args, X, y, threads=2)[1].fit
        print(f"1 x 2: {rows['1 process x 2 threads']:.1f} s", flush=True)
    alone = allreduce_alone(dp.bytes_per_step)
    diff = float(np.abs(one.predict(X[:10_000]) - two.predict(X[:10_000])).max())
    two_phases = Phases(
        dp.fit_seconds,
        dp.train_seconds,
        dp.end_seconds,
        dp.fit_cpu_seconds,
        dp.train_cpu_seconds,
        dp.end_cpu_seconds,
    )
    phases = {"1 process x 1 thread": one_phases, "2 processes x 1 thread": two_phases}
    load = (load_before, load_after)
    text = report(args, rows, phases, dp, diff, load, one.n_epochs_, cpu_both, alone, memory)
    Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
