"""scikit-learn's Gaussian-process gallery: GPs against sk_mtbnn at 6 to 40 points.

Problems, re-created from the scikit-learn examples (``examples/gaussian_process``):

* ``plot_gpr_noisy_targets``: 6 of 1,000 grid points on [0, 10] of x sin(x),
  noise std 0.75, known to the GP (``alpha=0.75**2``, kernel ``1 * RBF``,
  9 restarts);
* ``plot_gpr_prior_posterior``: 10 noise-free points of sin((x - 2.5)^2) on
  [0, 5], the RBF kernel of the example (``1.0 * RBF``, default ``alpha``);
* ``plot_gpr_noisy``: 20 points of 0.5 + sin(3x) on [0, 5], noise std 0.3,
  ``1.0 * RBF + WhiteKernel`` from the example's poor start, 10 restarts;
* ``plot_compare_gpr_krr``: 40 noisy points (std 0.5) of sin(x) drawn from
  the first 400 of 1,000 grid points on [0, 30], ``1.0 * ExpSineSquared +
  WhiteKernel``. Metrics are over the training range [0, 12]; the periodic
  kernel also extrapolates to [12, 30], reported as "full grid".

Metrics against the noise-free function on the example's grid: RMSE, the
share of the grid where the function lies inside the 95% band
``mean +- 1.96 std`` of ``predict(return_std=True)`` (the GP's std excludes
``alpha``, includes a WhiteKernel), and the training targets inside that band.

Models: the GP as configured in each example; ``SparseMultiTaskBNNRegressor()``
with default settings (one seed: a fit takes a minute); the small-data regime
of :mod:`sk_mtbnn._training.full_batch` called directly (random-feature
backbone of ``(128, 128)`` SiLU units, lengthscale, prior and noise by
evidence, the example's ``alpha`` passed on where it has one), one member
over 5 seeds and ensembles of 5 members (mixture moments) over 3 seed sets.
Add a model by adding an entry to :data:`MODELS`: a list of fit functions
(one per seed) ``fit(problem, X, y, alpha) -> predict``, ``predict(X) ->
(mean, std)``. Fit times are per model with one torch thread, after a warm-up
fit in the process.

A second table times the regime against per-task GPs beyond the gallery: 8
inputs, 2 related tasks (``make_multitask_regression``, noise std 0.1), 30%
of the labels missing, 100 to 1,000 rows, 2,000 test rows.

``python benchmarks/gp_gallery.py`` (about 6 minutes, mostly the default
estimator), ``--skip-default`` (about 2 minutes). Writes
``benchmarks/results/gp_gallery.md``.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import time
import warnings
from datetime import date
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import torch

torch.set_num_threads(1)


# --------------------------------------------------------------- problems
def noisy_targets():
    from sklearn.gaussian_process import GaussianProcessRegressor
    from sklearn.gaussian_process.kernels import RBF

    X = np.linspace(0, 10, 1000).reshape(-1, 1)
    f = np.squeeze(X * np.sin(X))
    rng = np.random.RandomState(1)
    idx = rng.choice(np.arange(f.size), size=6, replace=False)
    noise_std = 0.75
    y = f[idx] + rng.normal(0.0, noise_std, size=6)
    kernel = 1 * RBF(length_scale=1.0, length_scale_bounds=(1e-2, 1e2))
    gp = GaussianProcessRegressor(kernel=kernel, alpha=noise_std**2, n_restarts_optimizer=9)
    return dict(X=X, f=f, X_train=X[idx], y_train=y, gp=gp, alpha=noise_std**2)


def prior_posterior():
    from sklearn.gaussian_process import GaussianProcessRegressor
    from sklearn.gaussian_process.kernels import RBF

    rng = np.random.RandomState(4)
    X_train = rng.uniform(0, 5, 10).reshape(-1, 1)
    X = np.linspace(0, 5, 100).reshape(-1, 1)
    kernel = 1.0 * RBF(length_scale=1.0, length_scale_bounds=(1e-1, 10.0))
    gp = GaussianProcessRegressor(kernel=kernel, random_state=0)
    target = lambda x: np.sin((x[:, 0] - 2.5) ** 2)  # noqa: E731
    return dict(X=X, f=target(X), X_train=X_train, y_train=target(X_train), gp=gp, alpha=0.0)


def noisy():
    from sklearn.gaussian_process import GaussianProcessRegressor
    from sklearn.gaussian_process.kernels import RBF, WhiteKernel

    X = np.linspace(0, 5, num=80).reshape(-1, 1)
    X_train = np.random.RandomState(0).uniform(0, 5, size=20).reshape(-1, 1)
    noise = np.random.RandomState(1).normal(0, 0.3, size=(20, 1))
    y = (0.5 + np.sin(3 * X_train) + noise).squeeze()
    kernel = 1.0 * RBF(length_scale=1e1, length_scale_bounds=(1e-2, 1e3)) + WhiteKernel(
        noise_level=1, noise_level_bounds=(1e-10, 1e1)
    )
    gp = GaussianProcessRegressor(kernel=kernel, alpha=0.0, n_restarts_optimizer=10, random_state=0)
    return dict(
        X=X, f=(0.5 + np.sin(3 * X)).squeeze(), X_train=X_train, y_train=y, gp=gp, alpha=0.0
    )


def compare_krr():
    from sklearn.gaussian_process import GaussianProcessRegressor
    from sklearn.gaussian_process.kernels import ExpSineSquared, WhiteKernel

    rng = np.random.RandomState(0)
    X = np.linspace(0, 30, num=1_000).reshape(-1, 1)
    f = np.sin(X).ravel()
    idx = rng.choice(np.arange(0, 400), size=40, replace=False)
    y = f[idx] + 0.5 * rng.randn(len(idx))
    kernel = 1.0 * ExpSineSquared(1.0, 5.0, periodicity_bounds=(1e-2, 1e1)) + WhiteKernel(1e-1)
    gp = GaussianProcessRegressor(kernel=kernel)
    # Scored on the grid points the training rows were drawn from, [0, 12].
    return dict(X=X, f=f, X_train=X[idx], y_train=y, gp=gp, alpha=0.0, scored=slice(0, 400))


PROBLEMS = {
    "noisy_targets (6)": noisy_targets,
    "prior_posterior (10)": prior_posterior,
    "noisy (20)": noisy,
    "compare_gpr_krr (40)": compare_krr,
}


# ----------------------------------------------------------------- models
def fit_gp(problem, X, y, alpha):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the examples' bounds are hit on purpose
        gp = problem["gp"].fit(X, y)
    return lambda Xq: gp.predict(Xq, return_std=True)


def fit_gp_noise_estimated(problem, X, y, alpha):
    """The example's GP with a WhiteKernel instead of the known ``alpha``."""
    from sklearn.base import clone
    from sklearn.gaussian_process.kernels import WhiteKernel

    gp = clone(problem["gp"]).set_params(kernel=problem["gp"].kernel + WhiteKernel(1.0))
    return fit_gp({"gp": gp.set_params(alpha=1e-10)}, X, y, 0.0)


