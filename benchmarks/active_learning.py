"""Active-learning curves: cluster-EGL against random sampling and peer strategies.

Problems (pool / test rows, labelled rows at the start, per query, queries):

* ``borehole``: the borehole function with its 8 inputs in their physical
  units and ranges (``sk_mtbnn.datasets.borehole``); two fidelities as tasks,
  the cheap low fidelity known on the whole pool from the start, each query
  buying the expensive high fidelity of a row (200 / 2000; 10 + 5 x 10);
* ``forrester`` (1-D) and ``currin`` (2-D): the same two-fidelity set-up
  (100 / 1000; 3 + 5 x 2 and 150 / 2000; 5 + 5 x 5);
* ``lmc5``: ``make_multitask_regression`` with 6 inputs, 5 related tasks,
  noise 0.1 and 50% of the labels missing for good: a query reveals the
  labels a row has (500 / 2000 noise-free; 10 + 5 x 10 rows);
* ``enb``: energy efficiency (2 tasks, inputs in their units), 75% of the
  rows as the pool, 25% as the test set (10 + 5 x 10 rows).

Strategies choose pool rows; every one except the GP is scored by refitting
the same model on its labelled rows after each query. ``--model default``
(the default) refits ``SparseMultiTaskBNNRegressor(random_state=seed)``, what
a user gets: on these <= 1,000 labelled rows ``regime="auto"`` fits the way a
GP is fitted and ``n_estimators="auto"`` makes it an ensemble of 5 members;
``--model network`` refits the fixed mini-batch network of ``MODELS``:

* sk_mtbnn: ``ClusterEGLSampling`` with default options (``task=0`` on the
  multi-fidelity problems), driven through a ``modAL.models.ActiveLearner``;
  ``random_sampling``; (multi-task ``max_std_sampling`` only when asked for
  with ``--strategies``, for time);
* scikit-activeml 1.0: GSx, GSy, iGS (its GSi), expected model change (EMC),
  query by committee (QBC; ten posterior draws of a GP); its CoreSet is GSx on
  the same inputs (the same farthest-first rule) and is not run twice;
* bmdal-reg 3.0 (Holzmueller et al., JMLR 2023) with its own NN: LCMD-TP,
  BAIT-F-P, MaxDet-P (``benchmarks/_al_peers.py`` for the adaptations);
* a GP per task (``GaussianProcessRegressor``, ARD RBF + white noise) with
  max-std sampling, scored as its own model (on the multi-fidelity problems
  it sees the high fidelity only).

Test RMSE in units of the test standard deviation, averaged over the scored
tasks (the high fidelity of a multi-fidelity problem), against the number of
labelled rows (high-fidelity labels for the multi-fidelity problems).

``python benchmarks/active_learning.py [--model default|network] [--seeds 10] [--quick]
[--problems ...] [--strategies ...] [--commit SHA]`` (``--quick``: 2 seeds, forrester and
enb). ``--model network`` writes ``benchmarks/results/al_runs.json``,
``benchmarks/results/active_learning.md`` and ``docs/_static/active_learning_curves.png``;
``--model default`` writes ``benchmarks/results/al_runs_default.json``,
``benchmarks/results/active_learning_default.md`` and
``benchmarks/results/active_learning_curves_default.png``. A run replaces the
problems it runs in the saved runs and keeps the others (each problem is saved
after every seed, with its command, commit, date and machine load), so one
problem at a time can be added; ``--combine`` only rewrites the report from the
saved runs; ``--tag TAG`` saves the runs, report and figure under names ending in
``_TAG`` (say, cluster-EGL and random with more seeds, beside the comparison of every
strategy); ``--pool-timing`` times ``cluster_egl_sampling`` on a 1,000,000-row
pool. The full network run (``--pool-timing``, 10 seeds) takes about 41 minutes
of one core: 2,550 refits of 0.8 s each; a default-model refit takes 3-6 s. Run
it against a clean export, ``PYTHONPATH=<export> python
benchmarks/active_learning.py --commit <sha>``, with ``scikit-activeml`` and
``bmdal-reg`` installed (bmdal-reg's strategies are skipped without it).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from _al_peers import (
    BMDAL_CONFIGS,
    PerTaskGP,
    Round,
    bmdal_available,
    pick_bmdal,
    pick_gp_max_std,
    pick_skal,
)
from _al_report import verdicts, write_report
from sklearn.model_selection import train_test_split
from sklearn.utils import Bunch

from sk_mtbnn import SparseMultiTaskBNNRegressor
from sk_mtbnn.active_learning import (
    ClusterEGLSampling,
    cluster_egl_sampling,
    max_std_sampling,
    random_sampling,
)
from sk_mtbnn.datasets import borehole as borehole_fn
from sk_mtbnn.datasets import currin, forrester, load_enb, make_multitask_regression
from sk_mtbnn.datasets._synthetic import BOREHOLE_BOUNDS

#: Settings of the evaluated model, SparseMultiTaskBNNRegressor(**MODELS[name], random_state=seed)
#: for ``--model name``. "network": a fixed mini-batch network, a refit under a second of CPU
#: on these 10-200 rows (the full run ~40 min); "default": the estimator's defaults.
MODELS = {
    "network": dict(hidden_layer_sizes=(64, 64), max_epochs=200, n_iter_no_change=10),
    "default": {},
}
#: The model of this run (set by ``main`` from ``--model``).
MODEL = dict(MODELS["default"])
#: Saved runs, report and figure of each ``--model`` (the network files keep their names).
OUTPUTS = {
    "network": Bunch(
        runs="al_runs.json",
        report="active_learning.md",
        figure="docs/_static/active_learning_curves.png",
    ),
    "default": Bunch(
        runs="al_runs_default.json",
        report="active_learning_default.md",
        figure="benchmarks/results/active_learning_curves_default.png",
    ),
}

ROOT = Path(__file__).resolve().parent
OURS = ("cluster-EGL", "max-std (sk_mtbnn)", "cluster-EGL (paper's clusters)")
QUICK_PROBLEMS = ("forrester", "enb")


# ------------------------------------------------------------------ problems
def _multifidelity(fn, bounds, n_pool, n_test, seed):
    rng = np.random.RandomState(seed)
    lo, hi = bounds[:, 0], bounds[:, 1]
    X = lo + rng.uniform(size=(n_pool + n_test, len(bounds))) * (hi - lo)
    Y = np.column_stack([fn(X, "high"), fn(X, "low")])
    return dict(
        X_pool=X[:n_pool],
        Y_pool=Y[:n_pool],
        X_test=X[n_pool:],
        Y_test=Y[n_pool:, :1],
        tasks=[0],
        background=True,
    )


def make_problem(key, seed):
    if key == "borehole":
        return _multifidelity(borehole_fn, BOREHOLE_BOUNDS, 200, 2000, seed)
    if key == "forrester":
        return _multifidelity(forrester, np.array([[0.0, 1.0]]), 100, 1000, seed)
    if key == "currin":
        return _multifidelity(currin, np.array([[0.0, 1.0], [0.0, 1.0]]), 150, 2000, seed)
    if key == "lmc5":
        X, Y, f = make_multitask_regression(
            2500,
            n_features=6,
            n_tasks=5,
            noise=0.1,
            missing_fraction=0.5,
            random_state=seed,
            return_function=True,
        )
        return dict(
            X_pool=X[:500], Y_pool=Y[:500], X_test=X[500:], Y_test=f(X[500:]), tasks=list(range(5))
        )
    X, Y = load_enb(return_X_y=True)
    X_pool, X_test, Y_pool, Y_test = train_test_split(X, Y, test_size=0.25, random_state=seed)
    return dict(X_pool=X_pool, Y_pool=Y_pool, X_test=X_test, Y_test=Y_test, tasks=[0, 1])


#: label, labelled rows at the start, rows per query, number of queries
PROBLEMS = {
    "borehole": ("borehole (raw units, 2 fidelities)", 10, 10, 5),
    "forrester": ("Forrester (2 fidelities)", 3, 2, 5),
    "currin": ("Currin (2 fidelities)", 5, 5, 5),
    "lmc5": ("LMC, 5 tasks, 50% missing", 10, 10, 5),
    "enb": ("energy efficiency (2 tasks)", 10, 10, 5),
}


def training_set(problem, queried):
    """Multi-fidelity: every pool row with its low fidelity, the high one where bought."""
    if problem.get("background"):
        Y = problem["Y_pool"].copy()
        Y[~queried, 0] = np.nan
        return problem["X_pool"], Y
    return problem["X_pool"][queried], problem["Y_pool"][queried]


def test_rmse(model, problem) -> float:
    pred = np.asarray(model.predict(problem["X_test"])).reshape(len(problem["X_test"]), -1)
    pred, Y = pred[:, problem["tasks"]], problem["Y_test"]
    return float(np.mean(np.sqrt(np.mean((Y - pred) ** 2, 0)) / Y.std(0)))


def fit_model(problem, queried, seed):
    X, Y = training_set(problem, queried)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return SparseMultiTaskBNNRegressor(**MODEL, random_state=seed).fit(X, Y)


# ---------------------------------------------------------------- strategies
def _our_task(ctx):
    return 0 if ctx.tasks == [0] and ctx.Y_pool.shape[1] > 1 else None


def pick_cluster_egl(ctx, cand, n, **options):
    """Through a modAL ActiveLearner whose estimator is the round's fitted model."""
    from modAL.models import ActiveLearner

    strategy = ClusterEGLSampling(task=_our_task(ctx), **options)
    learner = ActiveLearner(ctx.model, query_strategy=strategy)
    learner.X_training, learner.y_training = ctx.training
    return learner.query(ctx.X_pool[cand], n_instances=n)[0]


