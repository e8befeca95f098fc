"""The multi-task network: masked backbone, task inputs, branches, VBLL heads.

::

    x[:, backbone columns] --> MaskedMLP (per-task masks) --> h_t
    concat(h_t, x[:, task t's own columns]) --> branch_t --> phi_t --> VBLL head_t
    (a task flagged private: x[:, backbone columns] --> its PrivateFeatures map --> phi_t)

docs/algorithms.rst, alg-backbone and alg-negative-transfer. Everything is batched over the
``T`` tasks: ``phi`` has shape ``(T, B, F)``.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from .backbone import MaskedMLP, TaskBranches, make_activation
from .heads import Predictive, make_head, mixture_moments


class PrivateFeatures(nn.Module):
    """Per-task feature maps that replace the shared features of chosen tasks.

    One fixed (not trained) MLP per task, batched over the tasks
    (``TaskwiseLinear``-style weights ``(T, out, in)``), on the backbone's input
    columns. Inactive until :meth:`set_task` writes a task's map and flags it
    (buffer ``active``); then that task's head sees these features instead of
    the shared backbone's (docs/algorithms.rst, section "Negative transfer").

    Parameters
    ----------
    n_tasks : int
        Number of tasks.
    in_features : int
        Width of the input (the backbone's input columns).
    layer_sizes : sequence of int
        Widths of the layers (those of the backbone).
    activation : str
        Activation after every layer (that of the backbone).
    """

    def __init__(
        self, n_tasks: int, in_features: int, layer_sizes: Sequence[int], activation: str
    ) -> None:
        super().__init__()
        sizes = [in_features, *layer_sizes]
        self.weights = nn.ParameterList(
            nn.Parameter(torch.zeros(n_tasks, b, a), requires_grad=False)
            for a, b in itertools.pairwise(sizes)
        )
        self.biases = nn.ParameterList(
            nn.Parameter(torch.zeros(n_tasks, b), requires_grad=False) for b in sizes[1:]
        )
        self.activation = make_activation(activation)
        self.register_buffer("active", torch.zeros(n_tasks, dtype=torch.bool))
        self.out_features = sizes[-1]

    def set_task(self, task: int, mlp: MaskedMLP) -> None:
        """Give ``task`` the map of the one-task, unmasked ``mlp`` (same layer shapes), in place."""
        if len(mlp.layers) != len(self.weights):
            raise ValueError(f"expected {len(self.weights)} layers, got {len(mlp.layers)}.")
        with torch.no_grad():
            for weight, bias, layer in zip(self.weights, self.biases, mlp.layers):
                weight[task].copy_(layer.weight)
                bias[task].copy_(layer.bias)
            self.active[task] = True

    def forward(self, x: Tensor, tasks: Tensor) -> Tensor:
        """Features ``(len(tasks), B, F)`` of the tasks ``tasks`` for inputs ``x`` ``(B, d)``."""
        h = x.unsqueeze(0).expand(len(tasks), *x.shape)
        for weight, bias in zip(self.weights, self.biases):
            pre = torch.baddbmm(bias[tasks].unsqueeze(1), h, weight[tasks].transpose(1, 2))
            h = self.activation(pre)
        return h


class MultiTaskNetwork(nn.Module):
    """Shared masked MLP, optional per-task inputs and branches, VBLL heads.

    Parameters
    ----------
    n_features : int
        Number of input columns.
    n_tasks : int
        Number of (single-output) tasks.
    hidden_layer_sizes : sequence of int
        Widths of the shared backbone layers.
    branch_layer_sizes : sequence of int
        Widths of each task's branch layers (empty: heads sit on the backbone).
    activation : str
        Activation of backbone and branches.
    task_columns : sequence of sequence of int, optional
        For each task, the input columns that bypass the backbone and are
        concatenated to its output before that task's branch. A column named
        for any task does not enter the backbone.
    head : {"gaussian", "student_t", "heteroscedastic"}
        The VBLL head.
    head_kwargs : dict
        Passed to the head (covariance, rank, prior_scale, ...).
    backbone_kwargs : dict
        Passed to :class:`~sk_mtbnn.nn.backbone.MaskedMLP` (``residual``,
        ``spectral_norm``, ``dropout``, ``n_power_iterations``,
        ``random_features``, ``length_scale``).
    private_features : bool, default=False
        Hold a :class:`PrivateFeatures` slot (``self.private``) so that chosen
        tasks can fall back on features of their own. Needs no branch layers,
        no task columns and a plain backbone (its output is the head input).

    Examples
    --------
    >>> import torch
    >>> net = MultiTaskNetwork(
    ...     1, 2, hidden_layer_sizes=(8, 8),
    ...     backbone_kwargs={"residual": True, "spectral_norm": 0.9, "dropout": 0.1},
    ... )
    >>> pred = net.eval().predict_mc(torch.randn(4, 1), 10, torch.Generator().manual_seed(0))
    >>> pred.mean.shape
    torch.Size([2, 4])
    """

    def __init__(
        self,
        n_features: int,
        n_tasks: int,
        *,
        hidden_layer_sizes: Sequence[int] = (64, 64),
        branch_layer_sizes: Sequence[int] = (),
        activation: str = "silu",
        task_columns: Sequence[Sequence[int]] | None = None,
        head: str = "gaussian",
        head_kwargs: dict | None = None,
        backbone_kwargs: dict | None = None,
        private_features: bool = False,
    ) -> None:
        super().__init__()
        task_columns = [list(c) for c in (task_columns or [[] for _ in range(n_tasks)])]
        bypass = sorted({c for cols in task_columns for c in cols})
        backbone_columns = [c for c in range(n_features) if c not in bypass]
        n_own = max((len(c) for c in task_columns), default=0)
        # Missing own columns point at an appended all-zero column (index
        # n_features), so tasks with fewer own columns see zeros there.
        padded = [cols + [n_features] * (n_own - len(cols)) for cols in task_columns]
        self.register_buffer("backbone_columns", torch.tensor(backbone_columns, dtype=torch.long))
        self.register_buffer(
            "task_columns", torch.tensor(padded, dtype=torch.long).reshape(n_tasks, n_own)
        )
        self.n_tasks = n_tasks
        self.backbone = MaskedMLP(
            len(backbone_columns),
            hidden_layer_sizes,
            n_tasks,
            activation,
            **(backbone_kwargs or {}),
        )
        branch_in = self.backbone.out_features + n_own
        self.branches = TaskBranches(n_tasks, branch_in, branch_layer_sizes, activation)
        self.head = make_head(
            head, n_tasks=n_tasks, in_features=self.branches.out_features, **(head_kwargs or {})
        )
        self.private = None
        if private_features:
            if len(self.branches.layers) or n_own or self.backbone.random_features is not None:
                raise ValueError(
                    "private_features needs the heads on the backbone's output: no branch "
                    "layers, no task columns and no random_features."
                )
            widths = [layer.out_features for layer in self.backbone.layers]
            self.private = PrivateFeatures(n_tasks, len(backbone_columns), widths, activation)

    def private_tasks(self) -> Tensor:
        """Indices of the tasks whose heads see their private features (possibly none)."""
        if self.private is None:
            return self.task_columns.new_zeros(0)
        return self.private.active.nonzero()[:, 0]

    @property
    def heads_on_shared_representation(self) -> bool:
        """True when every head sits directly on one shared backbone output.

        That is: no branch layers, no task-specific input columns, all
        backbone masks ones and no task on private features -- the setting
        BayesAgg needs.
        """
        return (
            len(self.branches.layers) == 0
            and self.task_columns.shape[1] == 0
            and self.backbone.is_dense()
            and len(self.private_tasks()) == 0
        )

    def representation(self, x: Tensor) -> Tensor:
        """Backbone output per task, shape ``(T, B, H)``."""
        return self.backbone(x[:, self.backbone_columns])

    def features_from_representation(self, x: Tensor, h: Tensor) -> Tensor:
        """Head inputs ``phi`` ``(T, B, F)`` from the backbone output ``h``."""
        if self.task_columns.shape[1]:
            padded = torch.cat([x, x.new_zeros(x.shape[0], 1)], dim=1)
            own = padded[:, self.task_columns].permute(1, 0, 2)  # (T, B, k)
            h = torch.cat([h, own], dim=-1)
        phi = self.branches(h)
        tasks = self.private_tasks()
        if len(tasks):
            private = self.private(x[:, self.backbone_columns], tasks).to(phi.dtype)
            phi = phi.index_copy(0, tasks, private)
        return phi

    def forward(self, x: Tensor) -> Tensor:
        """Head inputs ``phi`` of shape ``(T, B, F)``."""
        return self.features_from_representation(x, self.representation(x))

    def predict(self, x: Tensor) -> Predictive:
        """Predictive moments, each ``(T, B)``."""
        return self.head.predict(self(x))

    def predict_mc(
        self, x: Tensor, n_passes: int, generator: torch.Generator | None = None
    ) -> Predictive:
        """MC-dropout predictive moments over ``n_passes`` stochastic passes, each ``(T, B)``.

        Dropout stays on (Gal & Ghahramani, 2016); each pass is one draw of
        the backbone's dropout masks from ``generator`` (see
        :meth:`MaskedMLP.stochastic`), so a seeded generator makes the result
        deterministic and independent of the other rows in ``x``. The moments
        follow the law of total variance (:func:`~sk_mtbnn.nn.heads.mixture_moments`):
        the variance of the passes' means is added to the head's epistemic part.
        Without dropout every pass is the deterministic :meth:`predict`.
        """
        if not (isinstance(n_passes, int) and n_passes >= 1):
            raise ValueError(f"n_passes must be a positive integer, got {n_passes!r}.")
        with self.backbone.stochastic(generator):
            return mixture_moments([self.predict(x) for _ in range(n_passes)])