def fit_default_estimator(problem, X, y, alpha):
    from sk_mtbnn import SparseMultiTaskBNNRegressor

    reg = SparseMultiTaskBNNRegressor(random_state=0).fit(X, y)
    return lambda Xq: reg.predict(Xq, return_std=True)


def small_data_member(X, y, alpha, seed):
    """One member of the small-data regime on standardised data; returns moments."""
    from sk_mtbnn._training.full_batch import fit_small_data
    from sk_mtbnn.nn.network import MultiTaskNetwork

    x_mean, x_std, y_mean, y_std = X.mean(0), X.std(0), y.mean(), y.std()
    torch.manual_seed(seed)
    net = MultiTaskNetwork(X.shape[1], 1, hidden_layer_sizes=(128, 128), head="gaussian")
    fit_small_data(
        net,
        ((X - x_mean) / x_std).astype(np.float32),
        ((y - y_mean) / y_std)[:, None].astype(np.float32),
        alpha=alpha / y_std**2,
        random_state=seed,
    )

    def moments(Xq):
        with torch.no_grad():
            pred = net.predict(torch.as_tensor((Xq - x_mean) / x_std, dtype=torch.float32))
        var = (pred.epistemic + pred.aleatoric)[0].double().numpy() * y_std**2
        return pred.mean[0].double().numpy() * y_std + y_mean, var

    return moments