def pick_max_std(ctx, cand, n):
    X_lab, Y_lab = ctx.training
    rows = ~np.isnan(Y_lab[:, ctx.tasks]).any(1)
    return max_std_sampling(
        ctx.model, ctx.X_pool[cand], n, task=_our_task(ctx), X_labelled=X_lab[rows]
    )


def pick_random(ctx, cand, n):
    return random_sampling(
        None, ctx.X_pool[cand], n, random_state=ctx.seed * 1000 + ctx.queried.sum()
    )


def strategies():
    out = {"cluster-EGL": pick_cluster_egl, "random": pick_random}
    for name in ("GSx", "GSy", "iGS", "EMC", "QBC"):
        out[f"skactiveml {name}"] = lambda ctx, cand, n, name=name: pick_skal(name, ctx, cand, n)
    if bmdal_available():
        for name in BMDAL_CONFIGS:
            out[f"bmdal {name}"] = lambda ctx, cand, n, name=name: pick_bmdal(name, ctx, cand, n)
    out["GP + max-std"] = "gp"
    out["max-std (sk_mtbnn)"] = pick_max_std  # not run by default (time): --strategies
    out["cluster-EGL (paper's clusters)"] = lambda ctx, cand, n: pick_cluster_egl(
        ctx, cand, n, clusters="uncertain"
    )
    return out


