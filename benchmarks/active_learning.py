"""Active-learning curves: cluster-EGL against the obvious alternatives, with modAL.

Problems:

* borehole (8 inputs, two fidelities as tasks): the cheap low fidelity is
  labelled on the whole pool of 600 points from the start; each query buys
  the expensive high fidelity of the chosen points (10 per round, from 10 to
  100 labels). Test: 2,000 fresh points, high fidelity.
* energy efficiency (real, 768 buildings, 2 tasks): 75% of the rows form the
  pool, 25% the test set; each query labels both tasks of 10 buildings.

Strategies, each driving a ``modAL.models.ActiveLearner``:
cluster-EGL, random, multi-task max-std, GSx and iGS on
:class:`~sk_mtbnn.SparseMultiTaskBNNRegressor` (default settings), and modAL's
own ``max_std_sampling`` on a ``GaussianProcessRegressor`` (constant x RBF +
white noise, one GP per task on that task's labels -- for borehole the GP sees
the high fidelity only). Test RMSE and NLL of the high fidelity (borehole) or
of both tasks (energy) in units of the test standard deviation, mean +- std
over the seeds.

Also times cluster-EGL scoring of a 1,000,000-row pool (``--pool-timing``).

Run ``python benchmarks/active_learning.py [--seeds 5]``; writes
``benchmarks/results/active_learning.md`` and ``docs/_static/active_learning_curves.png``.
"""

from __future__ import annotations

import argparse
import platform
import resource
import time
import warnings
from datetime import date
from pathlib import Path

import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split

from sk_mtbnn import SparseMultiTaskBNNRegressor
from sk_mtbnn.active_learning import (
    ClusterEGLSampling,
    gsx_sampling,
    igs_sampling,
    max_std_sampling,
    random_sampling,
)
from sk_mtbnn.datasets import borehole, load_enb
from sk_mtbnn.datasets._synthetic import BOREHOLE_BOUNDS
from sk_mtbnn.metrics import gaussian_nll

ROOT = Path(__file__).resolve().parent
START, STEP = 10, 10
END = 100


class PerTaskGP:
    """One GaussianProcessRegressor per task on its labelled rows (modAL-compatible)."""

    def fit(self, X, y):
        from sklearn.gaussian_process import GaussianProcessRegressor
        from sklearn.gaussian_process.kernels import RBF, WhiteKernel
        from sklearn.gaussian_process.kernels import ConstantKernel as C
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        y = np.asarray(y, dtype=float).reshape(len(X), -1)
        self.models_ = []
        for t in range(y.shape[1]):
            rows = ~np.isnan(y[:, t])
            gp = make_pipeline(
                StandardScaler(),
                GaussianProcessRegressor(
                    C(1.0) * RBF(1.0) + WhiteKernel(1e-2),
                    normalize_y=True,
                    n_restarts_optimizer=2,
                    random_state=0,
                ),
            )
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                self.models_.append(gp.fit(X[rows], y[rows, t]))
        return self

    def predict(self, X, return_std=False):
        out = [m.predict(X, return_std=True) for m in self.models_]
        mean = np.column_stack([a for a, _ in out])
        std = np.column_stack([b for _, b in out])
        if self.task is not None:
            mean, std = mean[:, self.task], std[:, self.task]
        return (mean, std) if return_std else mean

    task = None


def modal_gp_max_std(learner, X_pool, n_instances=1):
    """modAL's max_std_sampling for one task; for several (which it cannot do),
    the same rule on the sum of the tasks' standard deviations relative to their
    training spread."""
    from modAL.disagreement import max_std_sampling as modal_max_std

    gp = learner.estimator
    if gp.task is not None:
        return modal_max_std(learner, X_pool, n_instances=n_instances)
    _, std = gp.predict(X_pool, return_std=True)
    spread = np.nanstd(np.asarray(learner.y_training, dtype=float), axis=0)
    return np.argsort(-(std / spread).sum(1))[:n_instances]


def borehole_problem(seed):
    rng = np.random.RandomState(seed)
    lo, hi = BOREHOLE_BOUNDS[:, 0], BOREHOLE_BOUNDS[:, 1]
    X = lo + rng.uniform(size=(2600, 8)) * (hi - lo)
    y = np.column_stack([borehole(X, "high"), borehole(X, "low")])
    pool_X, pool_y, test_X, test_y = X[:600], y[:600], X[600:], y[600:]
    # Low fidelity known on the whole pool; the high fidelity is what we buy.
    background = (pool_X, np.column_stack([np.full(600, np.nan), pool_y[:, 1]]))
    return {
        "pool_X": pool_X,
        "pool_y": pool_y,
        "test_X": test_X,
        "test_y": test_y[:, :1],
        "background": background,
        "task": 0,
    }


