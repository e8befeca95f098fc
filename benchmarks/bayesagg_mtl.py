"""BayesAgg-MTL against other gradient-combination rules on multi-task classification.

Two problems with binary tasks:

* ``emotions`` (mulan multi-label music data, 6 tasks, its fixed train/test
  split; read from ``../shared/data`` -- the data states no licence, so it is
  not shipped with the package);
* a synthetic problem built to have conflicting tasks
  (``sk_mtbnn.datasets.make_multitask_classification``: two groups of three
  tasks whose labelling functions partly oppose each other, label noise from
  0% to 30% across tasks), 1,000 training and 4,000 test rows.

Every method trains the same :class:`~sk_mtbnn.BayesAggMTLClassifier` network
with default settings; only ``aggregator`` changes. Single-task learning (STL)
fits the same classifier to each task alone. The metric is each task's test
ROC AUC; Delta_m% (Maninis et al. 2019) is the mean relative change against
STL, lower is better. Fit time is the wall time of one fit (the default
includes the sharing check, ``sharing="auto"``). Mean +- standard deviation
over the seeds.

A second table does the same for regression (BayesAgg's strongest case in
the paper): a linear model of coregionalisation with two groups of two tasks,
30% labels missing, 1,000 training rows, and the energy-efficiency data; the
metric is each task's test RMSE (Delta_m against single-task fits of
:class:`~sk_mtbnn.SparseMultiTaskBNNRegressor`) and the mean test NLL.

Run ``python benchmarks/bayesagg_mtl.py [--seeds 3]``; writes
``benchmarks/results/bayesagg_mtl.md``.
"""

from __future__ import annotations

import argparse
import platform
import time
from datetime import date
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split

from sk_mtbnn import BayesAggMTLClassifier, BayesAggMTLRegressor, SparseMultiTaskBNNRegressor
from sk_mtbnn.datasets import load_enb, make_multitask_classification, make_multitask_regression
from sk_mtbnn.metrics import delta_m, gaussian_nll

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def load_emotions():
    import pandas as pd

    train = pd.read_csv(DATA / "emotions_train.csv")
    test = pd.read_csv(DATA / "emotions_test.csv")
    targets = [c for c in train.columns if c.startswith("y_")]
    return (
        train.drop(columns=targets).to_numpy(float),
        train[targets].to_numpy(int),
        test.drop(columns=targets).to_numpy(float),
        test[targets].to_numpy(int),
    )


def load_conflicting():
    X, y = make_multitask_classification(5000, random_state=0)
    return X[:1000], y[:1000], X[1000:], y[1000:]


def methods():
    out = {"LS (mean)": "mean", "PCGrad": "pcgrad", "BayesAgg": "bayesagg"}
    try:
        from torchjd.aggregation import IMTLG, MGDA

        out["MGDA (torchjd)"] = MGDA()
        out["IMTL-G (torchjd)"] = IMTLG()
    except ImportError:
        pass
    return out


def task_aucs(clf, X, y):
    proba = clf.predict_proba(X)
    proba = proba if isinstance(proba, list) else [proba]
    return np.array([roc_auc_score(y[:, t], p[:, 1]) for t, p in enumerate(proba)])


def stl_aucs(data, seed):
    """Test AUC of each task's single-task classifier ``(T,)``."""
    X, y, X_test, y_test = data
    aucs = []
    for t in range(y.shape[1]):
        clf = BayesAggMTLClassifier(aggregator="mean", random_state=seed).fit(X, y[:, t])
        aucs.append(roc_auc_score(y_test[:, t], clf.predict_proba(X_test)[:, 1]))
    return np.array(aucs)


def run_problem(name, data, seeds):
    X, y, X_test, y_test = data
    rows = {}
    stl = np.array([stl_aucs(data, seed) for seed in range(seeds)])
    rows["STL"] = {"auc": stl.mean(1), "delta": np.zeros(seeds), "fit_s": None}
    for label, agg in methods().items():
        aucs, deltas, fit_s = [], [], []
        for seed in range(seeds):
            torch.manual_seed(seed)
            start = time.perf_counter()
            clf = BayesAggMTLClassifier(aggregator=agg, random_state=seed).fit(X, y)
            seconds = time.perf_counter() - start
            a = task_aucs(clf, X_test, y_test)
            aucs.append(a.mean())
            deltas.append(delta_m(a, stl[seed], higher_is_better=True))
            fit_s.append(seconds)
        rows[label] = {"auc": np.array(aucs), "delta": np.array(deltas), "fit_s": fit_s}
        print(
            f"{name:>12} {label:<18} Delta_m {np.mean(deltas):+6.2f} +- {np.std(deltas):4.2f}  "
            f"AUC {np.mean(aucs):.4f}  {np.mean(fit_s):6.1f} s per fit",
            flush=True,
        )
    return rows