def make_ctx(problem, Z_pool, queried, model, seed):
    training = training_set(problem, queried)
    return Round(
        problem["X_pool"],
        Z_pool,
        problem["Y_pool"],
        queried,
        problem["tasks"],
        model,
        seed,
        training,
    )


def run_curve(problem, pick, key, seed, start_model, start_rmse, init, clock):
    _, _, step, rounds = PROBLEMS[key]
    Z_pool = (problem["X_pool"] - problem["X_pool"].mean(0)) / problem["X_pool"].std(0)
    queried = init.copy()
    is_gp = pick == "gp"
    spread = np.nanstd(problem["Y_pool"][:, problem["tasks"]], 0)
    model = PerTaskGP(seed).fit(*_gp_data(problem, queried)) if is_gp else start_model
    points = [(int(queried.sum()), test_rmse(model, problem) if is_gp else start_rmse)]
    for _ in range(rounds):
        cand = np.flatnonzero(~queried)
        t0 = time.process_time()
        ctx = make_ctx(problem, Z_pool, queried, model, seed)
        pos = pick_gp_max_std(ctx, cand, step, model, spread) if is_gp else pick(ctx, cand, step)
        clock["pick"] += time.process_time() - t0
        assert len(set(np.asarray(pos).tolist())) == step, "a strategy returned duplicates"
        queried = queried.copy()
        queried[cand[pos]] = True
        t0 = time.process_time()
        if is_gp:  # the GP's fit counts as choosing rows: it is the strategy's own model
            model = PerTaskGP(seed).fit(*_gp_data(problem, queried))
            clock["pick"] += time.process_time() - t0
        else:
            model = fit_model(problem, queried, seed)
            clock["fit"] += time.process_time() - t0
            clock["fits"] += 1
        points.append((int(queried.sum()), test_rmse(model, problem)))
    return points


def _gp_data(problem, queried):
    return problem["X_pool"][queried], problem["Y_pool"][queried][:, problem["tasks"]]


