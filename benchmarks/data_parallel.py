"""Data-parallel training: one process against two (CPU, gloo), on up to 10^6 rows.

A :class:`~sk_mtbnn.SparseMultiTaskBNNRegressor` (``hidden_layer_sizes=(64, 64)``,
2 tasks, 4 features, ``regime="network"``, the automatic step budget
(``max_epochs="auto"``: about 3,000 steps) and a large global batch) is fitted

* in this process with one torch thread (the baseline),
* in this process with two torch threads (the other way to use 2 cores),
* by :func:`sk_mtbnn.distributed.fit_data_parallel` over 2 processes x 1
  thread (gloo on 127.0.0.1), each process computing half of every global
  batch.

Reported: wall times (for the data-parallel fit both the fit itself, from
the process group's start, and the whole call, starting the processes and
importing torch in them included), the speed-ups over the baseline, the
all-reduce per step (bytes, and process 0's time in it, waiting for the
other process included), and the largest difference between the
predictions of the one- and two-process fits (the same global batches:
float32 rounding only).

Large batches keep the step's computation ahead of its fixed costs (Python,
skorch, the optimiser, the all-reduce's latency): the global batch is
``--batch-size`` rows (default 4,096), the same in every run.

Run ``python benchmarks/data_parallel.py --rows 100000`` first (about a
minute), then ``python benchmarks/data_parallel.py`` (10^6 rows, several
minutes on 2 cores). Writes ``benchmarks/results/data_parallel.md``.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
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
    """Fit in this process; wall time, CPU time, and CPU time of the training loop."""
    from sk_mtbnn.distributed._sync import GradientSync

    torch.set_num_threads(threads)
    clock = GradientSync()  # outside a process group it only reads the CPU clock
    estimator = model(args)
    # The private hook fit_data_parallel uses: here, to add the clock callback.
    estimator._net_kwargs_hook = lambda kw: {
        **kw,
        "callbacks": [("clock", clock), *kw["callbacks"]],
    }
    start, cpu = time.perf_counter(), time.process_time()
    fitted = estimator.fit(X, y)
    times = (time.perf_counter() - start, time.process_time() - cpu, clock.train_cpu_seconds_)
    del estimator._net_kwargs_hook
    return fitted, times


def report(args, rows, phases, dp, diff, load, n_epochs) -> str:
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
        "Where the time goes (process 0): the training loop (the epochs, from the "
        "history's `dur`) is split between the processes; the rest of the fit is not, "
        "except the heads' statistics (see the user guide).",
        "",
        "| run | training loop, wall (s) | rest of the fit, wall (s) | training loop, "
        "CPU of process 0 (s) | rest of the fit, CPU of process 0 (s) |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for name, (loop, total, loop_cpu, total_cpu) in phases.items():
        lines.append(
            f"| {name} | {loop:.1f} | {total - loop:.1f} | {loop_cpu:.1f} | "
            f"{total_cpu - loop_cpu:.1f} |"
        )
    (loop1, _, loop_cpu1, cpu1), (loop2, _, loop_cpu2, cpu2) = phases.values()
    lines += [
        "",
        f"- Training loop: wall-time speed-up {loop1 / loop2:.2f}; process 0's CPU time is "
        f"{loop_cpu2 / loop_cpu1:.2f} of one process's ({loop_cpu1 / loop_cpu2:.2f}x less "
        "work per process).",
        f"- Whole fit: process 0's CPU time is {cpu2 / cpu1:.2f} of one process's. With a core "
        "per process and nothing else running, the fit would take about that share of the "
        f"time, a speed-up of about {cpu1 / cpu2:.2f} (a projection from CPU time, not a "
        "measurement).",
    ]
    per_step = 1e3 * dp.allreduce_seconds / max(dp.n_steps, 1)
    lines += [
        "",
        f"- All-reduce per step: {dp.bytes_per_step:,} bytes (float32 gradients and counters); "
        f"process 0 spent {dp.allreduce_seconds:.1f} s in the {dp.n_steps:,} all-reduces, "
        f"{per_step:.2f} ms per step, waiting for the other process included "
        f"({100 * dp.allreduce_seconds / dp.fit_seconds:.0f}% of its fit).",
        f"- Starting the 2 processes (spawn, imports, sending the data) took "
        f"{dp.total_seconds - dp.fit_seconds:.1f} s of the call.",
        f"- Largest difference of the predicted means (1 x 1 against 2 processes, on 10,000 "
        f"training rows, units of y): {diff:.1e}.",
    ]
    return "\n".join(lines) + "\n"


def loop_seconds(fitted) -> float:
    return float(np.sum(fitted.history_[:, "dur"]))


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
    rows = {}
    one, one_times = fit_here(args, X, y, threads=1)
    rows["1 process x 1 thread"] = one_times[0]
    print(f"1 x 1: {one_times}", flush=True)
    two, dp = fit_data_parallel(model(args), X, y, n_processes=2, return_report=True)
    rows["2 processes x 1 thread (fit_data_parallel, the fit)"] = dp.fit_seconds
    rows["2 processes x 1 thread (fit_data_parallel, whole call)"] = dp.total_seconds
    print(f"2 x 1: {dp}", flush=True)
    if not args.skip_two_threads:
        rows["1 process x 2 threads"] = fit_here(args, X, y, threads=2)[1][0]
        print(f"1 x 2: {rows['1 process x 2 threads']:.1f} s", flush=True)
    diff = float(np.abs(one.predict(X[:10_000]) - two.predict(X[:10_000])).max())
    phases = {
        "1 process x 1 thread": (loop_seconds(one), one_times[0], one_times[2], one_times[1]),
        "2 processes x 1 thread": (
            loop_seconds(two),
            dp.fit_seconds,
            dp.train_cpu_seconds,
            dp.fit_cpu_seconds,
        ),
    }
    load = (load_before, os.getloadavg()[0])
    text = report(args, rows, phases, dp, diff, load, one.n_epochs_)
    Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
