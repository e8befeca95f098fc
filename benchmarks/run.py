"""The public benchmark suite: sk_mtbnn against Gaussian processes on seven problems.

Problems (tasks in brackets):

* multi-fidelity test functions, the two fidelities as tasks, the high fidelity
  labelled on a quarter of the rows: Forrester (1-D, 80 rows), Currin (2-D,
  200 rows), borehole (8-D, 500 rows);
* a linear model of coregionalisation (8-D, 3 tasks, 600 rows, ~50% of the
  labels missing);
* ``enb`` (energy efficiency, 2 tasks), ``slump`` (concrete, 3 tasks) and
  ``mpea`` (alloys, 5 sparse tasks, log-transformed) from ``../shared/data``,
  75/25 random splits.

Models: :class:`~sk_mtbnn.SparseMultiTaskBNNRegressor` with default settings
(MTL); the same estimator fitted to each task alone (STL);
``GaussianProcessRegressor`` (constant x RBF + white noise, optimised,
``normalize_y``, standardised inputs) per task on that task's labels, and one
GP on all tasks at once (a shared kernel, fitted to the rows with every task
labelled -- scikit-learn's GP cannot take missing labels). Test metrics per
task in units of that task's test standard deviation, averaged over tasks:
NLL, RMSE, CRPS, 95% coverage; Delta_m% of RMSE against STL; total fit time.

``python benchmarks/run.py`` (about 2 minutes of fitting on one core; 10 in
the worst case) or ``--quick`` (three problems, about a minute). Writes
``benchmarks/results/suite.md`` and ``docs/_static/suite_nll.png``;
``--update-readme`` copies the table into the README.
"""

from __future__ import annotations

import argparse
import platform
import re
import time
import warnings
from datetime import date
from pathlib import Path

import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import RBF, WhiteKernel
from sklearn.gaussian_process.kernels import ConstantKernel as C
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sk_mtbnn import SparseMultiTaskBNNRegressor
from sk_mtbnn.datasets import (
    load_enb,
    load_slump,
    make_multifidelity,
    make_multitask_regression,
)
from sk_mtbnn.metrics import crps_gaussian, delta_m, gaussian_nll, interval_coverage

ROOT = Path(__file__).resolve().parent
DATA = ROOT.parents[1] / "shared" / "data"


# ------------------------------------------------------------------ problems
def multifidelity(name, n):
    def load(seed):
        X, y = make_multifidelity(
            name, n + 1000, high_fidelity_fraction=0.25, noise=0.02, random_state=seed
        )
        test_X, test_y = (
            X[n:],
            make_multifidelity(
                name, n + 1000, high_fidelity_fraction=1.0, noise=0.02, random_state=seed
            )[1][n:],
        )
        return X[:n], y[:n], test_X, test_y

    return load


def lmc(seed):
    X, y = make_multitask_regression(
        1600, n_tasks=3, missing_fraction=0.0, noise=0.1, random_state=seed
    )
    train = y[:600].copy()
    train[np.random.RandomState(seed).uniform(size=train.shape) < 0.5] = np.nan
    return X[:600], train, X[600:], y[600:]


def split(X, y, seed):
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.25, random_state=seed)
    return X_tr, y_tr, X_te, y_te


def enb(seed):
    return split(*load_enb(return_X_y=True), seed)


def slump(seed):
    return split(*load_slump(return_X_y=True), seed)


def mpea(seed):
    import pandas as pd

    df = pd.read_csv(DATA / "mpea.csv")
    targets = [c for c in df.columns if c.startswith("y_")]
    df = df[~df[targets].isna().all(axis=1)]
    y = np.log(df[targets].to_numpy(float).clip(1e-3))
    return split(df.drop(columns=targets).to_numpy(float), y, seed)


PROBLEMS = {
    "Forrester (2 fidelities)": multifidelity("forrester", 80),
    "Currin (2 fidelities)": multifidelity("currin", 200),
    "borehole (2 fidelities)": multifidelity("borehole", 500),
    "LMC, 3 tasks, 50% missing": lmc,
    "enb": enb,
    "slump": slump,
    "mpea (sparse)": mpea,
}
QUICK = ["Forrester (2 fidelities)", "LMC, 3 tasks, 50% missing", "slump"]


# -------------------------------------------------------------------- models
def gp(X, y):
    kernel = C(1.0) * RBF(1.0) + WhiteKernel(1e-2)
    model = make_pipeline(StandardScaler(), GaussianProcessRegressor(kernel, normalize_y=True))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return model.fit(X, y)


def fit_predict(name, X, y, X_test, seed):
    T = y.shape[1]
    if name == "MTL (sk_mtbnn)":
        est = SparseMultiTaskBNNRegressor(random_state=seed).fit(X, y)
        return est.predict(X_test, return_std=True)
    means, stds = np.empty((len(X_test), T)), np.empty((len(X_test), T))
    if name == "GP, all tasks":
        rows = ~np.isnan(y).any(axis=1)
        if rows.sum() < 3:
            return None
        mean, std = gp(X[rows], y[rows]).predict(X_test, return_std=True)
        return mean.reshape(-1, T), std.reshape(-1, T)
    for t in range(T):
        rows = ~np.isnan(y[:, t])
        if name == "STL (sk_mtbnn)":
            est = SparseMultiTaskBNNRegressor(random_state=seed).fit(X[rows], y[rows, t])
            means[:, t], stds[:, t] = est.predict(X_test, return_std=True)
        else:
            means[:, t], stds[:, t] = gp(X[rows], y[rows, t]).predict(X_test, return_std=True)
    return means, stds