def run_problem(key, seeds, names, log, save=None, first_seed=0):
    runs = {name: [] for name in names}
    clock = {"fit": 0.0, "pick": 0.0, "fits": 0}
    by_strategy = {name: {"fit": 0.0, "pick": 0.0} for name in names}
    all_strategies = strategies()
    start = PROBLEMS[key][1]
    for seed in range(first_seed, first_seed + seeds):
        problem = make_problem(key, seed)
        init = np.zeros(len(problem["X_pool"]), dtype=bool)
        init[np.random.RandomState(seed).choice(len(init), start, replace=False)] = True
        t0 = time.process_time()
        start_model = fit_model(problem, init, seed)
        clock["fit"] += time.process_time() - t0
        clock["fits"] += 1
        start_rmse = test_rmse(start_model, problem)
        for name in names:
            own = {"fit": 0.0, "pick": 0.0, "fits": 0}
            pts = run_curve(
                problem, all_strategies[name], key, seed, start_model, start_rmse, init, own
            )
            runs[name].append(pts)
            for part in ("fit", "pick", "fits"):
                clock[part] += own[part]
                if part != "fits":
                    by_strategy[name][part] += own[part]
            log(f"{key} seed {seed} {name}: " + " ".join(f"{n}:{r:.3f}" for n, r in pts))
        if save is not None:  # keep the finished seeds if the run is stopped
            done = seed + 1 - first_seed
            save({"runs": runs, "clock": clock, "by_strategy": by_strategy, "seeds": done})
    return {"runs": runs, "clock": clock, "by_strategy": by_strategy, "seeds": seeds}