def enb_problem(seed):
    X, y = load_enb(return_X_y=True)
    pool_X, test_X, pool_y, test_y = train_test_split(X, y, test_size=0.25, random_state=seed)
    return {
        "pool_X": pool_X,
        "pool_y": pool_y,
        "test_X": test_X,
        "test_y": test_y,
        "background": None,
        "task": None,
    }


def strategies(task):
    return {
        "cluster-EGL": (ClusterEGLSampling(task=task, random_state=0), "nn"),
        "random": (
            lambda lr, X, n_instances=1: random_sampling(
                lr, X, n_instances, random_state=len(lr.X_training)
            ),
            "nn",
        ),
        "max-std (multi-task)": (
            lambda lr, X, n_instances=1: max_std_sampling(lr, X, n_instances, task=task),
            "nn",
        ),
        "GSx": (lambda lr, X, n_instances=1: gsx_sampling(lr, X, n_instances, task=task), "nn"),
        "iGS": (lambda lr, X, n_instances=1: igs_sampling(lr, X, n_instances, task=task), "nn"),
        "GP + modAL max_std_sampling": (modal_gp_max_std, "gp"),
    }


def curve(problem, strategy, kind, seed):
    from modAL.models import ActiveLearner

    pool_X, pool_y = problem["pool_X"], problem["pool_y"]
    rng = np.random.RandomState(seed)
    start = rng.choice(len(pool_X), START, replace=False)
    remaining = np.setdiff1d(np.arange(len(pool_X)), start)
    task = problem["task"]
    X_train, y_train = pool_X[start], pool_y[start]
    if problem["background"] is not None and kind == "nn":
        X_train = np.vstack([problem["background"][0], X_train])
        y_train = np.vstack([problem["background"][1], y_train])
    if kind == "gp":
        estimator = PerTaskGP()
        estimator.task = task
        if task is not None:  # the GP learns the queried task only
            y_train = y_train[:, task]
    else:
        estimator = SparseMultiTaskBNNRegressor(random_state=seed)
    learner = ActiveLearner(
        estimator,
        query_strategy=strategy,
        X_training=X_train,
        y_training=y_train,
        force_all_finite=False,
    )
    points = []
    n_labels = START
    while True:
        mean, std = estimator.predict(problem["test_X"], return_std=True)
        mean = np.asarray(mean).reshape(len(mean), -1)
        std = np.asarray(std).reshape(len(std), -1)
        if task is not None and mean.shape[1] > 1:
            mean, std = mean[:, [task]], std[:, [task]]
        scale = problem["test_y"].std(0)
        rmse = float(np.mean(np.sqrt(np.mean((problem["test_y"] - mean) ** 2, 0)) / scale))
        nll = gaussian_nll(problem["test_y"] / scale, mean / scale, std / scale)
        points.append((n_labels, rmse, nll))
        if n_labels >= END:
            return points
        idx = learner.query(pool_X[remaining], n_instances=STEP)[0]
        chosen = remaining[idx]
        y_new = pool_y[chosen] if (kind == "nn" or task is None) else pool_y[chosen, task]
        learner.teach(pool_X[chosen], y_new)
        remaining = np.setdiff1d(remaining, chosen)
        n_labels += STEP


def labels_to_reach(points, target):
    for n, rmse, _ in points:
        if rmse <= target:
            return n
    return None


