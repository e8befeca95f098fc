"""The fit skeleton shared by every network estimator.

One path, the same for every estimator::

    fit(X, y)
      validate_params            declarative ``_parameter_constraints``
      on a blank copy of self    (a failed fit leaves ``self`` as it was)
        _prepare(X, y)           validate X, ``_encode_targets`` -> Y, standardise, split
        _build_module(data)      hook: the torch network
        _train(module, data)     build the skorch net (hook ``_net_spec``), train it,
                                 ``_finalise(data)`` (hook: head refinement, Laplace, ...)
      adopt the copy's fitted state

Subclasses implement the hooks ``_encode_targets``, ``_build_module``,
``_net_spec`` and ``_finalise`` (and may override ``_check_param_combinations``
for rules that involve several parameters). The pruning meta-estimator drives
``_prepare``, ``_build_module`` and ``_train`` itself to retrain one network
with masks several times on the same data: that is the "retrain with masks"
protocol.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import math
import numbers
import warnings

import numpy as np
import torch
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from sklearn.utils.validation import validate_data

from .._param_validation import validate_params
from .._threads import one_thread
from .._training.callbacks import build_callbacks
from .._training.loader import TensorBatchLoader
from .._validation import check_fitted, check_input_frame, check_magnitude
from ._device import check_device
from ._torch_utils import inference_copy, module_stamp, resolve_optimizer

#: Mini-batch training runs on one torch thread up to this many batch rows x widest layer.
ONE_THREAD_WORK = 2**18


@dataclasses.dataclass(frozen=True)
class TrainingData:
    """Standardised training data and the training settings derived from it.

    ``_prepare`` returns it; ``_build_module`` and ``_train`` take it, so that a
    meta-estimator (pruning) can train the same network several times on the
    same data.
    """

    X: np.ndarray  # all rows with at least one label (float32, standardised)
    Y: np.ndarray  # their targets (standardised, NaN where missing)
    train: tuple  # (X, Y) rows the network is trained on
    valid: tuple | None  # (X, Y) held-out rows, or None
    n_labelled: np.ndarray  # labels per task in the training rows
    seed: int
    batch_size: int
    max_epochs: int

    def replace(self, **changes) -> TrainingData:
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)


#: Number of optimiser steps that ``max_epochs='auto'`` aims at.
AUTO_STEPS = 3000
#: Largest batch of ``batch_size='auto'``.
AUTO_BATCH = 128


@contextlib.contextmanager
def seeded(seed: int):
    """Seed torch's global generator for the block, then restore its state.

    Network initialisation and shuffling draw from it; the user's own
    generator state is left as it was.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def nonzero_scale(scale: np.ndarray, magnitude: np.ndarray | None = None) -> np.ndarray:
    """Replace the scales of constant columns by 1, as scikit-learn's scalers do.

    A column is constant when its spread is below ``10 eps`` relative to its
    magnitude (the largest absolute value, or the scale itself): a relative
    test, so that data of any unit (1e-20 or 1e20) keeps its scale.
    """
    scale = np.asarray(scale, dtype=np.float64).copy()
    ref = np.abs(scale) if magnitude is None else np.maximum(np.abs(magnitude), np.abs(scale))
    constant = ~np.isfinite(scale) | (scale <= 10 * np.finfo(np.float64).eps * ref) | (scale == 0)
    scale[constant] = 1.0
    return scale


def column_scale(X: np.ndarray) -> np.ndarray:
    """Standard deviation of each column, 1 for constant columns (relative test)."""
    return nonzero_scale(np.nanstd(X, axis=0), np.nanmax(np.abs(X), axis=0))


def layer_sizes(value) -> tuple[int, ...]:
    """Layer widths as a tuple (an int is one layer)."""
    return (int(value),) if isinstance(value, numbers.Integral) else tuple(int(v) for v in value)


def _stamps(module) -> tuple:
    """Version counters of the module's tensors, then those of its head alone."""
    head = getattr(module, "head", None)
    return (*module_stamp(module), () if head is None else module_stamp(head))


