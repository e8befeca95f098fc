"""Check a GPU against the CPU: the same fit on both, equal within a tolerance, and the speed-up.

For a user with a GPU: ``python benchmarks/gpu_check.py`` (``--device cuda:1``
or ``--device mps`` to choose one; ``--rows`` for the size of the timed fit).
Without a usable GPU it prints why and exits with status 0 (nothing to check).

1. **Equality.** A :class:`~sk_mtbnn.SparseMultiTaskBNNRegressor` (2 tasks,
   ``regime="network"``, 2,000 rows, 30 epochs) is fitted with the same
   ``random_state`` on the CPU and on the GPU. Both draw the same
   initialisation and the same batches (both come from the CPU generator),
   so they differ only by the rounding of the device's float32 kernels
   (TF32 is switched off for the check), compounded over the ~400 steps; the
   heads' refinement and the predictions are float64 on both. Tolerance: the
   predicted means and standard deviations agree within ``1e-3`` in units of
   the standardised targets (two summation orders on the CPU, the same kind
   of rounding, differ by 2e-8 after 260 steps, see
   ``tests/distributed/test_data_parallel.py``; a
   wrong device placement, a missed refinement or another seed gives
   differences of 0.01 to 1).
2. **Speed.** The same regressor (``hidden_layer_sizes=(128, 128)``, batch
   4,096, 5 epochs) is fitted on ``--rows`` rows (default 200,000) on each
   device, and predicts (mean and std) on 10^6 rows; wall times and the
   speed-ups are printed. The GPU is warmed up first (one small fit), so that
   CUDA's start-up is not counted.

Exit status 1 when the equality check fails.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import torch

#: Largest difference allowed between the CPU's and the GPU's predictions,
#: in units of the standardised targets (see the module docstring).
TOLERANCE = 1e-3


def make_data(n: int, seed: int = 0):
    rng = np.random.RandomState(seed)
    X = rng.uniform(-2, 2, size=(n, 4))
    y = np.column_stack([np.sin(2 * X[:, 0]) + X[:, 1], X[:, 2] * X[:, 3]])
    return X, y + 0.1 * rng.standard_normal(y.shape)


def regressor(device: str, **params):
    from sk_mtbnn import SparseMultiTaskBNNRegressor

    settings = {"regime": "network", "random_state": 0, "device": device, **params}
    return SparseMultiTaskBNNRegressor(**settings)


def gpu_device(requested: str | None) -> str | None:
    """The device to check, or None (with the reason printed) when there is none."""
    from sk_mtbnn.estimators._device import check_device

    candidates = [requested] if requested else ["cuda", "mps"]
    reasons = []
    for device in candidates:
        try:
            check_device(device)
            return device
        except ValueError as error:
            reasons.append(str(error))
    print("No GPU to check, skipped:\n  " + "\n  ".join(reasons))
    return None


def equality(device: str) -> bool:
    X, y = make_data(2_000)
    params = {"hidden_layer_sizes": (64, 64), "max_epochs": 30}
    cpu = regressor("cpu", **params).fit(X, y)
    gpu = regressor(device, **params).fit(X, y)
    X_test = make_data(1_000, seed=1)[0]
    scale = cpu._y_scale
    ok = cpu.n_epochs_ == gpu.n_epochs_
    print(f"epochs: cpu {cpu.n_epochs_}, {device} {gpu.n_epochs_}")
    for name, a, b in zip(
        ("mean", "std"), cpu.predict(X_test, return_std=True), gpu.predict(X_test, return_std=True)
    ):
        gap = float(np.max(np.abs(a - b) / scale))
        ok &= gap <= TOLERANCE
        print(f"largest difference of the predicted {name}: {gap:.2e} (tolerance {TOLERANCE:g})")
    return bool(ok)


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def speed(device: str, n_rows: int) -> None:
    X, y = make_data(n_rows)
    X_pool = make_data(1_000_000, seed=2)[0]
    params = {"hidden_layer_sizes": (128, 128), "batch_size": 4096, "max_epochs": 5}
    regressor(device, max_epochs=1).fit(X[:5_000], y[:5_000])  # warm-up: CUDA context, kernels
    rows = []
    for name in ("cpu", device):
        model = regressor(name, **params)
        fit = timed(lambda model=model: model.fit(X, y))
        predict = timed(lambda model=model: model.predict(X_pool, return_std=True))
        rows.append((name, fit, predict))
    print(f"\n{n_rows:,}-row fit (5 epochs, batch 4,096) and prediction on 10^6 rows:")
    print("| device | fit (s) | predict (s) |\n| --- | ---: | ---: |")
    for name, fit, predict in rows:
        print(f"| {name} | {fit:.1f} | {predict:.1f} |")
    (_, cpu_fit, cpu_predict), (_, gpu_fit, gpu_predict) = rows
    print(f"speed-up: fit {cpu_fit / gpu_fit:.2f}x, predict {cpu_predict / gpu_predict:.2f}x")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default=None, help="'cuda', 'cuda:N' or 'mps' (default: any)")
    parser.add_argument("--rows", type=int, default=200_000)
    args = parser.parse_args()
    device = gpu_device(args.device)
    if device is None:
        return 0
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    print(f"torch {torch.__version__}, checking {device} against the CPU")
    ok = equality(device)
    print("equality:", "passed" if ok else "FAILED")
    speed(device, args.rows)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
