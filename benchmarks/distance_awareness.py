"""Does the epistemic band widen in a gap of the data and away from it? (issue 10)

Problem: one task, ``x`` uniform on ``[-3, -1] U [1, 3]`` (200 rows),
``y = sin(2 x) + 0.1 eps``; ``x`` and ``y`` standardised on the training rows
as the estimators do. Each configuration trains a ``MultiTaskNetwork`` with a
Gaussian VBLL head (full batch Adam, cosine schedule, loss = expected NLL +
regulariser / N), then refines the head in closed form on the final
features (``head.condition_on(head.statistics(phi, y))``) and reports, over
seeds, in the units of ``y``:

* ``gap``: epistemic std at ``x = 0`` / median epistemic std at the training
  inputs (> 1: the band widens in the gap);
* ``band``: the same ratio for the predictive std (epistemic + noise), the
  width of the band a user sees;
* ``far``: epistemic std at ``|x| = 9`` / at ``|x| = 3`` (3x the data range);
* ``monotone``: seeds whose epistemic std never decreases on ``|x|`` in
  ``[3, 9]`` (both sides, grid step 0.05);
* ``stays``: smallest epistemic std on ``|x|`` in ``[6, 9]`` / median at the
  training inputs (an RBF-kernel head levels off at its prior instead of
  growing without bound, so ``monotone`` can fail by small wiggles while
  ``stays`` is large);
* ``share``: median over training inputs of epistemic std / predictive std;
* ``rmse``: training RMSE of the mean;
* ``s/fit``: wall-clock seconds per fit and evaluation (2 cores shared with
  other jobs: only a rough guide).

MC-dropout configurations use ``predict_mc`` (100 seeded passes) for every
number. Run ``python benchmarks/distance_awareness.py`` (a few minutes on
2 cores; ``--quick``: 2 seeds, fewer steps). Writes
``benchmarks/results/distance_awareness.md``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from sk_mtbnn.nn.network import MultiTaskNetwork

N_TRAIN = 200
MC_PASSES = 100
RESIDUAL = {"residual": True}
DEEP = (64, 64, 64)
SN = {**RESIDUAL, "spectral_norm": 0.95}
RFF = {"random_features": 256}
CONFIGS = {
    "plain MLP (64, 64)": {},
    "residual (64, 64, 64)": {"hidden": DEEP, "backbone": RESIDUAL},
    "residual + SN c=0.95": {"hidden": DEEP, "backbone": SN},
    "residual + SN c=3": {"hidden": DEEP, "backbone": {**RESIDUAL, "spectral_norm": 3.0}},
    "MC dropout p=0.1 (64, 64)": {"backbone": {"dropout": 0.1}},
    "MC dropout p=0.1 (64, 64, 64)": {"hidden": DEEP, "backbone": {"dropout": 0.1}},
    "plain + RFF 256, l=1": {"backbone": RFF},
    "residual + SN c=0.95 + RFF 256, l=1": {"hidden": DEEP, "backbone": {**SN, **RFF}},
    "residual + SN c=0.95 + RFF 256, l=0.5": {
        "hidden": DEEP,
        "backbone": {**SN, **RFF, "length_scale": 0.5},
    },
    "residual + SN c=0.95 + RFF 256, l=0.5 + MC dropout p=0.1": {
        "hidden": DEEP,
        "backbone": {**SN, **RFF, "length_scale": 0.5, "dropout": 0.1},
    },
}


def make_data(seed: int):
    rng = np.random.default_rng(seed)
    x = rng.uniform(1, 3, N_TRAIN) * rng.choice([-1.0, 1.0], N_TRAIN)
    y = np.sin(2 * x) + 0.1 * rng.standard_normal(N_TRAIN)
    return x, y


def train(config: dict, x: np.ndarray, y: np.ndarray, seed: int, steps: int):
    x_mean, x_std, y_mean, y_std = x.mean(), x.std(), y.mean(), y.std()
    xt = torch.as_tensor((x - x_mean) / x_std, dtype=torch.float32)[:, None]
    yt = torch.as_tensor((y - y_mean) / y_std, dtype=torch.float32)[:, None]
    torch.manual_seed(seed)
    net = MultiTaskNetwork(
        1,
        1,
        hidden_layer_sizes=config.get("hidden", (64, 64)),
        backbone_kwargs=config.get("backbone"),
        head_kwargs={"noise_std": 0.3},
    )
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    for _ in range(steps):
        loss = net.head.expected_nll(net(xt), yt).mean() + net.head.regularizer().sum() / N_TRAIN
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    net.eval()
    with torch.no_grad():
        net.head.condition_on(net.head.statistics(net(xt), yt))

    def predict(x_new: np.ndarray):
        x_new = torch.as_tensor((x_new - x_mean) / x_std, dtype=torch.float32)[:, None]
        with torch.no_grad():
            if config.get("backbone", {}).get("dropout"):
                gen = torch.Generator().manual_seed(seed)
                pred = net.predict_mc(x_new, MC_PASSES, gen)
            else:
                pred = net.predict(x_new)
        mean, epi, ale = (p[0].double().numpy() for p in pred)
        return mean * y_std + y_mean, np.sqrt(epi) * y_std, np.sqrt(epi + ale) * y_std

    return predict


def evaluate(predict, x: np.ndarray, y: np.ndarray) -> dict:
    mean, epi, total = predict(x)
    _, epi_gap, total_gap = predict(np.array([0.0]))
    side = np.arange(3.0, 9.0 + 1e-9, 0.05)
    _, epi_right, _ = predict(side)
    _, epi_left, _ = predict(-side)
    monotone = all(bool(np.all(np.diff(e) >= -1e-9 * e[:-1])) for e in (epi_right, epi_left))
    far = side >= 6.0
    return {
        "gap": float(epi_gap[0] / np.median(epi)),
        "band": float(total_gap[0] / np.median(total)),
        "stays": float(min(epi_right[far].min(), epi_left[far].min()) / np.median(epi)),
        "far": float(0.5 * (epi_right[-1] / epi_right[0] + epi_left[-1] / epi_left[0])),
        "monotone": monotone,
        "share": float(np.median(epi / total)),
        "rmse": float(np.sqrt(np.mean((mean - y) ** 2))),
    }


def _column_legend() -> list[str]:
    """The column bullets of the module docstring."""
    text = __doc__.split("in the units of ``y``:")[1].split("MC-dropout")[0]
    return [line.replace("``", "`") for line in text.strip().splitlines()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    seeds = range(2) if args.quick else range(5)
    steps = 800 if args.quick else 2000
    lines = [
        "# Distance awareness on a 1-D gap problem",
        "",
        f"`python benchmarks/distance_awareness.py{' --quick' if args.quick else ''}`: "
        f"{len(seeds)} seeds, {steps} full-batch Adam steps, {N_TRAIN} rows on "
        "[-3, -1] U [1, 3], closed-form head refinement. Medians over seeds "
        "(per-seed gap ratios in brackets).",
        "",
        *_column_legend(),
        "",
        "| configuration | gap (x=0) | band | far (x=±9 / ±3) | monotone | stays | share | rmse "
        "| s/fit |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, config in CONFIGS.items():
        rows, start = [], time.perf_counter()
        for seed in seeds:
            x, y = make_data(seed)
            rows.append(evaluate(train(config, x, y, seed, steps), x, y))
        elapsed = (time.perf_counter() - start) / len(rows)

        def med(key, rows=rows):
            return float(np.median([r[key] for r in rows]))

        per_seed = ", ".join(f"{r['gap']:.2f}" for r in rows)
        line = (
            f"| {name} | {med('gap'):.2f} ({per_seed}) | {med('band'):.2f} | {med('far'):.2f} | "
            f"{sum(r['monotone'] for r in rows)}/{len(rows)} | {med('stays'):.2f} | "
            f"{med('share'):.2f} | "
            f"{med('rmse'):.3f} | {elapsed:.1f} |"
        )
        print(line, flush=True)
        lines.append(line)
    out = Path(__file__).parent / "results" / "distance_awareness.md"
    out.write_text("\n".join(lines) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
