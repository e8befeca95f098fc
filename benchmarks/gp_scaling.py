"""Fit and predict time, peak memory and accuracy against GaussianProcessRegressor.

Problem: 8 features, 3 related tasks from a linear model of coregionalisation
(``sk_mtbnn.datasets.make_multitask_regression``, noise std 0.1 on unit-variance
tasks), 30% of the training labels missing at random, 2,000 fully labelled test
rows. The GP baseline is scikit-learn's ``GaussianProcessRegressor`` with a
constant x RBF + white-noise kernel whose hyper-parameters are optimised (L-BFGS
from the default start, ``normalize_y=True``, standardised inputs), fitted per
task on that task's labelled rows: it cannot take missing labels. Each
configuration runs in its own process so that its peak resident memory can be
read; both models use the machine's default thread count (or ``OMP_NUM_THREADS``
when set). Imports happen before the clocks start.

Run ``python benchmarks/gp_scaling.py`` (about 10 minutes on 2 cores) or with
``--quick`` (n up to 2,000 and 10,000 only). To measure a clean checkout rather
than the work tree, ``git archive HEAD | tar -x -C <export>`` and run with
``PYTHONPATH=<export>``. Writes a markdown table to
``benchmarks/results/gp_scaling.md``.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import platform
import resource
import subprocess
import sys
import time
import warnings
from datetime import date
from pathlib import Path

import numpy as np

N_TEST = 2000
N_PREDICT = 100_000
MISSING = 0.3
#: Training-set sizes where both models run; the network alone runs on the larger ones.
SIZES_BOTH = (50, 100, 300, 500, 1000, 2000)
ROOT = Path(__file__).resolve().parent.parent


def make_problem(n_train: int, seed: int = 0):
    from sk_mtbnn.datasets import make_multitask_regression

    X, y = make_multitask_regression(
        n_train + N_TEST, n_features=8, n_tasks=3, noise=0.1, random_state=seed
    )
    rng = np.random.RandomState(seed + 1)
    y_train = y[:n_train].copy()
    y_train[rng.uniform(size=y_train.shape) < MISSING] = np.nan
    return X[:n_train], y_train, X[n_train:], y[n_train:]


def run_gp(X, y):
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.gaussian_process import GaussianProcessRegressor
    from sklearn.gaussian_process.kernels import RBF, WhiteKernel
    from sklearn.gaussian_process.kernels import ConstantKernel as C
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    models = []
    for t in range(y.shape[1]):
        rows = ~np.isnan(y[:, t])
        gp = make_pipeline(
            StandardScaler(),
            GaussianProcessRegressor(C(1.0) * RBF(1.0) + WhiteKernel(1e-2), normalize_y=True),
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            models.append(gp.fit(X[rows], y[rows, t]))

    def predict(Xq):
        out = [m.predict(Xq, return_std=True) for m in models]
        return np.column_stack([a for a, _ in out]), np.column_stack([b for _, b in out])

    return predict


def run_nn(X, y):
    from sk_mtbnn import SparseMultiTaskBNNRegressor

    reg = SparseMultiTaskBNNRegressor(random_state=0).fit(X, y)
    return lambda Xq: reg.predict(Xq, return_std=True)


def measure(model: str, n_train: int, queue) -> None:
    # Imports outside the clocks.
    import sklearn.gaussian_process
    import sklearn.pipeline  # noqa: F401

    import sk_mtbnn  # noqa: F401
    from sk_mtbnn.metrics import gaussian_nll, interval_coverage

    X, y, X_test, y_test = make_problem(n_train)
    start, cpu = time.perf_counter(), time.process_time()
    predict = run_gp(X, y) if model == "gp" else run_nn(X, y)
    fit_s, fit_cpu_s = time.perf_counter() - start, time.process_time() - cpu
    start = time.perf_counter()
    mean, std = predict(X_test)
    predict_s = time.perf_counter() - start
    big_s = big_cpu_s = float("nan")
    if model == "nn":
        X_big = np.random.RandomState(2).uniform(size=(N_PREDICT, X.shape[1]))
        predict(X_big[:1000])  # warm-up
        start, cpu = time.perf_counter(), time.process_time()
        predict(X_big)
        big_s, big_cpu_s = time.perf_counter() - start, time.process_time() - cpu
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    rmse = float(np.mean(np.sqrt(np.mean((y_test - mean) ** 2, axis=0))))
    queue.put(
        {
            "model": model,
            "n": n_train,
            "fit_s": fit_s,
            "fit_cpu_s": fit_cpu_s,
            "predict_s": predict_s,
            "predict_100k_s": big_s,
            "predict_100k_cpu_s": big_cpu_s,
            "peak_mb": peak_mb,
            "nll": gaussian_nll(y_test, mean, std),
            "rmse": rmse,
            "coverage": interval_coverage(y_test, mean, std),
        }
    )


def run(model: str, n_train: int) -> dict:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=measure, args=(model, n_train, queue))
    proc.start()
    result = queue.get()
    proc.join()
    return result


def table(rows: list[dict]) -> str:
    head = (
        "| n train | model | fit (s) | fit CPU, all threads (s) | predict+std 2k rows (s) "
        "| predict+std 100k rows (s) | its CPU (s) | peak RSS (MB) | test NLL | test RMSE "
        "| 95% coverage |\n"
        "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n"
    )
    lines = []
    for r in rows:
        name = (
            "GaussianProcessRegressor (per task)"
            if r["model"] == "gp"
            else ("SparseMultiTaskBNNRegressor")
        )
        big = "" if np.isnan(r["predict_100k_s"]) else f"{r['predict_100k_s']:.2f}"
        big_cpu = "" if np.isnan(r["predict_100k_cpu_s"]) else f"{r['predict_100k_cpu_s']:.2f}"
        lines.append(
            f"| {r['n']:,} | {name} | {r['fit_s']:.1f} | {r['fit_cpu_s']:.1f} "
            f"| {r['predict_s']:.2f} | {big} | {big_cpu} "
            f"| {r['peak_mb']:.0f} | {r['nll']:.3f} | {r['rmse']:.3f} | {r['coverage']:.1%} |"
        )
    return head + "\n".join(lines) + "\n"


def ratio_table(by: dict) -> str:
    """Side by side at each n where both ran: NN / GP time ratios, NN - GP NLL, RMSE ratio."""
    head = (
        "| n train | fit NN / GP | predict+std 2k rows NN / GP | test NLL NN - GP (nats) "
        "| test RMSE NN / GP |\n| ---: | ---: | ---: | ---: | ---: |\n"
    )
    lines = []
    for n in sorted(k[1] for k in by if k[0] == "gp" and ("nn", k[1]) in by):
        gp, nn = by[("gp", n)], by[("nn", n)]
        lines.append(
            f"| {n:,} | {nn['fit_s'] / gp['fit_s']:.2f} | {nn['predict_s'] / gp['predict_s']:.2f} "
            f"| {nn['nll'] - gp['nll']:+.3f} | {nn['rmse'] / gp['rmse']:.2f} |"
        )
    return head + "\n".join(lines) + "\n"


def source(export_commit: str | None = None) -> str:
    """Which sk_mtbnn the runs import, and the repository HEAD at the start."""
    import sk_mtbnn

    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    where = Path(sk_mtbnn.__file__).resolve().parent
    if where != ROOT / "sk_mtbnn":
        made = f"an export of {export_commit}; " if export_commit else ""
        return f"sk_mtbnn imported from {where} ({made}repository HEAD at the start: {commit})"
    edited = subprocess.run(
        ["git", "status", "--porcelain", "--", "sk_mtbnn"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    return f"sk_mtbnn from the work tree at {commit}" + (" (edited)" if edited else "")


def notes(by: dict) -> list[str]:
    """The issue's targets, for the sizes measured so far."""
    out = []
    small = [by[("nn", n)]["fit_s"] for n in SIZES_BOTH if n <= 300 and ("nn", n) in by]
    if small:
        out.append(
            f"Small data (n <= 300): default fit {min(small):.1f}-{max(small):.1f} s "
            "(target: seconds, with GP-grade NLL and RMSE; see the ratio table)."
        )
    if ("nn", 1000) in by:
        out.append(f"At n = 1,000: default fit {by[('nn', 1000)]['fit_s']:.1f} s (target <= 5 s).")
    if ("gp", 2000) in by and ("nn", 2000) in by:
        gp, nn = by[("gp", 2000)], by[("nn", 2000)]
        out.append(
            f"At n = 2,000: fit-time ratio NN / GP = {nn['fit_s'] / gp['fit_s']:.2f} "
            f"(target <= 0.1); NLL difference NN - GP = {nn['nll'] - gp['nll']:+.3f} nats "
            "(target <= +0.1)."
        )
    if ("nn", 100_000) in by:
        big = by[("nn", 100_000)]
        out.append(
            f"At n = 100,000: fit {big['fit_s']:.0f} s (target <= 120 s), peak RSS "
            f"{big['peak_mb']:.0f} MB (target <= 2,048 MB), predict with std on 100,000 rows "
            f"{big['predict_100k_s']:.2f} s, {big['predict_100k_cpu_s']:.2f} s CPU (target <= 1 s)."
        )
    return out