class NetworkEstimatorMixin:
    """The fit skeleton, validation split and skorch net of the network estimators.

    Expects the parameters ``hidden_layer_sizes``, ``activation``,
    ``optimizer``, ``learning_rate``, ``weight_decay``, ``max_epochs``,
    ``batch_size``, ``validation_fraction``, ``n_iter_no_change``, ``device``,
    ``random_state`` and ``verbose``.
    """

    #: Whether each task may have its own backbone masks (pruning). False for
    #: estimators that train one representation shared by every task.
    _supports_task_masks = True
    #: Fewest labelled rows a fit accepts.
    _min_labelled_rows = 2
    #: Below this many labelled rows no validation rows are held out.
    _min_rows_to_split = 5

    # ------------------------------------------------------------ skeleton
    def fit(self, X, y, **fit_params):
        """Fit the network to ``X`` and ``y``.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)
            Training inputs; standardised internally.
        y : array-like of shape (n_samples,) or (n_samples, n_tasks)
            Targets, one column per task; missing labels are ignored in that
            task's loss.
        **fit_params : dict
            Estimator-specific data, e.g. ``task_features`` of
            :class:`~sk_mtbnn.SparseMultiTaskBNNRegressor`.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        validate_params(self)
        check_device(self.device)
        work = self._blank_copy()
        before = set(vars(work))
        work._fit(X, y, **fit_params)
        self._adopt(work, set(vars(work)) - before)
        return self

    def _fit(self, X, y, **fit_params) -> None:
        """Prepare the data, build the network under the fit's seed, train it."""
        if fit_params:
            raise TypeError(f"fit() got unexpected arguments {sorted(fit_params)}.")
        data = self._prepare(X, y)
        with seeded(data.seed):
            module = self._build_module(data)
            self._train(module, data)

    def _blank_copy(self):
        """A shallow copy of ``self`` without the state of its previous fit."""
        work = copy.copy(self)
        for name in getattr(self, "_fit_state_names", ()):
            vars(work).pop(name, None)
        return work

    def _adopt(self, work, names) -> None:
        """Replace the state of the previous fit by the attributes ``names`` of ``work``."""
        for name in getattr(self, "_fit_state_names", ()):
            vars(self).pop(name, None)
        for name in names:
            setattr(self, name, getattr(work, name))
        self._fit_state_names = tuple(sorted(names))

    def _prepare(self, X, y) -> TrainingData:
        """Validate and standardise the data, split off validation rows."""
        X, Y = self._validate_inputs(X, y)
        seed = self._draw_seed()
        X_all = self._standardise_X(X)
        Y_all = self._standardise_Y(Y)
        train, valid = self._split(X_all, Y_all, seed)
        n_labelled = (~np.isnan(train[1])).sum(0)
        batch_size, max_epochs = self._step_budget(len(train[0]))
        return TrainingData(X_all, Y_all, train, valid, n_labelled, seed, batch_size, max_epochs)

    def _validate_inputs(self, X, y) -> tuple[np.ndarray, np.ndarray]:
        """The labelled rows of validated ``X`` and encoded ``Y``, or a clear error.

        Every check of the data and of the parameters that depend on it, with
        no random draw (an ensemble runs it before dispatching its members).
        Sets ``n_features_in_``, ``n_tasks_`` and the hooks' attributes.
        """
        check_input_frame(X)  # pandas/narwhals would fail with messages of their own
        X = validate_data(
            self, X, reset=True, dtype=np.float64, ensure_min_samples=self._min_labelled_rows
        )
        check_magnitude(X, "X")  # finite float64 by now, but too large to standardise?
        Y = self._encode_targets(y, X)
        self.n_tasks_ = Y.shape[1]
        keep = ~np.all(np.isnan(Y), axis=1)  # rows without any label teach nothing
        self._labelled_rows = keep
        X, Y = X[keep], Y[keep]
        if len(X) < self._min_labelled_rows:
            raise ValueError(
                f"Only {len(X)} row(s) of y carry a label (the others are all NaN); at least "
                f"{self._min_labelled_rows} labelled rows are needed."
            )
        self._check_param_combinations(X)
        self._check_split(len(X))
        return X, Y

    def _train(self, module, data: TrainingData, max_epochs: int | None = None) -> None:
        """Train ``module`` on ``data`` through a new skorch net (``net_``), then finalise."""
        if max_epochs is not None:
            data = data.replace(max_epochs=max_epochs)
        net_class, criterion, kwargs = self._net_spec(module, data)
        self.net_ = self._build_net(net_class, module, criterion, data, **kwargs)
        with self._thread_budget(module, data):
            self._fit_and_finalise(data)

    def _fit_and_finalise(self, data: TrainingData) -> None:
        """Train ``net_``, build the float64 inference copy, run ``_finalise``."""
        self.net_.fit(*data.train)
        self.history_ = self.net_.history
        self.n_epochs_ = len(self.history_)
        self._warn_if_interrupted(data.max_epochs)
        self._check_finite_module()
        self.net_.module_.backbone.apply_masks_to_weights()
        # The float64 copy every prediction uses, built once per training;
        # ``_finalise`` may refine it (and writes refined heads back to net_).
        self._inference_module = inference_copy(self.net_.module_, self.device)
        self._sync_inference_stamp()
        self._finalise(data)
        self._sync_inference_stamp()
        weights = getattr(self.net_.aggregator, "task_weights_", None)
        if weights is not None:
            self.task_weights_ = np.array(weights).reshape(-1, self.n_tasks_)

    def _thread_budget(self, module, data: TrainingData):
        """One torch thread for mini-batch training whose matrix products are small.

        Batch rows times the widest layer at most :data:`ONE_THREAD_WORK`
        (the defaults: 128 x 128): extra threads only synchronise there, and
        on busy cores they cost up to 10x (measured: 3,000 rows, 30 epochs,
        40 s with two threads against 4 s with one on 2 shared cores).
        """
        if not str(self.device).startswith("cpu"):
            return contextlib.nullcontext()
        width = max((p.shape[0] for p in module.parameters() if p.ndim >= 2), default=1)
        if data.batch_size * width > ONE_THREAD_WORK:
            return contextlib.nullcontext()
        return one_thread()

    # ---------------------------------------------------------------- hooks
    # Every estimator implements ``_encode_targets(y, X) -> (n, T)`` floats
    # (NaN where missing), ``_build_module(data)``, ``_net_spec(module, data)
    # -> (net class, criterion, net kwargs)`` and ``_finalise(data)``.
    def _standardise_Y(self, Y: np.ndarray) -> np.ndarray:
        """Targets for training (regressors standardise them; classes stay codes)."""
        return Y.astype(np.float32)

    def _check_param_combinations(self, X: np.ndarray) -> None:
        """Hook: rules that involve several parameters or the data."""

    # -------------------------------------------------------------- helpers
    def _draw_seed(self) -> int:
        return int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))

    def _standardise_X(self, X: np.ndarray) -> np.ndarray:
        """Fit the input standardisation on ``X`` and apply it (float32)."""
        self._x_mean = X.mean(0)
        self._x_scale = column_scale(X - self._x_mean)
        return ((X - self._x_mean) / self._x_scale).astype(np.float32)

    def _scaled_tensor(self, X) -> torch.Tensor:
        return torch.as_tensor((X - self._x_mean) / self._x_scale, dtype=torch.float64)

    def _split(self, X, Y, seed: int, stratify=None):
        """Training rows and held-out rows (or None) for early stopping."""
        fraction = self.validation_fraction
        if fraction is None or len(X) < self._min_rows_to_split:
            return (X, Y), None  # (_validate_inputs ran _check_split)
        X_train, X_valid, Y_train, Y_valid = train_test_split(
            X, Y, test_size=fraction, random_state=seed, stratify=stratify
        )
        return (X_train, Y_train), (X_valid, Y_valid)

    def _check_split(self, n_rows: int) -> None:
        """Refuse a ``validation_fraction`` that leaves none of ``n_rows`` rows to train on."""
        fraction = self.validation_fraction
        if fraction is None or n_rows < self._min_rows_to_split:
            return
        if math.ceil(fraction * n_rows) >= n_rows:
            raise ValueError(
                f"validation_fraction={fraction} of {n_rows} labelled rows leaves no row to "
                "train on; lower validation_fraction or set it to None."
            )

    def _step_budget(self, n_train: int) -> tuple[int, int]:
        """Batch size and number of epochs, with ``'auto'`` resolved."""
        batch_size = min(AUTO_BATCH, n_train) if self.batch_size == "auto" else self.batch_size
        batch_size = min(batch_size, n_train)
        if self.max_epochs == "auto":
            max_epochs = max(10, math.ceil(AUTO_STEPS / math.ceil(n_train / batch_size)))
        else:
            max_epochs = self.max_epochs
        return batch_size, max_epochs

    def _build_net(self, net_class, module, criterion, data: TrainingData, **kwargs):
        """A skorch net of ``net_class`` with the estimators' loaders and callbacks."""
        from skorch.dataset import Dataset
        from skorch.helper import predefined_split

        n_train = len(data.train[0])
        steps_per_epoch = math.ceil(n_train / data.batch_size)
        # Patience counts epochs, but never fewer than a tenth of the automatic
        # step budget: with one step per epoch, 20 epochs are 20 noisy steps.
        patience = max(self.n_iter_no_change, math.ceil(0.1 * AUTO_STEPS / steps_per_epoch))
        callbacks = build_callbacks(
            total_steps=data.max_epochs * steps_per_epoch,
            early_stopping=data.valid is not None,
            patience=patience,
            progress_bar=self.verbose >= 2,
        )
        optimizer_kwargs = {}
        if isinstance(self.optimizer, str):
            # The multi-tensor implementation of the built-in optimisers is
            # faster on CPU too; user-given classes receive no extra argument.
            optimizer_kwargs["optimizer__foreach"] = True
        valid = data.valid
        net_kwargs = dict(
            module=module,
            criterion=criterion,
            optimizer=resolve_optimizer(self.optimizer),
            lr=self.learning_rate,
            optimizer__param_groups=[("head*", {"weight_decay": 0.0})],
            optimizer__weight_decay=self.weight_decay,
            max_epochs=data.max_epochs,
            batch_size=data.batch_size,
            iterator_train=TensorBatchLoader,
            iterator_train__shuffle=True,
            iterator_valid=TensorBatchLoader,
            train_split=None if valid is None else predefined_split(Dataset(*valid)),
            callbacks=callbacks,
            device=self.device,
            verbose=int(self.verbose >= 1),
            aggregator_seed=data.seed,
            **optimizer_kwargs,
            **kwargs,
        )
        # Set by sk_mtbnn.distributed.fit_data_parallel in its worker processes:
        # it shards the loaders and adds the callback that averages the gradients.
        hook = getattr(self, "_net_kwargs_hook", None)
        return net_class(**(net_kwargs if hook is None else hook(net_kwargs)))

    def _sync_inference_stamp(self) -> None:
        """Mark the inference copy as in step with ``net_.module_`` (after writing both)."""
        self._inference_stamp = _stamps(self.net_.module_)

    def _inference(self):
        """The float64 inference copy of ``net_.module_``, rebuilt only if it was modified."""
        module = self.net_.module_
        stamp = _stamps(module)
        cached = getattr(self, "_inference_stamp", None)
        if stamp != cached:
            copy64 = inference_copy(module, self.device)
            if cached is not None and hasattr(module, "head") and cached[-1] == stamp[-1]:
                # The head is unchanged: keep its float64 refinement.
                copy64.head.load_state_dict(self._inference_module.head.state_dict())
            self._inference_module = copy64
            self._inference_stamp = stamp
        return self._inference_module

    def __getstate__(self):
        if "net_" in vars(self):
            self._inference()  # the cached copy in step with net_ before pickling
        return super().__getstate__()

    def __setstate__(self, state):
        super().__setstate__(state)
        if "net_" in vars(self):
            # Version counters restart in a new process; the copy was in step.
            self._inference_stamp = _stamps(self.net_.module_)

    def _warn_if_interrupted(self, max_epochs: int) -> None:
        """Record (and warn) when Ctrl-C ended training early.

        skorch ends training quietly on KeyboardInterrupt; early stopping
        uses the same exception, so an interruption is an early end that
        early stopping did not ask for. The fit then finishes on the weights
        reached (the heads are still refined), and ``training_interrupted_``
        says so.
        """
        stopper = dict(self.net_.callbacks_).get("early_stopping")
        stopped = stopper is not None and stopper.misses_ >= stopper.patience
        self.training_interrupted_ = self.n_epochs_ < max_epochs and not stopped
        if self.training_interrupted_:
            warnings.warn(
                f"Training was interrupted after {self.n_epochs_} of {max_epochs} epochs; the "
                "model is finalised on the weights reached (training_interrupted_=True). "
                "Refit to train fully.",
                UserWarning,
                stacklevel=3,
            )

    def _check_finite_module(self) -> None:
        if not all(torch.isfinite(p).all() for p in self.net_.module_.parameters()):
            raise RuntimeError(
                "Training diverged: the network's weights are not finite. Lower "
                f"learning_rate (now {self.learning_rate}) or standardise the targets."
            )

    @property
    def masks_(self):
        """Backbone masks per task and layer: ``masks_[t][l] = (weight, bias)`` (bool)."""
        check_fitted(self)
        if "net_" not in vars(self):
            raise AttributeError(
                "An ensemble has no masks_ of its own: read estimators_[i].masks_ of a member."
            )
        pairs = [
            (w.detach().cpu().numpy() > 0.5, b.detach().cpu().numpy() > 0.5)
            for w, b in self.net_.module_.backbone.masks()
        ]
        return [[(w[t], b[t]) for w, b in pairs] for t in range(self.n_tasks_)]

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "net_")
