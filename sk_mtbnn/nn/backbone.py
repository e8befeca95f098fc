"""Shared MLP backbone with per-task binary masks, and per-task branch layers.

ALGORITHMS.md §2: for every task ``t`` and every backbone weight matrix (and,
optionally, bias) there is a binary mask ``M_t`` of the same shape, and task
``t``'s forward pass uses ``F.linear(x, M_t * W, M_t * b)``. Masks are buffers,
so they are saved, loaded and pickled with the module. While every mask is all
ones a single shared forward pass serves all tasks.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

ACTIVATIONS = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "silu": nn.SiLU,
    "gelu": nn.GELU,
    "elu": nn.ELU,
    "softplus": nn.Softplus,
}


def make_activation(name: str) -> nn.Module:
    """Return a new activation module by name (one of :data:`ACTIVATIONS`)."""
    try:
        return ACTIVATIONS[name]()
    except KeyError:
        raise ValueError(
            f"activation must be one of {sorted(ACTIVATIONS)}, got {name!r}."
        ) from None


class MaskedMLP(nn.Module):
    """MLP of ``Linear + activation`` layers shared by ``n_tasks`` tasks.

    Parameters
    ----------
    in_features : int
        Width of the input.
    hidden_layer_sizes : sequence of int
        Widths of the hidden layers; empty gives the identity map.
    n_tasks : int
        Number of tasks, i.e. of masks per parameter.
    activation : str
        Name of the activation after every layer.

    Notes
    -----
    ``forward`` returns a tensor of shape ``(T, B, H)``. While every mask is
    all ones it is one shared pass, expanded (not copied) over the tasks;
    otherwise each task runs its own masked pass. Whether the masks are all
    ones is re-checked only when a mask tensor has changed (tracked through
    the tensors' version counters), not at every call.
    """

    def __init__(
        self,
        in_features: int,
        hidden_layer_sizes: Sequence[int],
        n_tasks: int,
        activation: str = "silu",
    ) -> None:
        super().__init__()
        self.n_tasks = n_tasks
        sizes = [in_features, *hidden_layer_sizes]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in itertools.pairwise(sizes))
        self.activation = make_activation(activation)
        for i, layer in enumerate(self.layers):
            out_f, in_f = layer.weight.shape
            self.register_buffer(f"weight_mask_{i}", torch.ones(n_tasks, out_f, in_f))
            self.register_buffer(f"bias_mask_{i}", torch.ones(n_tasks, out_f))
        self.out_features = sizes[-1]
        self._dense_key: tuple | None = None
        self._dense = True

    # -- masks ---------------------------------------------------------------
    def masks(self) -> list[tuple[Tensor, Tensor]]:
        """The ``(weight_mask, bias_mask)`` buffers of every layer.

        Shapes ``(T, out, in)`` and ``(T, out)``.
        """
        return [
            (getattr(self, f"weight_mask_{i}"), getattr(self, f"bias_mask_{i}"))
            for i in range(len(self.layers))
        ]

    def set_masks(self, masks: Sequence[tuple[Tensor, Tensor]]) -> None:
        """Copy ``masks`` (same structure as :meth:`masks`) into the buffers."""
        if len(masks) != len(self.layers):
            raise ValueError(f"expected masks for {len(self.layers)} layers, got {len(masks)}.")
        with torch.no_grad():
            for (w_buf, b_buf), (w_new, b_new) in zip(self.masks(), masks):
                w_buf.copy_(torch.as_tensor(w_new, dtype=w_buf.dtype))
                b_buf.copy_(torch.as_tensor(b_new, dtype=b_buf.dtype))

    def is_dense(self) -> bool:
        """Whether every mask of every task is all ones."""
        buffers = [m for pair in self.masks() for m in pair]
        key = tuple((id(m), m._version) for m in buffers)
        if key != self._dense_key:
            self._dense = all(bool(m.all()) for m in buffers)
            self._dense_key = key
        return self._dense

    def apply_masks_to_weights(self) -> None:
        """Zero the stored weights (and biases) wherever *every* task's mask is 0.

        Masked entries never influence any output, so this changes nothing a
        task computes; it makes pruned weights read as exact zeros.
        """
        with torch.no_grad():
            for layer, (w_mask, b_mask) in zip(self.layers, self.masks()):
                layer.weight.mul_(w_mask.amax(0))
                layer.bias.mul_(b_mask.amax(0))

    # -- forward -------------------------------------------------------------
    def shared_forward(self, x: Tensor) -> Tensor:
        """The one shared output ``(B, H)``; only defined while every mask is ones."""
        if not self.is_dense():
            raise RuntimeError("The backbone is pruned: each task has its own representation.")
        h = x
        for layer in self.layers:
            h = self.activation(layer(h))
        return h

    def forward(self, x: Tensor) -> Tensor:
        if self.is_dense():
            h = self.shared_forward(x)
            return h.unsqueeze(0).expand(self.n_tasks, *h.shape)
        h = x.unsqueeze(0).expand(self.n_tasks, *x.shape)
        for layer, (w_mask, b_mask) in zip(self.layers, self.masks()):
            weight = w_mask * layer.weight  # (T, out, in)
            bias = b_mask * layer.bias  # (T, out)
            h = self.activation(torch.baddbmm(bias.unsqueeze(1), h, weight.transpose(1, 2)))
        return h


class TaskwiseLinear(nn.Module):
    """``T`` independent linear maps applied to inputs of shape ``(T, B, in)``."""

    def __init__(self, n_tasks: int, in_features: int, out_features: int) -> None:
        super().__init__()
        bound = 1.0 / math.sqrt(max(in_features, 1))
        self.weight = nn.Parameter(torch.empty(n_tasks, out_features, in_features))
        self.bias = nn.Parameter(torch.empty(n_tasks, out_features))
        nn.init.uniform_(self.weight, -bound, bound)
        nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: Tensor) -> Tensor:
        return torch.baddbmm(self.bias.unsqueeze(1), x, self.weight.transpose(1, 2))


class TaskBranches(nn.Module):
    """One small MLP per task (``TaskwiseLinear + activation`` layers)."""

    def __init__(
        self, n_tasks: int, in_features: int, layer_sizes: Sequence[int], activation: str
    ) -> None:
        super().__init__()
        sizes = [in_features, *layer_sizes]
        self.layers = nn.ModuleList(
            TaskwiseLinear(n_tasks, a, b) for a, b in itertools.pairwise(sizes)
        )
        self.activation = make_activation(activation)
        self.out_features = sizes[-1]

    def forward(self, x: Tensor) -> Tensor:
        for layer in self.layers:
            x = self.activation(layer(x))
        return x
