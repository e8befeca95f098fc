"""Small torch helpers of the estimators: optimisers and float64 inference."""

from __future__ import annotations

import copy
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

OPTIMIZERS = {"adamw": torch.optim.AdamW, "adam": torch.optim.Adam, "sgd": torch.optim.SGD}

#: Rows per chunk at prediction time: bounds memory on very large inputs.
PREDICT_CHUNK = 8192


def resolve_optimizer(spec):
    """The optimiser class for a name in :data:`OPTIMIZERS` or a class."""
    if spec is torch.optim.LBFGS or (
        isinstance(spec, type) and issubclass(spec, torch.optim.LBFGS)
    ):
        raise ValueError(
            "optimizer=torch.optim.LBFGS needs a closure that re-evaluates the loss, which "
            "mini-batch training does not provide; use 'adamw' (the default), 'adam' or 'sgd'."
        )
    if isinstance(spec, str):
        try:
            return OPTIMIZERS[spec]
        except KeyError:
            raise ValueError(
                f"optimizer must be one of {sorted(OPTIMIZERS)} or a torch.optim.Optimizer "
                f"subclass; got {spec!r}."
            ) from None
    if isinstance(spec, type) and issubclass(spec, torch.optim.Optimizer):
        return spec
    raise ValueError(
        f"optimizer must be one of {sorted(OPTIMIZERS)} or a torch.optim.Optimizer subclass; "
        f"got {spec!r}."
    )


def inference_copy(module: nn.Module, device: str = "cpu") -> nn.Module:
    """A float64 copy of ``module`` in evaluation mode, for prediction.

    Training runs in float32; predictions (and joint covariances) are
    computed in float64 so that they do not depend on how rows are batched.
    """
    return copy.deepcopy(module).to(device=device, dtype=torch.float64).eval()


def module_stamp(module: nn.Module) -> tuple[int, ...]:
    """The in-place version counters of a module's tensors: changes on every write.

    Cheap (one integer per tensor); lets a cached copy of the module notice
    that the original was modified after fit (masks set, weights edited).
    """
    return tuple(t._version for t in (*module.parameters(), *module.buffers()))


def module_device(module: nn.Module) -> torch.device:
    """The device of a module's first parameter or buffer (CPU for none)."""
    for tensor in (*module.parameters(), *module.buffers()):
        return tensor.device
    return torch.device("cpu")


def iter_chunks(*arrays: np.ndarray, chunk: int | None = None):
    """Yield float64 tensors of consecutive row chunks of ``arrays``."""
    chunk = chunk or PREDICT_CHUNK
    for start in range(0, len(arrays[0]), chunk):
        yield tuple(torch.as_tensor(a[start : start + chunk], dtype=torch.float64) for a in arrays)


def predict_in_chunks(
    fn: Callable[[torch.Tensor], tuple], x: torch.Tensor, device: str = "cpu"
) -> tuple[np.ndarray, ...]:
    """Apply ``fn`` (returning tensors of shape ``(T, B)``) to row chunks of ``x``.

    Results are written into arrays allocated once: keeping every chunk's
    small output tensors alive between the large temporaries would fragment
    the heap, and resident memory would grow with the number of rows.
    """
    out: list[np.ndarray] | None = None
    with torch.no_grad():
        for start in range(0, max(len(x), 1), PREDICT_CHUNK):
            stop = min(start + PREDICT_CHUNK, len(x))
            parts = fn(x[start:stop].to(device))
            if out is None:
                out = [np.empty((p.shape[0], len(x))) for p in parts]
            for dest, part in zip(out, parts):
                dest[:, start:stop] = part.cpu().numpy()
    return tuple(out)