def pool_timing(n_rows=1_000_000):
    from sk_mtbnn.datasets import make_multitask_regression

    X, y = make_multitask_regression(600, n_features=8, n_tasks=3, random_state=0)
    reg = SparseMultiTaskBNNRegressor(random_state=0).fit(X[:500], y[:500])
    pool = np.random.RandomState(1).uniform(size=(n_rows, 8))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    start = time.perf_counter()
    idx = ClusterEGLSampling()(reg, pool, n_instances=10, X_labelled=X[:500])
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return seconds, after - before, len(set(idx.tolist()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--pool-timing", action="store_true", help="time a 1,000,000-row pool")
    parser.add_argument("--max-labels", type=int, default=100)
    parser.add_argument(
        "--problem",
        choices=["borehole", "enb", "both"],
        default="both",
        help="run one problem (then --combine merges the saved runs)",
    )
    parser.add_argument(
        "--combine", action="store_true", help="only write the table and figure from saved runs"
    )
    args = parser.parse_args()
    global END
    END = args.max_labels
    torch.set_num_threads(1)
    import json

    problems = {
        "borehole": ("borehole (multi-fidelity)", borehole_problem),
        "enb": ("energy efficiency", enb_problem),
    }
    chosen = list(problems) if args.problem == "both" else [args.problem]
    for key in [] if args.combine else chosen:
        name, make = problems[key]
        runs = {}
        for seed in range(args.seeds):
            problem = make(seed)
            for label, (strategy, kind) in strategies(problem["task"]).items():
                pts = curve(problem, strategy, kind, seed)
                runs.setdefault(label, []).append(pts)
                print(name, label, seed, [(n, round(r, 3)) for n, r, _ in pts[::3]], flush=True)
        (ROOT / "results" / f"al_runs_{key}.json").write_text(json.dumps(runs))
    if args.problem != "both" and not args.combine:
        return
    results = {
        problems[key][0]: json.loads((ROOT / "results" / f"al_runs_{key}.json").read_text())
        for key in problems
        if (ROOT / "results" / f"al_runs_{key}.json").exists()
    }
    lines = [
        f"# Active learning curves\n\nMeasured {date.today().isoformat()} on "
        f"{platform.machine()}, one torch thread, {args.seeds} seeds, by "
        f"`python benchmarks/active_learning.py --seeds {args.seeds}`. RMSE and NLL in units "
        "of the test standard deviation.\n"
    ]
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, len(results), figsize=(11, 7), squeeze=False)
    for col, (name, by_strategy) in enumerate(results.items()):
        header = " | ".join(f"RMSE @ {k}" for k in (START, min(50, END), END))
        lines.append(
            f"\n## {name}\n\n| strategy | {header} | NLL @ {END} "
            f"| labels to reach random's RMSE @ {END} |\n| --- |" + " ---: |" * 5
        )
        random_final = np.mean([pts[-1][1] for pts in by_strategy["random"]])
        for label, runs in by_strategy.items():
            arr = np.array(runs)  # (seeds, points, 3)
            n = arr[0, :, 0]
            rmse, nll = arr[:, :, 1], arr[:, :, 2]
            reach = [labels_to_reach(pts, random_final) for pts in runs]
            hits = [r for r in reach if r is not None]
            reach_txt = (
                f"{np.mean(hits):.0f} ({len(hits)}/{len(reach)} runs)" if hits else "not reached"
            )
            cols = [list(n).index(k) for k in (START, min(50, END), END)]
            cells = [f"{rmse[:, c].mean():.3f} +- {rmse[:, c].std():.3f}" for c in cols]
            lines.append(
                f"| {label} | "
                + " | ".join(cells)
                + f" | {nll[:, -1].mean():.3f} +- {nll[:, -1].std():.3f} | {reach_txt} |"
            )
            for row, values in ((0, rmse), (1, nll)):
                ax = axes[row, col]
                ax.plot(n, values.mean(0), "o-", ms=3, label=label)
                ax.fill_between(
                    n, values.mean(0) - values.std(0), values.mean(0) + values.std(0), alpha=0.15
                )
        axes[0, col].set_title(name)
        axes[0, col].set_ylabel("test RMSE / std")
        axes[1, col].set_ylabel("test NLL (standardised)")
        axes[1, col].set_xlabel("labels")
        axes[0, col].set_yscale("log")
    axes[0, 0].legend(fontsize=7)
    fig.tight_layout()
    figure = ROOT.parent / "docs" / "_static" / "active_learning_curves.png"
    figure.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(figure, dpi=110)
    if args.pool_timing:
        seconds, mb, distinct = pool_timing()
        lines.append(
            f"\n## Pool of 1,000,000 rows\n\nClusterEGLSampling on a 1,000,000 x 8 pool (3 tasks, "
            f"10 instances): {seconds:.1f} s, peak resident memory +{mb:.0f} MB, "
            f"{distinct} distinct rows.\n"
        )
    out = ROOT / "results" / "active_learning.md"
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
