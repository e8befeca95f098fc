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


def predict_in_chunks(
    fn: Callable[[torch.Tensor], tuple], x: torch.Tensor, device: str = "cpu"
) -> tuple[np.ndarray, ...]:
    """Apply ``fn`` (returning tensors of shape ``(T, B)``) to row chunks of ``x``."""
    parts = []
    with torch.no_grad():
        for start in range(0, max(len(x), 1), PREDICT_CHUNK):
            out = fn(x[start : start + PREDICT_CHUNK].to(device))
            parts.append([t.cpu().numpy() for t in out])
    return tuple(np.concatenate(group, axis=1) for group in zip(*parts))