def small_data(n_members, seed, use_alpha=True):
    def fit(problem, X, y, alpha):
        members = [
            small_data_member(X, y, alpha if use_alpha else 0.0, seed + m) for m in range(n_members)
        ]

        def predict(Xq):
            parts = [m(Xq) for m in members]
            mean = np.mean([mu for mu, _ in parts], axis=0)
            # Law of total variance over the members (Lakshminarayanan et al. 2017).
            var = np.mean([v + mu**2 for mu, v in parts], axis=0) - mean**2
            return mean, np.sqrt(np.maximum(var, 0.0))

        return predict

    return fit


#: name -> (fit functions, one per seed; only for problems with a known alpha)
MODELS = {
    "GaussianProcessRegressor (example's kernel)": ([fit_gp], False),
    "SparseMultiTaskBNNRegressor() defaults, seed 0": ([fit_default_estimator], False),
    "small-data regime, 1 member (5 seeds)": ([small_data(1, s) for s in range(5)], False),
    "small-data regime, 5 members (3 seed sets)": (
        [small_data(5, 10 * s) for s in range(3)],
        False,
    ),
    "GaussianProcessRegressor, noise estimated (+ WhiteKernel, no alpha)": (
        [fit_gp_noise_estimated],
        True,
    ),
    "small-data regime, 1 member, noise estimated (no alpha, 5 seeds)": (
        [small_data(1, s, use_alpha=False) for s in range(5)],
        True,
    ),
}


# ---------------------------------------------------------------- metrics
def evaluate(problem, predict) -> dict:
    X, f = problem["X"], problem["f"]
    mean, std = predict(X)
    mean_t, std_t = predict(problem["X_train"])
    inside = np.abs(mean - f) <= 1.96 * std
    rows = problem.get("scored", slice(None))
    return {
        "rmse": float(np.sqrt(np.mean((mean[rows] - f[rows]) ** 2))),
        "band": float(np.mean(inside[rows])),
        "train": int(np.sum(np.abs(mean_t - problem["y_train"]) <= 1.96 * std_t)),
        "rmse_grid": float(np.sqrt(np.mean((mean - f) ** 2))),
        "band_grid": float(np.mean(inside)),
    }


def measure(problem_fn, fit) -> dict:
    problem = problem_fn()
    start = time.perf_counter()
    predict = fit(problem, problem["X_train"], problem["y_train"], problem["alpha"])
    seconds = time.perf_counter() - start
    return {**evaluate(problem, predict), "fit_s": seconds}


def summary(runs: list[dict], key: str, fmt: str) -> str:
    values = np.array([r[key] for r in runs], dtype=float)
    if len(values) == 1:
        return format(values[0], fmt)
    return f"{format(values.mean(), fmt)} [{format(values.min(), fmt)}-{format(values.max(), fmt)}]"


