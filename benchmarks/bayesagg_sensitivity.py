"""How BayesAgg's classification results depend on its hyper-parameters.

Companion of ``bayesagg_mtl.py`` (same problems, same single-task baselines):
``BayesAggMTLClassifier`` over a grid of the precision exponent ``s``, the
prior variance ``gamma`` and the linear-scalarisation warm-up ``ls_epochs``,
next to linear scalarisation (``aggregator="mean"``). Delta_m% of the test AUC
against single-task fits, lower is better, mean +- std over the seeds and the
value of each seed.

Run ``python benchmarks/bayesagg_sensitivity.py [--seeds 3]``; writes
``benchmarks/results/bayesagg_sensitivity.md``.
"""

from __future__ import annotations

import argparse
import itertools
import platform
from datetime import date
from pathlib import Path

import numpy as np
import torch
from bayesagg_mtl import DATA, load_conflicting, load_emotions, stl_aucs, task_aucs

from sk_mtbnn import BayesAggMTLClassifier
from sk_mtbnn.metrics import delta_m

GRID = {"s": [0.01, 0.1, 0.5, 1.0], "gamma": [1.0, 0.05], "ls_epochs": [1, 5]}


def _defaults() -> dict:
    """The classifier's defaults of the parameters in :data:`GRID`."""
    params = BayesAggMTLClassifier().get_params()
    return {name: params[name] for name in GRID}


def configurations():
    yield "LS (mean)", {"aggregator": "mean"}
    for values in itertools.product(*GRID.values()):
        params = dict(zip(GRID, values))
        yield ", ".join(f"{k}={v}" for k, v in params.items()), params


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument(
        "--out", default=str(Path(__file__).parent / "results" / "bayesagg_sensitivity.md")
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    problems = {"conflicting (synthetic)": load_conflicting()}
    if DATA.exists():
        problems = {"emotions": load_emotions(), **problems}
    stl = {p: [stl_aucs(d, seed) for seed in range(args.seeds)] for p, d in problems.items()}
    lines = [
        "| BayesAgg setting | " + " | ".join(f"{p}: Delta_m% (per seed)" for p in problems) + " |",
        "| --- |" + " ---: |" * len(problems),
    ]
    for label, params in configurations():
        cells = []
        for problem, (X, y, X_test, y_test) in problems.items():
            deltas = []
            for seed in range(args.seeds):
                clf = BayesAggMTLClassifier(random_state=seed, **params).fit(X, y)
                aucs = task_aucs(clf, X_test, y_test)
                deltas.append(delta_m(aucs, stl[problem][seed], higher_is_better=True))
            per_seed = " ".join(f"{d:+.1f}" for d in deltas)
            cells.append(f"{np.mean(deltas):+.2f} +- {np.std(deltas):.2f} ({per_seed})")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
        print(lines[-1], flush=True)
    header = (
        "# Sensitivity of BayesAgg-MTL (classification)\n\n"
        f"Measured {date.today().isoformat()} on {platform.machine()}, one torch thread, "
        f"{args.seeds} seeds, by `python benchmarks/bayesagg_sensitivity.py "
        f"--seeds {args.seeds}`. Defaults of `BayesAggMTLClassifier`: "
        + ", ".join(f"{k}={v}" for k, v in _defaults().items())
        + " (other parameters at their defaults, e.g. `sharing`).\n\n"
    )
    out = Path(args.out)
    out.write_text(header + "\n".join(lines) + "\n")
    print(f"written to {out}")


if __name__ == "__main__":
    main()