def pool_timing(n_rows=1_000_000):
    X, y = make_multitask_regression(600, n_features=8, n_tasks=3, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reg = SparseMultiTaskBNNRegressor(**MODEL, random_state=0).fit(X[:500], y[:500])
    pool = np.random.RandomState(1).uniform(size=(n_rows, 8))
    wall, cpu = time.perf_counter(), time.process_time()
    idx = cluster_egl_sampling(reg, pool, n_instances=10, X_labelled=X[:500])
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    what = (
        f"`cluster_egl_sampling` choosing 10 rows ({len(set(idx.tolist()))} distinct) of a "
        "1,000,000 x 8 pool, 3 tasks, model fitted on 500 rows with `MODEL`"
        f" ({MODEL})"
    )
    return {"wall": wall, "cpu": cpu, "what": what, "load": os.getloadavg()[0]}


def model_text(name) -> str:
    settings = ", ".join(f"{k}={v!r}" for k, v in MODELS[name].items())
    return f"SparseMultiTaskBNNRegressor({settings + ', ' if settings else ''}random_state=seed)"


def run_record(args) -> dict:
    """Who ran what: command, commit of the export, date, machine load (1, 5, 15 min)."""
    return {
        "command": "python benchmarks/active_learning.py " + shlex.join(sys.argv[1:]),
        "commit": args.commit,
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "load_start": list(os.getloadavg()),
    }


def keep_other_strategies(res, earlier) -> None:
    """Add to ``res`` the strategies of the saved ``earlier`` runs that ``res`` lacks.

    Their first ``res["seeds"]`` seeds are kept (every strategy of a seed starts from the
    same rows and model, so they pair with the new runs seed by seed); the run record
    names them with the commit, date and command they were measured with.
    """
    kept = [name for name in earlier["runs"] if name not in res["runs"]]
    if not kept:
        return
    if earlier["seeds"] < res["seeds"]:
        raise ValueError(
            f"--keep-others: the saved runs have {earlier['seeds']} seeds, fewer than the "
            f"{res['seeds']} of this run; run every strategy, or fewer seeds."
        )
    for name in kept:
        res["runs"][name] = earlier["runs"][name][: res["seeds"]]
        res["by_strategy"][name] = earlier["by_strategy"][name]
    old = earlier.get("run", {})
    res["run"]["kept"] = {
        "strategies": kept,
        **{k: old.get(k) for k in ("commit", "date", "command", "wall")},
    }
    if "kept" in old:  # kept runs kept again: name where they came from
        res["run"]["kept"]["from"] = old["kept"]


def tagged(name: str, tag: str) -> str:
    """``name`` with ``_tag`` before its suffix: ``al_runs.json`` -> ``al_runs_tag.json``."""
    path = Path(name)
    return str(path.with_name(f"{path.stem}_{tag}{path.suffix}"))


#: Tags of the saved runs with more seeds that the report of every strategy shows too.
MORE_SEEDS = {"seeds10": "cluster-EGL and random with 10 seeds"}


def more_seeds_runs(out):
    """``(title, results)`` of each saved ``--tag`` run of ``MORE_SEEDS`` that exists."""
    found = []
    for tag, title in MORE_SEEDS.items():
        store = ROOT / "results" / tagged(out.runs, tag)
        if store.exists():
            saved = json.loads(store.read_text())
            found.append((title, {k: saved[k] for k in PROBLEMS if k in saved}))
    return found


def other_model(name):
    """The network model's saved runs, to compare the default model's with."""
    store = ROOT / "results" / OUTPUTS["network"].runs
    if name == "network" or not store.exists():
        return None
    saved = json.loads(store.read_text())
    return f"the network model `{model_text('network')}`", saved


def main() -> None:
    global MODEL
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=list(MODELS), default="default")
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument(
        "--first-seed",
        type=int,
        default=0,
        help="run seeds first..first+seeds-1 (to run seeds in parallel processes; merge the "
        "saved runs by hand)",
    )
    parser.add_argument("--quick", action="store_true", help="2 seeds, 2 problems")
    parser.add_argument("--problems", nargs="+", choices=list(PROBLEMS), default=list(PROBLEMS))
    parser.add_argument("--strategies", nargs="+", help="a subset of the strategies (by name)")
    parser.add_argument("--combine", action="store_true", help="only report the saved runs")
    parser.add_argument(
        "--keep-others",
        action="store_true",
        help="keep the saved runs of the strategies not re-run (their first --seeds seeds)",
    )
    parser.add_argument("--pool-timing", action="store_true", help="time a 1,000,000-row pool")
    parser.add_argument("--commit", help="the commit the PYTHONPATH export was made from")
    parser.add_argument(
        "--tag",
        help="save the runs, report and figure under names ending in _TAG (a run of a few "
        "strategies with more seeds, beside the saved comparison of every strategy)",
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    MODEL = dict(MODELS[args.model])
    out = OUTPUTS[args.model]
    if args.tag:
        out = Bunch(**{k: tagged(v, args.tag) for k, v in out.items()})
    if args.quick:
        args.seeds, args.problems = 2, list(QUICK_PROBLEMS)
    store = ROOT / "results" / out.runs
    saved = json.loads(store.read_text()) if store.exists() else {}
    if args.quick:
        store = store.with_name(store.stem + "_quick.json")
        saved = {}
    known = strategies()
    names = args.strategies or [s for s in known if s not in OURS[1:]]
    unknown = sorted(set(names) - set(known))
    if unknown:
        parser.error(f"unknown strategies {unknown}; choose from {list(known)}")
    wall, cpu = time.perf_counter(), time.process_time()
    if not args.combine:
        for key in args.problems:
            record = run_record(args)
            started = time.perf_counter()

            earlier = saved.get(key) if args.keep_others else None

            def save(res, key=key, record=record, started=started, earlier=earlier):
                res["run"] = {
                    **record,
                    "wall": time.perf_counter() - started,
                    "load_end": list(os.getloadavg()),
                }
                if earlier is not None:
                    keep_other_strategies(res, earlier)
                saved[key] = res
                store.write_text(json.dumps(saved))

            log = lambda s: print(s, flush=True)  # noqa: E731
            save(run_problem(key, args.seeds, names, log, save, args.first_seed))
            print(f"-- {key} done after {time.perf_counter() - wall:.0f} s wall", flush=True)
    timing = pool_timing() if args.pool_timing else saved.get("_pool_timing")
    if not args.combine and args.model == "network":
        saved["_run"] = {"wall": time.perf_counter() - wall, "cpu": time.process_time() - cpu}
    if not args.quick:
        saved["_pool_timing"] = timing
        store.write_text(json.dumps(saved))
    results = {k: saved[k] for k in PROBLEMS if k in saved}
    seeds = min(r["seeds"] for r in results.values())
    if args.model == "network":  # the command of the saved 10-seed run
        command = "python benchmarks/active_learning.py --model network --pool-timing"
    else:
        command = "; ".join(dict.fromkeys(r["run"]["command"] for r in results.values()))
    if not args.quick:
        write_report(
            results,
            seeds,
            timing,
            command,
            saved.get("_run"),
            problems=PROBLEMS,
            model=model_text(args.model),
            ours_names=OURS,
            root=ROOT,
            report=ROOT / "results" / out.report,
            figure=ROOT.parent / out.figure,
            other=other_model(args.model),
            more=None if args.tag else more_seeds_runs(out),
        )
    else:
        for row in verdicts(results, PROBLEMS, OURS)[0]:
            print(row)
    print(f"wall time {time.perf_counter() - wall:.0f} s")


if __name__ == "__main__":
    main()
