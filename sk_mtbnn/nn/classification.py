"""Multi-task classification network: masked shared backbone, one linear head per task."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from .backbone import MaskedMLP
from .classification_head import ClassificationHead


class MultiTaskClassificationNetwork(nn.Module):
    """Shared masked MLP with one linear classification head per task.

    A binary task has one logit (sigmoid); a task with ``C > 2`` classes has
    ``C`` logits (softmax). The heads (:class:`ClassificationHead`) carry
    Gaussian weight posteriors.

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
    prior_var : float, default=1.0
        Prior variance of the head weights.

    Examples
    --------
    >>> import torch
    >>> net = MultiTaskClassificationNetwork(2, [2, 3], hidden_layer_sizes=(8,))
    >>> [tuple(z.shape) for z in net(torch.randn(4, 2))]
    [(4, 1), (4, 3)]
    """

    def __init__(
        self,
        n_features: int,
        n_classes: Sequence[int],
        hidden_layer_sizes: Sequence[int] = (128, 128),
        activation: str = "silu",
        prior_var: float = 1.0,
    ) -> None:
        super().__init__()
        self.n_tasks = len(n_classes)
        self.backbone = MaskedMLP(n_features, hidden_layer_sizes, self.n_tasks, activation)
        self.head = ClassificationHead(self.backbone.out_features, n_classes, prior_var)

    @property
    def heads(self) -> nn.ModuleList:
        """The per-task linear layers of :attr:`head`."""
        return self.head.linears

    def representation(self, x: Tensor) -> Tensor:
        """Backbone output per task, ``(T, B, H)`` (tasks differ once pruned)."""
        return self.backbone(x)

    def shared_representation(self, x: Tensor) -> Tensor:
        """The one backbone output ``(B, H)`` of an unpruned backbone."""
        return self.backbone.shared_forward(x)

    def forward(self, x: Tensor) -> list[Tensor]:
        """Per task, logits ``(B, C_t)``."""
        return self.head(self.backbone(x))
