"""Shared MLP backbone with per-task binary masks, and per-task branch layers.

docs/algorithms.rst, alg-backbone: for every task ``t`` and every backbone weight matrix (and,
optionally, bias) there is a binary mask ``M_t`` of the same shape, and task
``t``'s forward pass uses ``F.linear(x, M_t * W, M_t * b)``. Masks are buffers,
so they are saved, loaded and pickled with the module. While every mask is all
ones a single shared forward pass serves all tasks.

Options for input-dependent uncertainty (docs/algorithms.rst, "Uncertainty
that depends on the input"): residual layers ``h + f(h)`` with softly
spectrally normalised weights, which make the representation distance
preserving (Liu et al., NeurIPS 2020; van Amersfoort et al., 2021), and
dropout that can be kept on at prediction (MC dropout, Gal & Ghahramani,
ICML 2016).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .random_features import RandomFourierFeatures
from .spectral import (
    INITIAL_POWER_ITERATIONS,
    power_iteration,
    random_unit_vectors,
    soft_normalise,
    spectral_norm_estimate,
)

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
    activation : str, default="silu"
        Name of the activation after every layer.
    residual : bool, default=False
        Residual layers ``h <- h + act(W h + b)``. The input is first mapped
        to the width by a fixed (not trained) random projection with
        orthonormal columns; every hidden width must then be the same.
    spectral_norm : float or None, default=None
        Coefficient ``c`` of the soft spectral normalisation
        ``W <- W / max(1, sigma_max(W) / c)`` of every masked weight matrix;
        None: off.
    dropout : float, default=0.0
        Rate of the dropout applied to the activation of every layer but the
        last (on the residual branch ``f(h)`` when ``residual``). Active in
        training mode and inside :meth:`stochastic`. Needs two layers or more.
    n_power_iterations : int, default=1
        Power iterations per training-mode forward pass that refine the
        estimates of ``sigma_max`` (eval mode uses them without refining).
    random_features : int or None, default=None
        Number ``M`` of fixed random Fourier features
        (:class:`~sk_mtbnn.nn.random_features.RandomFourierFeatures`) that
        replace the output: the heads then act as RBF-kernel GPs on it.
        None: off.
    length_scale : float, default=1.0
        Length scale of that RBF kernel, in the units of the last layer.

    Notes
    -----
    ``forward`` returns a tensor of shape ``(T, B, H)``. While every mask is
    all ones it is one shared pass, expanded (not copied) over the tasks;
    otherwise each task runs its own masked pass. In training mode whether
    the masks are all ones is re-checked only when a mask tensor has changed
    (tracked through the tensors' version counters); in evaluation mode at
    every call, so that writes through ``.data`` or ``.numpy()`` are seen
    too. Change masks with :meth:`set_masks`.

    With ``spectral_norm=c`` the normalisation applies to each task's masked
    weight ``M_t * W`` (per task once pruned): masking can raise the norm of a
    matrix, so normalising ``W`` before masking would not bound a pruned
    task's layer, and :meth:`apply_masks_to_weights` leaves every task's
    normalised weight unchanged. With ``residual`` too, ``K`` layers and an
    activation of Lipschitz constant ``a`` (1 for relu, tanh, elu, softplus;
    about 1.10 for silu, 1.13 for gelu), every task's map satisfies

        (1 - a c)^K ||x - x'|| <= ||h(x) - h(x')|| <= (1 + a c)^K ||x - x'||,

    the lower bound when ``a c < 1`` and ``in_features <= width`` (the
    projection is then an isometry) -- Sec. 3.2 of Liu et al. (2020). A
    trained first layer could collapse input directions, which the fixed
    projection rules out; it is the input layer of Liu et al.'s SNGP. The
    bounds hold up to the power-iteration estimate of ``sigma_max``, which
    approaches it from below. With dropout the map of one stochastic pass
    has the upper bound ``(1 + a c / (1 - p))^K``.

    The same bound limits how fast a linear head's function can vary: on a
    1-D problem with ``sin(2x)`` targets, ``c = 0.95`` under-fitted (training
    RMSE 0.48 against 0.10), ``c = 3`` did not, nor did ``c = 0.95`` with
    ``random_features`` (``benchmarks/distance_awareness.py``).

    Dropout never acts on the backbone's output: that feeds the Bayesian
    heads, whose posterior already carries the last layer's uncertainty, and
    measured on a 1-D problem dropout there made the network under-fit
    (``benchmarks/distance_awareness.py``).

    Examples
    --------
    >>> import torch
    >>> mlp = MaskedMLP(2, (8, 8), n_tasks=3, residual=True, spectral_norm=0.9)
    >>> mlp(torch.randn(5, 2)).shape
    torch.Size([3, 5, 8])
    """

    def __init__(
        self,
        in_features: int,
        hidden_layer_sizes: Sequence[int],
        n_tasks: int,
        activation: str = "silu",
        *,
        residual: bool = False,
        spectral_norm: float | None = None,
        dropout: float = 0.0,
        n_power_iterations: int = 1,
        random_features: int | None = None,
        length_scale: float = 1.0,
    ) -> None:
        super().__init__()
        hidden = list(hidden_layer_sizes)
        _check_options(hidden, residual, spectral_norm, dropout, n_power_iterations)
        self.n_tasks = n_tasks
        self.residual = residual
        self.spectral_norm = None if spectral_norm is None else float(spectral_norm)
        self.dropout = float(dropout)
        self.n_power_iterations = int(n_power_iterations)
        if residual:
            self.register_buffer("input_projection", _orthonormal(hidden[0], in_features))
            sizes = [hidden[0], *hidden]
        else:
            sizes = [in_features, *hidden]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in itertools.pairwise(sizes))
        self.activation = make_activation(activation)
        for i, layer in enumerate(self.layers):
            out_f, in_f = layer.weight.shape
            self.register_buffer(f"weight_mask_{i}", torch.ones(n_tasks, out_f, in_f))
            self.register_buffer(f"bias_mask_{i}", torch.ones(n_tasks, out_f))
            if self.spectral_norm is not None:
                self.register_buffer(f"spectral_u_{i}", random_unit_vectors(n_tasks, out_f))
        self.random_features = (
            None
            if random_features is None
            else RandomFourierFeatures(sizes[-1], random_features, length_scale)
        )
        self.out_features = sizes[-1] if random_features is None else random_features
        self._dense_key: tuple | None = None
        self._dense = True
        self._stochastic = False
        self._generator: torch.Generator | None = None
        self.refresh_spectral_estimates()

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
        self.refresh_spectral_estimates()

    def is_dense(self) -> bool:
        """Whether every mask of every task is all ones.

        In training mode the answer is cached and re-checked only when a mask
        tensor's version counter has changed (:meth:`set_masks`, or any
        in-place torch operation on a mask), which saves a reduction over
        every mask at every batch. Writes that bypass the counter -- through
        ``mask.data`` or ``mask.numpy()`` -- are not seen by that cache, so in
        evaluation mode (prediction) the masks are checked at every call.
        :meth:`set_masks` is the supported way to change masks.
        """
        buffers = [m for pair in self.masks() for m in pair]
        key = tuple((id(m), m._version) for m in buffers)
        if key != self._dense_key or not self.training:
            self._dense = all(bool(m.all()) for m in buffers)
            self._dense_key = key
        return self._dense

    def train(self, mode: bool = True) -> MaskedMLP:
        """Switch the mode, forgetting the cached density (see :meth:`is_dense`)."""
        self._dense_key = None
        return super().train(mode)

    def apply_masks_to_weights(self) -> None:
        """Zero the stored weights (and biases) wherever *every* task's mask is 0.

        Masked entries never influence any output, so this changes nothing a
        task computes (spectral normalisation included: it acts on the masked
        weights); it makes pruned weights read as exact zeros.
        """
        with torch.no_grad():
            for layer, (w_mask, b_mask) in zip(self.layers, self.masks()):
                layer.weight.mul_(w_mask.amax(0))
                layer.bias.mul_(b_mask.amax(0))

    # -- spectral normalisation ----------------------------------------------
    def refresh_spectral_estimates(self, n_iterations: int = INITIAL_POWER_ITERATIONS) -> None:
        """Run ``n_iterations`` power iterations on every task's masked weights.

        Called at construction and when the masks are set; call it after
        changing the weights by hand. No-op without ``spectral_norm``.
        """
        if self.spectral_norm is None:
            return
        for i, (layer, (w_mask, _)) in enumerate(zip(self.layers, self.masks())):
            u_buf = getattr(self, f"spectral_u_{i}")
            u, _ = power_iteration(w_mask * layer.weight, u_buf, n_iterations)
            with torch.no_grad():
                u_buf.copy_(u)

    def effective_weights(self) -> list[Tensor]:
        """Per layer, the ``(T, out, in)`` weights each task's pass uses.

        ``M_t * W``, softly spectrally normalised with the current estimates
        (not refined by this call).
        """
        return [
            self._normalised(i, w_mask * layer.weight, refine=False)
            for i, (layer, (w_mask, _)) in enumerate(zip(self.layers, self.masks()))
        ]

    def _normalised(self, i: int, weight: Tensor, refine: bool) -> Tensor:
        """Soft spectral normalisation of ``weight`` ``(T', out, in)``, ``T'`` in ``{1, T}``.

        ``T' = 1`` is the shared pass: every task's vector is set to its estimate.
        """
        if self.spectral_norm is None:
            return weight
        u_buf = getattr(self, f"spectral_u_{i}")
        u, v = power_iteration(weight, u_buf[: len(weight)], self.n_power_iterations * refine)
        if refine:
            with torch.no_grad():
                u_buf.copy_(u.expand_as(u_buf))
        # Clones: a later in-place refinement must not touch what backward needs.
        sigma = spectral_norm_estimate(weight, u.clone(), v.clone())
        return soft_normalise(weight, sigma, self.spectral_norm)

    # -- dropout -------------------------------------------------------------
    @contextmanager
    def stochastic(self, generator: torch.Generator | None = None) -> Iterator[None]:
        """Keep dropout on (also in eval mode), drawing from ``generator``.

        Inside, every forward pass is one draw of the network: one dropout
        mask per unit, shared by all rows and tasks of the batch, so a row's
        output does not depend on the other rows and draws are joint samples.
        (Training draws a mask per row, from the global generator.)
        """
        saved = self._stochastic, self._generator
        self._stochastic, self._generator = True, generator
        try:
            yield
        finally:
            self._stochastic, self._generator = saved

    def _dropout(self, z: Tensor) -> Tensor:
        if self.dropout == 0.0 or not (self.training or self._stochastic):
            return z
        keep = 1.0 - self.dropout
        shape = (1, z.shape[-1]) if self._stochastic else z.shape[-2:]
        draw = torch.full(shape, keep, dtype=z.dtype, device=z.device)
        return z * (torch.bernoulli(draw, generator=self._generator) / keep)

    # -- forward -------------------------------------------------------------
    def _input(self, x: Tensor) -> Tensor:
        return F.linear(x, self.input_projection) if self.residual else x

    def _step(self, i: int, h: Tensor, pre_activation: Tensor) -> Tensor:
        z = self.activation(pre_activation)
        if i < len(self.layers) - 1:
            z = self._dropout(z)
        return h + z if self.residual else z

    def _output(self, h: Tensor) -> Tensor:
        return h if self.random_features is None else self.random_features(h)

    def shared_forward(self, x: Tensor) -> Tensor:
        """The one shared output ``(B, H)``; only defined while every mask is ones."""
        if not self.is_dense():
            raise RuntimeError("The backbone is pruned: each task has its own representation.")
        h = self._input(x)
        for i, layer in enumerate(self.layers):
            weight = self._normalised(i, layer.weight.unsqueeze(0), self.training)[0]
            h = self._step(i, h, F.linear(h, weight, layer.bias))
        return self._output(h)

    def forward(self, x: Tensor) -> Tensor:
        if self.is_dense():
            h = self.shared_forward(x)
            return h.unsqueeze(0).expand(self.n_tasks, *h.shape)
        h = self._input(x)
        h = h.unsqueeze(0).expand(self.n_tasks, *h.shape)
        for i, (layer, (w_mask, b_mask)) in enumerate(zip(self.layers, self.masks())):
            weight = self._normalised(i, w_mask * layer.weight, self.training)  # (T, out, in)
            bias = b_mask * layer.bias  # (T, out)
            h = self._step(i, h, torch.baddbmm(bias.unsqueeze(1), h, weight.transpose(1, 2)))
        return self._output(h)


