"""Multi-task classification network: masked shared backbone, one linear head per task."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from .backbone import MaskedMLP


class MultiTaskClassificationNetwork(nn.Module):
    """Shared masked MLP with one linear head per classification task.

    A binary task has one logit (sigmoid); a task with ``C > 2`` classes has
    ``C`` logits (softmax).

    Parameters
    ----------
    n_features : int
        Number of input columns.
    n_classes : sequence of int
        Number of classes of each task (at least 2).
    hidden_layer_sizes : sequence of int
        Widths of the shared backbone layers.
    activation : str
        Activation of the backbone.
    """

    def __init__(
        self,
        n_features: int,
        n_classes: Sequence[int],
        hidden_layer_sizes: Sequence[int] = (128, 128),
        activation: str = "silu",
    ) -> None:
        super().__init__()
        self.n_tasks = len(n_classes)
        self.n_classes = list(n_classes)
        self.backbone = MaskedMLP(n_features, hidden_layer_sizes, self.n_tasks, activation)
        width = self.backbone.out_features
        self.heads = nn.ModuleList(nn.Linear(width, 1 if c == 2 else c) for c in n_classes)

    def head_weights(self, t: int) -> Tensor:
        """Weights of head ``t`` with the bias as last column, ``(C_t, H + 1)``."""
        head = self.heads[t]
        return torch.cat([head.weight, head.bias.unsqueeze(-1)], dim=1)

    def logits_from_representation(self, h: Tensor) -> list[Tensor]:
        """Per task, logits ``(B, C_t)`` from a shared ``(B, H)`` or a ``(T, B, H)`` ``h``."""
        if h.dim() == 2:
            return [head(h) for head in self.heads]
        return [head(h[t]) for t, head in enumerate(self.heads)]

    def representation(self, x: Tensor) -> Tensor:
        """Backbone output per task, ``(T, B, H)``."""
        return self.backbone(x)

    def forward(self, x: Tensor) -> list[Tensor]:
        return self.logits_from_representation(self.backbone(x))