def table(results) -> str:
    lines = [
        "| problem | method | Delta_m% vs STL (lower is better) | mean test AUC "
        "| fit time (s) | time / LS |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for problem, rows in results.items():
        ls = np.mean(rows["LS (mean)"]["fit_s"])
        for label, r in rows.items():
            if r["fit_s"] is None:
                timing = ("", "")
            else:
                timing = (
                    f"{np.mean(r['fit_s']):.1f}",
                    f"{np.mean(r['fit_s']) / ls:.2f}",
                )
            lines.append(
                f"| {problem} | {label} | {np.mean(r['delta']):+.2f} +- {np.std(r['delta']):.2f} "
                f"| {np.mean(r['auc']):.4f} +- {np.std(r['auc']):.4f} | {timing[0]} | {timing[1]} |"
            )
    return "\n".join(lines) + "\n"


def regression_problems(seed):
    X, y = make_multitask_regression(
        3000,
        n_tasks=4,
        task_groups=[0, 0, 1, 1],
        missing_fraction=0.3,
        noise=0.2,
        random_state=seed,
    )
    yield "LMC, 2 groups of 2 tasks", (X[:1000], y[:1000], X[1000:], y[1000:])
    X, y = load_enb(return_X_y=True)
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.25, random_state=seed)
    yield "energy efficiency", (X_tr, y_tr, X_te, y_te)


REGRESSION_METHODS = {
    "LS (mean)": lambda s: SparseMultiTaskBNNRegressor(random_state=s),
    "PCGrad": lambda s: SparseMultiTaskBNNRegressor(aggregator="pcgrad", random_state=s),
    "BayesAgg (VBLL heads)": lambda s: SparseMultiTaskBNNRegressor(
        aggregator="bayesagg", random_state=s
    ),
    "BayesAggMTLRegressor": lambda s: BayesAggMTLRegressor(random_state=s),
}


def task_rmse(y, mean):
    return np.sqrt(np.nanmean((y - mean) ** 2, axis=0))


def run_regression(seeds):
    rows = {}
    for seed in range(seeds):
        for problem, (X, y, X_te, y_te) in regression_problems(seed):
            stl = np.array(
                [
                    task_rmse(
                        y_te[:, t],
                        SparseMultiTaskBNNRegressor(random_state=seed)
                        .fit(X, y[:, t])
                        .predict(X_te),
                    )
                    for t in range(y.shape[1])
                ]
            )
            for label, make in REGRESSION_METHODS.items():
                start = time.perf_counter()
                est = make(seed).fit(X, y)
                seconds = time.perf_counter() - start
                mean, std = est.predict(X_te, return_std=True)
                r = rows.setdefault((problem, label), {"delta": [], "nll": [], "fit_s": []})
                r["delta"].append(delta_m(task_rmse(y_te, mean), stl, higher_is_better=False))
                r["nll"].append(gaussian_nll(y_te, mean, std))
                r["fit_s"].append(seconds)  # an ensemble of the evidence regime has no epochs
                print(
                    f"{problem:>26} {label:<22} Delta_m {r['delta'][-1]:+6.2f} "
                    f"NLL {r['nll'][-1]:.3f}",
                    flush=True,
                )
    lines = [
        "| problem | method | Delta_m% of RMSE vs STL (lower is better) | mean test NLL "
        "| fit time (s) |",
        "| --- | --- | ---: | ---: | ---: |",
    ]
    for (problem, label), r in rows.items():
        lines.append(
            f"| {problem} | {label} | {np.mean(r['delta']):+.2f} +- {np.std(r['delta']):.2f} "
            f"| {np.mean(r['nll']):.3f} +- {np.std(r['nll']):.3f} "
            f"| {np.mean(r['fit_s']):.1f} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "bayesagg_mtl.md"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    results = {}
    if DATA.exists():
        results["emotions"] = run_problem("emotions", load_emotions(), args.seeds)
    results["conflicting (synthetic)"] = run_problem("conflicting", load_conflicting(), args.seeds)
    header = (
        "# BayesAgg-MTL vs other aggregators (multi-task classification)\n\n"
        f"Measured {date.today().isoformat()} on {platform.machine()}, one torch thread, "
        f"{args.seeds} seeds, by `python benchmarks/bayesagg_mtl.py --seeds {args.seeds}`.\n\n"
    )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    classification = header + "## Classification\n\n" + table(results)
    out.write_text(classification)  # kept if the regression part fails
    regression = run_regression(args.seeds)
    out.write_text(classification + "\n## Regression\n\n" + regression)
    print(f"written to {out}")


if __name__ == "__main__":
    main()