def report(rows: list[dict], context: dict, complete: bool) -> str:
    import sklearn
    import torch

    by = {(r["model"], r["n"]): r for r in rows}
    threads = os.environ.get("OMP_NUM_THREADS", "unset: the machine's default")
    header = (
        f"# GaussianProcessRegressor vs SparseMultiTaskBNNRegressor\n\n"
        f"Measured {date.today().isoformat()} on {platform.machine()}, "
        f"{mp.cpu_count()} cores shared with other jobs (load average "
        f"{context['load'][0]:.1f} at the start, {os.getloadavg()[0]:.1f} at the end), "
        f"Python {platform.python_version()}, torch {torch.__version__}, scikit-learn "
        f"{sklearn.__version__}, {context['source']}, OMP_NUM_THREADS {threads}, in "
        f"{(time.perf_counter() - context['start']) / 60:.1f} minutes, by "
        f"`{context['command']}`. Peak RSS includes the interpreter and torch (about "
        "300-400 MB). Fit CPU is the process's CPU time over all its threads: on a loaded "
        "machine the wall-clock fit time also counts the time spent waiting for a core.\n\n"
    )
    if not complete:
        header += "**Partial: the run was still going when this file was written.**\n\n"
    return (
        header
        + table(rows)
        + "\nSide by side where both models ran:\n\n"
        + ratio_table(by)
        + "\n"
        + "\n".join(f"- {n}" for n in notes(by))
        + "\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="skip n = 100,000")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "gp_scaling.md"))
    parser.add_argument(
        "--sizes",
        type=int,
        nargs="+",
        help="training-set sizes to run instead of the default list (the GP runs up to 2,000)",
    )
    parser.add_argument(
        "--commit", help="with PYTHONPATH=<export>: the commit the export was made from"
    )
    args = parser.parse_args()
    env = " ".join(
        f"{k}={os.environ[k]}" for k in ("PYTHONPATH", "OMP_NUM_THREADS") if k in os.environ
    )
    nice = f"nice -n {os.nice(0)}" if os.nice(0) else ""
    context = {
        "source": source(args.commit),
        "load": os.getloadavg(),
        "start": time.perf_counter(),
        "command": " ".join(
            filter(None, [env, nice, "python benchmarks/gp_scaling.py", *sys.argv[1:]])
        ),
    }
    sizes = args.sizes or [*SIZES_BOTH, 10_000, *(() if args.quick else (100_000,))]
    plan = [(m, n) for n in sizes for m in (("gp", "nn") if n <= max(SIZES_BOTH) else ("nn",))]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    rows = []
    for k, (model, n) in enumerate(plan):
        rows.append(run(model, n))
        print(table(rows[-1:]).splitlines()[-1], flush=True)
        out.write_text(report(rows, context, complete=k == len(plan) - 1))
    print("\n".join(notes({(r["model"], r["n"]): r for r in rows})))
    print(f"written to {out}")


if __name__ == "__main__":
    main()