def table(results: dict) -> str:
    lines = [
        "| problem | model | RMSE | truth in 95% band | train points in band | fit (s) "
        "| RMSE, full grid | band, full grid |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for (problem, model), runs in results.items():
        n_train = problem.split("(")[1].rstrip(")")
        lines.append(
            f"| {problem} | {model} | {summary(runs, 'rmse', '.3f')} "
            f"| {summary(runs, 'band', '.0%')} | {summary(runs, 'train', '.0f')}/{n_train} "
            f"| {summary(runs, 'fit_s', '.2f')} | {summary(runs, 'rmse_grid', '.3f')} "
            f"| {summary(runs, 'band_grid', '.0%')} |"
        )
    return "\n".join(lines) + "\n"


def target_notes(results: dict) -> list[str]:
    """The issue's targets for the small-data regime, problem by problem."""
    notes = []
    gp_name = "GaussianProcessRegressor (example's kernel)"
    for problem in PROBLEMS:
        gp = results[(problem, gp_name)][0]
        for model in (
            "small-data regime, 1 member (5 seeds)",
            "small-data regime, 5 members (3 seed sets)",
        ):
            runs = results.get((problem, model))
            if not runs:
                continue
            rmse = np.mean([r["rmse"] for r in runs])
            band = np.mean([r["band"] for r in runs])
            train = min(r["train"] for r in runs)
            seconds = np.mean([r["fit_s"] for r in runs])
            checks = [
                f"RMSE {rmse / gp['rmse']:.2f}x the GP's (target <= 1.5)",
                f"band {band:.0%} (target >= 90%)",
                f"train points {train} (target >= {gp['train'] - 1})",
                f"fit {seconds:.2f} s (target <= 2 s)",
            ]
            notes.append(f"{problem}, {model.split(', ')[1].split(' (')[0]}: " + "; ".join(checks))
    return notes


# ---------------------------------------------------------------- scaling
def scaling_problem(n_train: int):
    from sk_mtbnn.datasets import make_multitask_regression

    X, y = make_multitask_regression(
        n_train + 2000, n_features=8, n_tasks=2, noise=0.1, random_state=0
    )
    y_train = y[:n_train].copy()
    y_train[np.random.RandomState(1).uniform(size=y_train.shape) < 0.3] = np.nan
    return X[:n_train], y_train, X[n_train:], y[n_train:]


def scaling_gp(X, y):
    from sklearn.gaussian_process import GaussianProcessRegressor
    from sklearn.gaussian_process.kernels import RBF, WhiteKernel
    from sklearn.gaussian_process.kernels import ConstantKernel as C

    x_mean, x_std = X.mean(0), X.std(0)
    models = []
    for t in range(y.shape[1]):
        rows = ~np.isnan(y[:, t])
        gp = GaussianProcessRegressor(C(1.0) * RBF(1.0) + WhiteKernel(1e-2), normalize_y=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            models.append(gp.fit((X[rows] - x_mean) / x_std, y[rows, t]))

    def predict(Xq):
        out = [m.predict((Xq - x_mean) / x_std, return_std=True) for m in models]
        return np.column_stack([a for a, _ in out]), np.column_stack([b for _, b in out]), ""

    return predict


def scaling_regime(train):
    def fit(X, y):
        from sk_mtbnn._training.full_batch import fit_small_data
        from sk_mtbnn.nn.network import MultiTaskNetwork

        x_mean, x_std = X.mean(0), X.std(0)
        y_mean, y_std = np.nanmean(y, 0), np.nanstd(y, 0)
        torch.manual_seed(0)
        net = MultiTaskNetwork(X.shape[1], y.shape[1], hidden_layer_sizes=(128, 128))
        result = fit_small_data(
            net,
            ((X - x_mean) / x_std).astype(np.float32),
            ((y - y_mean) / y_std).astype(np.float32),
            train=train,
        )

        def predict(Xq):
            with torch.no_grad():
                pred = net.predict(torch.as_tensor((Xq - x_mean) / x_std, dtype=torch.float32))
            std = torch.sqrt(pred.epistemic + pred.aleatoric).double().numpy().T * y_std
            mean = pred.mean.double().numpy().T * y_std + y_mean
            return mean, std, f"{result.n_steps} steps kept"

        return predict

    return fit


def scaling_default(X, y):
    from sk_mtbnn import SparseMultiTaskBNNRegressor

    reg = SparseMultiTaskBNNRegressor(random_state=0).fit(X, y)
    members = getattr(reg, "estimators_", None) or [reg]  # an ensemble has no n_epochs_
    note = f"{len(members)} member(s), {members[0].regime_} regime, {members[0].n_epochs_} epochs"
    return lambda Xq: (*reg.predict(Xq, return_std=True), note)


def scaling_table(skip_default: bool) -> str:
    plan = [
        (n, name, fit)
        for n in (100, 300, 1000)
        for name, fit in (
            ("GaussianProcessRegressor per task", scaling_gp),
            ("small-data regime, random features only", scaling_regime(False)),
            ("small-data regime, train='auto'", scaling_regime("auto")),
        )
    ]
    if not skip_default:
        plan.insert(3, (300, "SparseMultiTaskBNNRegressor() defaults", scaling_default))
    lines = [
        "| n train | model | fit (s) | test RMSE | test NLL | 95% coverage | note |",
        "| ---: | --- | ---: | ---: | ---: | ---: | --- |",
    ]
    for n, name, fit in sorted(plan, key=lambda p: p[0]):
        X, y, X_test, y_test = scaling_problem(n)
        start = time.perf_counter()
        predict = fit(X, y)
        seconds = time.perf_counter() - start
        mean, std, note = predict(X_test)
        nll = 0.5 * np.log(2 * np.pi * std**2) + 0.5 * ((y_test - mean) / std) ** 2
        lines.append(
            f"| {n:,} | {name} | {seconds:.2f} "
            f"| {np.mean(np.sqrt(np.mean((y_test - mean) ** 2, 0))):.3f} "
            f"| {np.mean(nll):.3f} | {np.mean(np.abs(y_test - mean) <= 1.96 * std):.1%} "
            f"| {note} |"
        )
        print(lines[-1], flush=True)
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-default", action="store_true", help="skip the default estimator")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "gp_gallery.md"))
    args = parser.parse_args()
    models = {k: v for k, v in MODELS.items() if not (args.skip_default and "defaults" in k)}
    measure(prior_posterior, small_data(1, 0))  # warm-up: imports, first allocations
    results = {}
    for problem, problem_fn in PROBLEMS.items():
        for model, (fits, needs_alpha) in models.items():
            if needs_alpha and not problem_fn()["alpha"]:
                continue
            results[(problem, model)] = [measure(problem_fn, fit) for fit in fits]
            print(table({(problem, model): results[(problem, model)]}).splitlines()[-1], flush=True)
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    commit += " (plus uncommitted changes in the work tree)" if dirty else ""
    header = (
        "# scikit-learn's GP gallery: GaussianProcessRegressor vs sk_mtbnn\n\n"
        f"Measured {date.today().isoformat()} on {platform.machine()} "
        f"({os.cpu_count()} cores shared, load average {os.getloadavg()[0]:.1f} at the "
        "end, one torch thread), Python "
        f"{platform.python_version()}, torch {torch.__version__}, commit {commit}, by "
        f"`python benchmarks/gp_gallery.py{' --skip-default' if args.skip_default else ''}`. "
        "Several seeds: mean [min-max]. RMSE and bands against the noise-free function "
        "on the example's grid (compare_gpr_krr: the training range [0, 12]; full grid "
        "[0, 30] in the last two columns).\n\n"
    )
    scaling = scaling_table(args.skip_default)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        header
        + table(results)
        + "\nTargets of the small-data regime (means over the seeds; train points: "
        + "the worst seed):\n\n"
        + "".join(f"- {note}\n" for note in target_notes(results))
        + "\n## Beyond the gallery: 8 inputs, 2 tasks, 30% of the labels missing\n\n"
        + "Test metrics in units of y, averaged over the tasks.\n\n"
        + scaling
    )
    print(f"written to {out}")


if __name__ == "__main__":
    main()