MODELS = ["MTL (sk_mtbnn)", "STL (sk_mtbnn)", "GP per task", "GP, all tasks"]


def scores(y, mean, std):
    scale = np.nanstd(y, axis=0)
    z = (y / scale, mean / scale, std / scale)
    rmse = np.sqrt(np.nanmean((y - mean) ** 2, axis=0)) / scale
    return {
        "nll": gaussian_nll(*z),
        "rmse": float(rmse.mean()),
        "rmse_tasks": rmse,
        "crps": crps_gaussian(*z),
        "coverage": interval_coverage(y, mean, std),
    }


def run(problems, seeds):
    rows = []
    for problem in problems:
        for seed in range(seeds):
            X, y, X_test, y_test = PROBLEMS[problem](seed)
            y = y.reshape(len(y), -1)
            y_test = y_test.reshape(len(y_test), -1)
            results = {}
            for model in MODELS:
                start = time.perf_counter()
                out = fit_predict(model, X, y, X_test, seed)
                seconds = time.perf_counter() - start
                if out is None:
                    continue
                results[model] = {**scores(y_test, *out), "seconds": seconds}
            stl = results["STL (sk_mtbnn)"]["rmse_tasks"]
            for model, r in results.items():
                r["delta"] = delta_m(r["rmse_tasks"], stl, higher_is_better=False)
                rows.append({"problem": problem, "model": model, "seed": seed, **r})
                print(
                    f"{problem:<28} {model:<16} NLL {r['nll']:7.3f} RMSE {r['rmse']:.3f} "
                    f"cov {r['coverage']:.2f} {r['seconds']:6.1f} s",
                    flush=True,
                )
    return rows


def table(rows):
    lines = [
        "| problem | model | NLL | RMSE | CRPS | 95% coverage | Delta_m% (RMSE) vs STL "
        "| fit time (s) |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    problems = list(dict.fromkeys(r["problem"] for r in rows))
    for problem in problems:
        for model in MODELS:
            sel = [r for r in rows if r["problem"] == problem and r["model"] == model]
            if not sel:
                continue

            def avg(key, sel=sel):
                return float(np.mean([r[key] for r in sel]))

            lines.append(
                f"| {problem} | {model} | {avg('nll'):.3f} | {avg('rmse'):.3f} "
                f"| {avg('crps'):.3f} | {avg('coverage'):.1%} | {avg('delta'):+.1f} "
                f"| {avg('seconds'):.1f} |"
            )
    return "\n".join(lines) + "\n"


def behind_gp(rows):
    """Problems where the multi-task network's NLL is worse than the best GP's."""
    notes = []
    for problem in dict.fromkeys(r["problem"] for r in rows):

        def nll(model, problem=problem):
            sel = [r["nll"] for r in rows if r["problem"] == problem and r["model"] == model]
            return np.mean(sel) if sel else np.inf

        best_gp = min(nll("GP per task"), nll("GP, all tasks"))
        gap = nll("MTL (sk_mtbnn)") - best_gp
        if gap > 0:
            notes.append(f"{problem}: NLL {gap:+.3f} nats behind the best GP")
    return notes


def plot(rows, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    problems = list(dict.fromkeys(r["problem"] for r in rows))
    fig, ax = plt.subplots(figsize=(10, 4))
    width = 0.2
    for k, model in enumerate(MODELS):
        values = [
            np.mean(
                [r["nll"] for r in rows if r["problem"] == p and r["model"] == model] or [np.nan]
            )
            for p in problems
        ]
        ax.bar(np.arange(len(problems)) + (k - 1.5) * width, values, width, label=model)
    ax.set_xticks(np.arange(len(problems)), problems, rotation=20, ha="right", fontsize=8)
    ax.set_ylabel("test NLL (standardised; lower is better)")
    ax.axhline(0, color="k", lw=0.5)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="three problems, under 2 minutes")
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--update-readme", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    # enb and slump ship with the package; mpea is read from ../shared/data.
    problems = (
        QUICK if args.quick else [p for p in PROBLEMS if p != "mpea (sparse)" or DATA.exists()]
    )
    start = time.perf_counter()
    rows = run(problems, args.seeds)
    minutes = (time.perf_counter() - start) / 60
    header = (
        f"Measured {date.today().isoformat()} on {platform.machine()} "
        f"({platform.processor() or 'CPU'}, one torch thread), {args.seeds} seed(s), in "
        f"{minutes:.1f} minutes, by `python benchmarks/run.py"
        f"{' --quick' if args.quick else ''}`. Metrics per task in units of the task's test "
        "standard deviation, averaged over tasks.\n\n"
    )
    notes = behind_gp(rows)
    body = table(rows) + (
        "\nWhere the network is behind a GP: " + "; ".join(notes) + ".\n" if notes else ""
    )
    out = ROOT / "results" / ("suite_quick.md" if args.quick else "suite.md")
    out.write_text("# Benchmark suite\n\n" + header + body)
    plot(rows, ROOT.parent / "docs" / "_static" / "suite_nll.png")
    if args.update_readme:
        readme = ROOT.parent / "README.md"
        text = readme.read_text()
        block = f"<!-- suite:start -->\n{header}{body}<!-- suite:end -->"
        readme.write_text(
            re.sub(r"<!-- suite:start -->.*<!-- suite:end -->", block, text, flags=re.S)
        )
    print(header + body)


if __name__ == "__main__":
    main()