def _check_options(
    hidden: list[int],
    residual: bool,
    spectral_norm: float | None,
    dropout: float,
    n_power_iterations: int,
) -> None:
    if residual and (not hidden or len(set(hidden)) != 1):
        raise ValueError(
            "residual=True needs at least one hidden layer and equal widths, got "
            f"hidden_layer_sizes={tuple(hidden)}; use e.g. (64, 64, 64)."
        )
    if spectral_norm is not None and not (
        isinstance(spectral_norm, int | float) and 0 < spectral_norm < math.inf
    ):
        raise ValueError(f"spectral_norm must be None or a positive number, got {spectral_norm!r}.")
    if not (isinstance(dropout, int | float) and 0.0 <= dropout < 1.0):
        raise ValueError(f"dropout must be a rate in [0, 1), got {dropout!r}.")
    if dropout and len(hidden) < 2:
        raise ValueError(
            "dropout acts on every backbone layer but the last (whose output feeds the "
            f"heads), so it needs two hidden layers or more, got {tuple(hidden)}."
        )
    if not (isinstance(n_power_iterations, int) and n_power_iterations >= 1):
        raise ValueError(
            f"n_power_iterations must be a positive integer, got {n_power_iterations!r}."
        )


def _orthonormal(width: int, in_features: int) -> Tensor:
    """A ``(width, in_features)`` matrix with orthonormal columns (rows if wider)."""
    tall = torch.linalg.qr(torch.randn(max(width, in_features), min(width, in_features)))[0]
    return tall if width >= in_features else tall.T


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
