"""Scale-out on a 2-worker dask LocalCluster: a 10^7-row pool query, and GridSearchCV vs loky.

(a) Pool scoring. A :class:`~sk_mtbnn.SparseMultiTaskBNNRegressor`
(``hidden_layer_sizes=(32, 32)``, ``max_epochs=20``, 2 tasks, 4 features)
fitted on 2,000 rows ranks a pool of 10^7 rows, generated lazily with
``dask.array.random`` in blocks so that it never exists in one process, by
:func:`sk_mtbnn.distributed.query_pool_dask` (total predictive std summed over
tasks, top 100). Each worker samples its own resident memory (psutil, every
20 ms, in a thread started in the worker) from before the query to after it;
the peak, the baseline after loading the model, and the wall time are
reported. For scale, one process holding the pool would need 305 MB
(2^20 bytes) for the inputs alone.

(b) Search. ``GridSearchCV`` over 8 candidates (2 widths x 2 learning rates
x 2 weight decays, 3-fold CV, 1,500 rows) through joblib's ``"dask"``
backend on the same cluster and through ``"loky"`` with ``n_jobs=2``. Both
sets of workers are started and have imported sk_mtbnn before the clock
starts; the searches run in the order dask, loky, loky, dask, so that a
change in the machine's load during the run (it is shared) weighs on both
alike. Reports the wall times, the ratio of their sums, and whether the
searches agree (``best_params_`` and every ``cv_results_`` test score).

Workers: 2 processes x 1 thread, ``OMP_NUM_THREADS=1``. Run
``python benchmarks/scale_out.py`` (about 5 minutes on 2 cores) or with
``--quick`` (10^6 rows, 2 candidates: a smoke test). Writes
``benchmarks/results/scale_out.md``.
"""

from __future__ import annotations

import argparse
import os
import platform
import threading
import time
from datetime import date
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np

N_FEATURES = 4
N_TRAIN = 2_000
N_SEARCH = 1_500
BLOCK_ROWS = 500_000
N_QUERY = 100
MODEL = {"hidden_layer_sizes": (32, 32), "max_epochs": 20, "random_state": 0}


def make_data(n: int, seed: int):
    rng = np.random.RandomState(seed)
    X = rng.uniform(-2, 2, size=(n, N_FEATURES))
    y = np.column_stack([np.sin(2 * X[:, 0]) + X[:, 1], X[:, 2] * X[:, 3]])
    return X, y + 0.1 * rng.standard_normal(y.shape)


# ------------------------------------------------------------ worker memory
def start_sampling(dask_worker, interval: float = 0.02) -> float:
    """Start a thread in the worker that records its peak RSS; return the current RSS (MB)."""
    import psutil

    process = psutil.Process()
    state = {"peak": process.memory_info().rss, "stop": threading.Event()}

    def sample():
        while not state["stop"].wait(interval):
            state["peak"] = max(state["peak"], process.memory_info().rss)

    threading.Thread(target=sample, daemon=True).start()
    dask_worker._sk_mtbnn_memory = state
    return state["peak"] / 2**20


def stop_sampling(dask_worker) -> float:
    """Stop the sampling thread; return the peak RSS it saw (MB)."""
    state = dask_worker._sk_mtbnn_memory
    state["stop"].set()
    return state["peak"] / 2**20


def load_model(model) -> float:
    """Predict one row in the worker (torch's first call sets up); return its RSS (MB)."""
    import psutil

    model.predict(np.zeros((1, N_FEATURES)))
    return psutil.Process().memory_info().rss / 2**20


def import_package() -> None:
    import sk_mtbnn  # noqa: F401


# ------------------------------------------------------------------ parts
def pool_query(client, n_rows: int) -> dict:
    import dask.array as da

    from sk_mtbnn import SparseMultiTaskBNNRegressor
    from sk_mtbnn.distributed import query_pool_dask

    model = SparseMultiTaskBNNRegressor(**MODEL).fit(*make_data(N_TRAIN, 0))
    pool = da.random.default_rng(1).uniform(
        -3, 3, size=(n_rows, N_FEATURES), chunks=(BLOCK_ROWS, N_FEATURES)
    )
    loaded = client.run(load_model, model=model)
    start = client.run(start_sampling)
    t0 = time.perf_counter()
    idx = query_pool_dask(model, pool, N_QUERY)
    seconds = time.perf_counter() - t0
    peak = client.run(stop_sampling)
    return {
        "rows": n_rows,
        "blocks": pool.numblocks[0],
        "seconds": seconds,
        "loaded_mb": loaded,
        "start_mb": start,
        "peak_mb": peak,
        "first": idx[:5].tolist(),
    }


