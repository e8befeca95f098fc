"""Negative transfer: multi-task fits against the network's own single-task fits.

Delta_m% (Maninis et al. 2019) of each task's test RMSE (regression) or ROC
AUC (classification) of the default multi-task estimator against the same
estimator fitted to each task alone, per problem and seed; lower is better,
> 0 means that learning the tasks together hurt them on average.

Problems:

* the suite of ``benchmarks/run.py`` (multi-fidelity Forrester, Currin and
  borehole, an LMC, ``enb``, ``slump``, ``mpea``);
* heterogeneous targets (``sk_mtbnn.datasets.make_heterogeneous_tasks``):
  six tasks of scales 1e-2..1e2, noise 1-30%, length scales 0.3-3, three
  related and three unrelated, two with 5% of the labels; 500 training rows
  (the evidence regime) and 3,000 (mini-batch training);
* the classification problems of ``benchmarks/bayesagg_mtl.py`` (emotions,
  the conflicting synthetic problem) and one with an unrelated label,
  BayesAggMTLClassifier with its defaults, with ``sharing="all"`` and with
  linear scalarisation (``aggregator="mean"``).

``python benchmarks/negative_transfer.py [--seeds 3] [--problems slump ...]``;
``--sk-mtbnn DIR`` imports the package from ``DIR`` (e.g. an export of an
older commit, to compare fit times). Writes
``benchmarks/results/negative_transfer.md`` (``--out``).
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent


def _parse():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--problems", nargs="*", default=None)
    parser.add_argument("--sk-mtbnn", default=None, help="import sk_mtbnn from this directory")
    parser.add_argument("--out", default=str(ROOT / "results" / "negative_transfer.md"))
    parser.add_argument("--no-classification", action="store_true")
    parser.add_argument(
        "--set", nargs="*", default=[], help="multi-task parameters, e.g. sharing=all"
    )
    return parser.parse_args()


ARGS = _parse() if __name__ == "__main__" else None
if ARGS is not None and ARGS.sk_mtbnn:
    sys.path.insert(0, ARGS.sk_mtbnn)
sys.path.insert(0 if ARGS is None or not ARGS.sk_mtbnn else 1, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from run import PROBLEMS  # noqa: E402
from sklearn.metrics import roc_auc_score  # noqa: E402

import sk_mtbnn  # noqa: E402
from sk_mtbnn import BayesAggMTLClassifier, SparseMultiTaskBNNRegressor  # noqa: E402
from sk_mtbnn.datasets import make_heterogeneous_tasks  # noqa: E402
from sk_mtbnn.metrics import delta_m  # noqa: E402


def heterogeneous(n):
    def load(seed):
        X, Y = make_heterogeneous_tasks(n + 2000, random_state=seed)
        test = make_heterogeneous_tasks(n + 2000, n_few_labels=0, random_state=seed)[1]
        return X[:n], Y[:n], X[n:], test[n:]

    return load


REGRESSION = {
    **PROBLEMS,
    "heterogeneous, 500 rows": heterogeneous(500),
    "heterogeneous, 3000 rows": heterogeneous(3000),
}
RELATED = {
    "Forrester (2 fidelities)",
    "Currin (2 fidelities)",
    "borehole (2 fidelities)",
    "LMC, 3 tasks, 50% missing",
    "mpea (sparse)",
}


def load_unrelated_label():
    """Four thresholds of one direction of x0, x1 and one unrelated label, sin(2.5 x4) > 0.

    The problem of tests/unit/estimators/test_bayesagg_classifier_sharing.py: 600
    training and 3,000 test rows of 8 standard normal columns.
    """
    rng = np.random.RandomState(0)
    X = rng.normal(size=(3600, 8))
    z = X[:, 0] + 0.5 * X[:, 1]
    related = [z + 0.3 * rng.randn(3600) > c for c in (-0.5, 0.0, 0.5, 1.0)]
    unrelated = np.sin(2.5 * X[:, 4]) + 0.1 * rng.randn(3600) > 0
    y = np.column_stack([*related, unrelated]).astype(int)
    return X[:600], y[:600], X[600:], y[600:]


def classification_problems():
    from bayesagg_mtl import DATA, load_conflicting, load_emotions

    out = {
        "conflicting (synthetic)": load_conflicting,
        "one unrelated label (synthetic)": load_unrelated_label,
    }
    if DATA.exists():
        out = {"emotions": load_emotions, **out}
    return out


def rmse(y, mean):
    return np.sqrt(np.nanmean((y - mean) ** 2, axis=0))


def relatedness(est) -> str:
    """The fitted sharing decisions: per task 'S' (shares) or 'P' (private) and its gain."""
    members = getattr(est, "estimators_", [est])
    shared = [getattr(m, "shared_tasks_", None) for m in members]
    if shared[0] is None:
        return ""
    kept = np.mean(shared, axis=0)  # share of the members in which each task shares
    gain = (
        np.nanmean([m.sharing_gain_ for m in members], axis=0)
        if any(np.isfinite(m.sharing_gain_).any() for m in members)
        else np.full(len(kept), np.nan)
    )
    return " ".join(
        f"{k:.1f}({g:+.2f})" if np.isfinite(g) else f"{k:.1f}(-)" for k, g in zip(kept, gain)
    )


def mtl_params() -> dict:
    """The ``--set name=value`` parameters of the multi-task fits (values as Python literals)."""
    import ast

    out = {}
    for item in ARGS.set if ARGS is not None else []:
        name, _, value = item.partition("=")
        try:
            out[name] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            out[name] = value
    return out


def run_regression(problem, seed):
    X, y, X_test, y_test = REGRESSION[problem](seed)
    y, y_test = y.reshape(len(y), -1), y_test.reshape(len(y_test), -1)
    start = time.perf_counter()
    mtl = SparseMultiTaskBNNRegressor(random_state=seed, **mtl_params()).fit(X, y)
    seconds = time.perf_counter() - start
    mtl_rmse = rmse(y_test, mtl.predict(X_test).reshape(len(X_test), -1))
    stl_rmse = np.empty(y.shape[1])
    for t in range(y.shape[1]):
        rows = ~np.isnan(y[:, t])
        est = SparseMultiTaskBNNRegressor(random_state=seed).fit(X[rows], y[rows, t])
        stl_rmse[t] = rmse(y_test[:, [t]], est.predict(X_test).reshape(-1, 1))[0]
    return {
        "delta": delta_m(mtl_rmse, stl_rmse, higher_is_better=False),
        "seconds": seconds,
        "tasks": 100 * (mtl_rmse - stl_rmse) / stl_rmse,
        "relatedness": relatedness(mtl),
    }


def aucs(clf, X, y):
    proba = clf.predict_proba(X)
    proba = proba if isinstance(proba, list) else [proba]
    return np.array([roc_auc_score(y[:, t], p[:, 1]) for t, p in enumerate(proba)])


def run_classification(load, seed):
    X, y, X_test, y_test = load()
    stl = np.array(
        [
            aucs(BayesAggMTLClassifier(random_state=seed).fit(X, y[:, t]), X_test, y_test[:, [t]])[
                0
            ]
            for t in range(y.shape[1])
        ]
    )
    out = {}
    methods = {
        "default": {},
        "sharing='all'": {"sharing": "all"},
        "LS (mean)": {"aggregator": "mean"},
    }
    for label, kwargs in methods.items():
        start = time.perf_counter()
        clf = BayesAggMTLClassifier(random_state=seed, **kwargs).fit(X, y)
        seconds = time.perf_counter() - start
        a = aucs(clf, X_test, y_test)
        out[label] = {
            "delta": delta_m(a, stl, higher_is_better=True),
            "auc": a.mean(),
            "seconds": seconds,
            "tasks": 100 * (stl - a) / stl,
            "relatedness": relatedness(clf),
        }
    return out


def summary(values) -> str:
    values = np.asarray(values, dtype=float)
    return f"{values.mean():+.1f} +- {values.std():.1f}" if len(values) > 1 else f"{values[0]:+.1f}"


def main() -> None:
    args = ARGS
    torch.set_num_threads(1)
    problems = args.problems or list(REGRESSION)
    lines = [
        "| problem | related | Delta_m% (RMSE) vs STL | worst task | fit time (s) | "
        "fitted sharing, seed 0: share of members sharing (held-out gain, nats/label) |",
        "| --- | --- | ---: | ---: | ---: | --- |",
    ]
    start_all = time.perf_counter()
    for problem in [p for p in problems if p in REGRESSION]:
        runs = []
        for seed in range(args.seeds):
            try:
                runs.append(run_regression(problem, seed))
            except FileNotFoundError as error:
                print(f"skipped {problem}: {error}")
                break
            r = runs[-1]
            print(
                f"{problem:<28} seed {seed} Delta_m {r['delta']:+6.1f} tasks "
                f"{np.round(r['tasks'], 1)} {r['seconds']:5.1f} s  {r['relatedness']}",
                flush=True,
            )
        if not runs:
            continue
        lines.append(
            f"| {problem} | {'yes' if problem in RELATED else 'no/mixed'} "
            f"| {summary([r['delta'] for r in runs])} "
            f"| {np.mean([r['tasks'].max() for r in runs]):+.1f} "
            f"| {np.mean([r['seconds'] for r in runs]):.1f} | {runs[0]['relatedness']} |"
        )
    body = "\n".join(lines) + "\n"
    if not args.no_classification:
        cls = [
            "| problem | method | Delta_m% (AUC) vs STL | worst task | mean AUC | fit time (s) "
            "| fitted sharing, seed 0 (held-out gain, nats/label) |",
            "| --- | --- | ---: | ---: | ---: | ---: | --- |",
        ]
        for name, load in classification_problems().items():
            if args.problems and name not in args.problems:
                continue
            runs = [run_classification(load, seed) for seed in range(args.seeds)]
            for label in runs[0]:
                rs = [r[label] for r in runs]
                print(f"{name:<28} {label:<10} Delta_m {summary([r['delta'] for r in rs])}")
                cls.append(
                    f"| {name} | {label} | {summary([r['delta'] for r in rs])} "
                    f"| {np.mean([r['tasks'].max() for r in rs]):+.1f} "
                    f"| {np.mean([r['auc'] for r in rs]):.4f} "
                    f"| {np.mean([r['seconds'] for r in rs]):.1f} | {rs[0]['relatedness']} |"
                )
        body += "\n## Classification (BayesAggMTLClassifier)\n\n" + "\n".join(cls) + "\n"
    minutes = (time.perf_counter() - start_all) / 60
    header = (
        "# Negative transfer: multi-task vs the network's own single-task fits\n\n"
        f"Measured {date.today().isoformat()} on {platform.machine()}, one torch thread, "
        f"{args.seeds} seed(s), in {minutes:.0f} minutes, sk_mtbnn from "
        f"`{Path(sk_mtbnn.__file__).parent}`, by `python benchmarks/negative_transfer.py "
        f"--seeds {args.seeds}`. Delta_m% < 0: the multi-task fit is better on average; "
        "'worst task' is the largest per-task relative change (%).\n\n"
    )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(header + body)
    print(header + body)


if __name__ == "__main__":
    main()
