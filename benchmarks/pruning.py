"""Iterative magnitude pruning: accuracy and mask overlap at 50%, 75% and 90% sparsity.

Problems:

* synthetic: 4 regression tasks in 2 groups of related tasks
  (``make_multitask_regression(task_groups=[0, 0, 1, 1])``, noise std 0.1),
  1,000 training and 2,000 test rows;
* ``mpea`` (multi-principal-element alloys, ``../shared/data``, Apache-2.0):
  5 sparsely labelled mechanical properties, log-transformed, 75/25 split.

For each problem the dense ``SparseMultiTaskBNNRegressor`` (default settings)
is compared with ``IterativeMagnitudePruning`` of the same estimator at three
target sparsities, reached in three rounds (``select="last"``, rewinding to
initialisation; weights ranked over all layers, the default, and at 75% also
per layer), on test NLL, RMSE and fit time. For the synthetic problem the
mean Jaccard overlap of the task masks within and between the groups is
reported. Run ``python benchmarks/pruning.py [--seeds 2]``; writes
``benchmarks/results/pruning.md``.
"""

from __future__ import annotations

import argparse
import platform
import time
from datetime import date
from pathlib import Path

import numpy as np
import torch
from sklearn.model_selection import train_test_split

from sk_mtbnn import IterativeMagnitudePruning, SparseMultiTaskBNNRegressor
from sk_mtbnn.datasets import make_multitask_regression
from sk_mtbnn.metrics import gaussian_nll

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
SPARSITIES = (0.5, 0.75, 0.9)
#: (sparsity, scope) of the pruned models: the default global ranking at every
#: sparsity, and per-layer pruning at 75% for comparison.
CONFIGS = [(s, "global") for s in SPARSITIES] + [(0.75, "layer")]
ROUNDS = 3
GROUPS = [0, 0, 1, 1]


def synthetic(seed):
    X, y = make_multitask_regression(
        3000, n_features=8, task_groups=GROUPS, noise=0.1, random_state=seed
    )
    return X[:1000], y[:1000], X[1000:], y[1000:]


def mpea(seed):
    import pandas as pd

    df = pd.read_csv(DATA / "mpea.csv")
    targets = [c for c in df.columns if c.startswith("y_")]
    df = df[~df[targets].isna().all(axis=1)]
    X = df.drop(columns=targets).to_numpy(float)
    y = np.log(df[targets].to_numpy(float).clip(1e-3))
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.25, random_state=seed)
    return X_tr, y_tr, X_te, y_te


def evaluate(model, X, y):
    mean, std = model.predict(X, return_std=True)
    rmse = np.sqrt(np.nanmean((y - mean) ** 2, axis=0)) / np.nanstd(y, axis=0)
    return gaussian_nll(y / np.nanstd(y, 0), mean / np.nanstd(y, 0), std / np.nanstd(y, 0)), (
        float(np.mean(rmse))
    )


def overlap_within_between(overlap):
    groups = np.array(GROUPS)
    same = groups[:, None] == groups[None, :]
    off = ~np.eye(len(groups), dtype=bool)
    return overlap[same & off].mean(), overlap[~same].mean()


def run(problem, loader, seeds):
    rows = []
    for seed in range(seeds):
        X, y, X_te, y_te = loader(seed)
        start = time.perf_counter()
        dense = SparseMultiTaskBNNRegressor(random_state=seed).fit(X, y)
        rows.append(
            ("dense", seed, *evaluate(dense, X_te, y_te), time.perf_counter() - start, None)
        )
        for sparsity, scope in CONFIGS:
            ratio = 1 - (1 - sparsity) ** (1 / ROUNDS)
            start = time.perf_counter()
            model = IterativeMagnitudePruning(
                SparseMultiTaskBNNRegressor(),
                prune_ratio=ratio,
                n_rounds=ROUNDS,
                scope=scope,
                select="last",
                random_state=seed,
            ).fit(X, y)
            seconds = time.perf_counter() - start
            overlap = overlap_within_between(model.overlap_) if problem == "synthetic" else None
            name = f"pruned to {sparsity:.0%} sparsity"
            name += ", per layer" if scope == "layer" else ""
            rows.append((name, seed, *evaluate(model, X_te, y_te), seconds, overlap))
            print(problem, rows[-1], f"sparsity {model.sparsity_.round(3)}", flush=True)
    return rows


def table(results):
    lines = [
        "| problem | model | test NLL (standardised) | test RMSE / std | fit time (s) "
        "| mask overlap within / between groups |",
        "| --- | --- | ---: | ---: | ---: | --- |",
    ]
    for problem, rows in results.items():
        for name in dict.fromkeys(r[0] for r in rows):  # in the order they were run
            sel = [r for r in rows if r[0] == name]
            nll = np.array([r[2] for r in sel])
            rmse = np.array([r[3] for r in sel])
            secs = np.array([r[4] for r in sel])
            ov = [r[5] for r in sel if r[5] is not None]
            overlap = (
                f"{np.mean([o[0] for o in ov]):.3f} / {np.mean([o[1] for o in ov]):.3f}"
                if ov
                else ""
            )
            lines.append(
                f"| {problem} | {name} | {nll.mean():.3f} +- {nll.std():.3f} "
                f"| {rmse.mean():.3f} +- {rmse.std():.3f} | {secs.mean():.0f} | {overlap} |"
            )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "pruning.md"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    results = {"synthetic": run("synthetic", synthetic, args.seeds)}
    if DATA.exists():
        results["mpea"] = run("mpea", mpea, args.seeds)
    header = (
        "# Iterative magnitude pruning\n\n"
        f"Measured {date.today().isoformat()} on {platform.machine()}, one torch thread, "
        f"{args.seeds} seeds, by `python benchmarks/pruning.py --seeds {args.seeds}`. "
        "NLL and RMSE are in units of each task's test standard deviation, averaged over tasks.\n\n"
    )
    out = Path(args.out)
    out.write_text(header + table(results))
    print(f"written to {out}")


if __name__ == "__main__":
    main()