def grid_search(backend: str, n_candidates: int):
    import joblib
    from sklearn.model_selection import GridSearchCV, KFold

    from sk_mtbnn import SparseMultiTaskBNNRegressor

    grid = {
        "hidden_layer_sizes": [(32, 32), (16, 16)],
        "learning_rate": [3e-3, 1e-2],
        "weight_decay": [1e-4, 1e-2],
    }
    if n_candidates < 8:
        grid = {"hidden_layer_sizes": [(32, 32), (16, 16)]}
    search = GridSearchCV(
        SparseMultiTaskBNNRegressor(**MODEL), grid, cv=KFold(3, shuffle=True, random_state=0)
    )
    X, y = make_data(N_SEARCH, 2)
    with joblib.parallel_config(backend=backend, n_jobs=2):
        t0 = time.perf_counter()
        search.fit(X, y)
        return search, time.perf_counter() - t0


def searches(client, n_candidates: int) -> dict:
    import joblib

    client.run(import_package)
    with joblib.parallel_config(backend="loky", n_jobs=2):
        joblib.Parallel()(joblib.delayed(import_package)() for _ in range(2))  # start loky
    runs = {"dask": [], "loky": []}
    for backend in ("dask", "loky", "loky", "dask"):
        runs[backend].append(grid_search(backend, n_candidates))
    reference = runs["loky"][0][0]
    keys = [k for k in reference.cv_results_ if k.endswith("test_score")]
    same = all(
        search.best_params_ == reference.best_params_
        and all(np.array_equal(search.cv_results_[k], reference.cv_results_[k]) for k in keys)
        for search, _ in runs["dask"] + runs["loky"]
    )
    n_candidates = len(reference.cv_results_["params"])
    return {
        "candidates": n_candidates,
        "fits": 3 * n_candidates,
        "dask": [seconds for _, seconds in runs["dask"]],
        "loky": [seconds for _, seconds in runs["loky"]],
        "same": same,
        "best": reference.best_params_,
    }


# ----------------------------------------------------------------- report
def seconds(values: list[float]) -> str:
    return ", ".join(f"{v:.1f}" for v in values)


def report(pool: dict, search: dict, command: str, load: tuple) -> str:
    import dask
    import distributed
    import torch

    peaks = ", ".join(f"{p:,.0f}" for p in pool["peak_mb"].values())
    loaded = ", ".join(f"{p:,.0f}" for p in pool["loaded_mb"].values())
    worst = max(pool["peak_mb"].values())
    return "\n".join(
        [
            "# Scale-out on a 2-worker dask LocalCluster",
            "",
            f"Measured {date.today()} on {platform.machine()}, {os.cpu_count()} cores shared "
            f"with other jobs (load average {load[0]:.1f} before, {load[1]:.1f} after), "
            f"Python {platform.python_version()}, torch {torch.__version__}, dask "
            f"{dask.__version__}, distributed {distributed.__version__}, by `{command}`. "
            "Workers: 2 processes x 1 thread.",
            "",
            "## Pool query",
            "",
            "| pool rows | blocks | wall time (s) | rows / s | RSS with model loaded (MB) "
            "| peak RSS during the query (MB) |",
            "| ---: | ---: | ---: | ---: | --- | --- |",
            f"| {pool['rows']:,} | {pool['blocks']} | {pool['seconds']:.1f} | "
            f"{pool['rows'] / pool['seconds']:,.0f} | {loaded} | {peaks} |",
            "",
            f"- Peak resident memory per worker {worst:,.0f} MB (target <= 1,024 MB), "
            "interpreter and torch included; the pool's inputs alone would take "
            f"{pool['rows'] * N_FEATURES * 8 / 2**20:,.0f} MB in one process.",
            f"- Top rows found: {pool['first']} ...",
            "",
            "## GridSearchCV: dask backend vs loky",
            "",
            "| candidates | fits | dask, 1st and 4th run (s) | loky, 2nd and 3rd run (s) "
            "| dask / loky (sums) | same results |",
            "| ---: | ---: | ---: | ---: | ---: | --- |",
            f"| {search['candidates']} | {search['fits']} | {seconds(search['dask'])} | "
            f"{seconds(search['loky'])} | {sum(search['dask']) / sum(search['loky']):.2f} | "
            f"{'yes' if search['same'] else 'NO'} |",
            "",
            f"- Best parameters (every run): {search['best']}.",
            "",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10^6 rows and 2 candidates")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "scale_out.md"))
    args = parser.parse_args()
    from distributed import Client, LocalCluster

    n_rows, n_candidates = (10**6, 2) if args.quick else (10**7, 8)
    load_before = os.getloadavg()[0]
    with (
        LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
        ) as cluster,
        Client(cluster) as client,
    ):
        pool = pool_query(client, n_rows)
        print(pool)
        search = searches(client, n_candidates)
        print(search)
    command = "python benchmarks/scale_out.py" + (" --quick" if args.quick else "")
    text = report(pool, search, command, (load_before, os.getloadavg()[0]))
    Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
