"""Training plumbing shared by every estimator: settings, splits, the skorch net."""

from __future__ import annotations

import math
from contextlib import contextmanager
from typing import NamedTuple

import numpy as np
import torch
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state

from .._training.callbacks import build_callbacks
from .._training.loader import TensorBatchLoader
from .._validation import (
    check_choice,
    check_fraction,
    check_layer_sizes,
    check_positive_float,
    check_positive_int,
)
from ..nn.backbone import ACTIVATIONS
from ._torch_utils import resolve_optimizer


class TrainingData(NamedTuple):
    """Standardised training data and the settings derived from it.

    The estimators' ``_prepare`` returns it; ``_build_module`` and ``_train``
    take it, so that a meta-estimator (pruning) can train the same network
    several times on the same data.
    """

    X: np.ndarray  # all rows with at least one label (float32, standardised)
    Y: np.ndarray
    train: tuple  # (X, Y) rows the network is trained on
    valid: tuple | None  # (X, Y) held-out rows, or None
    n_labelled: np.ndarray  # labels per task in the training rows
    seed: int
    params: dict


#: Number of optimiser steps that ``max_epochs='auto'`` aims at.
AUTO_STEPS = 3000
#: Largest batch of ``batch_size='auto'``.
AUTO_BATCH = 128


@contextmanager
def seeded(seed: int):
    """Seed torch's global generator for the block, then restore its state.

    Network initialisation and shuffling draw from it; the user's own
    generator state is left as it was.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def nonzero_scale(scale: np.ndarray) -> np.ndarray:
    """Replace zero (constant-column) scales by 1, as scikit-learn's scalers do."""
    scale = np.asarray(scale, dtype=np.float64).copy()
    scale[~np.isfinite(scale) | (scale < 10 * np.finfo(np.float64).eps)] = 1.0
    return scale


class NetworkEstimatorMixin:
    """Settings, validation split and skorch net of the network estimators.

    Expects the parameters ``hidden_layer_sizes``, ``activation``,
    ``optimizer``, ``learning_rate``, ``weight_decay``, ``max_epochs``,
    ``batch_size``, ``validation_fraction``, ``n_iter_no_change``, ``device``,
    ``random_state`` and ``verbose``.
    """

    def _fit(self, X, y):
        """Prepare the data, build the network under the fit's seed, train it."""
        data = self._prepare(X, y)
        with seeded(data.seed):
            module = self._build_module(data)
            self._train(module, data)
        return self

    def _draw_seed(self) -> int:
        return int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))

    def _standardise_X(self, X: np.ndarray) -> np.ndarray:
        """Fit the input standardisation on ``X`` and apply it (float32)."""
        self._x_mean = X.mean(0)
        self._x_scale = nonzero_scale(X.std(0))
        return ((X - self._x_mean) / self._x_scale).astype(np.float32)

    def _scaled_tensor(self, X) -> torch.Tensor:
        return torch.as_tensor((X - self._x_mean) / self._x_scale, dtype=torch.float64)

    def _check_training_params(self, n_samples: int) -> dict:
        """Validate the shared settings; resolve ``'auto'`` batch size and epochs."""
        check_layer_sizes(self.hidden_layer_sizes, "hidden_layer_sizes")
        check_choice(self.activation, "activation", sorted(ACTIVATIONS))
        check_positive_float(self.learning_rate, "learning_rate")
        check_positive_float(self.weight_decay, "weight_decay", allow_zero=True)
        check_positive_int(self.n_iter_no_change, "n_iter_no_change")
        resolve_optimizer(self.optimizer)
        params = {
            "validation_fraction": None
            if self.validation_fraction is None
            else check_fraction(self.validation_fraction, "validation_fraction")
        }
        n_train = n_samples
        if params["validation_fraction"] is not None:
            n_train = max(1, int(n_samples * (1 - params["validation_fraction"])))
        if self.batch_size == "auto":
            params["batch_size"] = min(AUTO_BATCH, n_train)
        else:
            params["batch_size"] = check_positive_int(self.batch_size, "batch_size")
        if self.max_epochs == "auto":
            steps_per_epoch = math.ceil(n_train / params["batch_size"])
            params["max_epochs"] = max(10, math.ceil(AUTO_STEPS / steps_per_epoch))
        else:
            params["max_epochs"] = check_positive_int(self.max_epochs, "max_epochs")
        return params

    @staticmethod
    def _split(X, Y, params: dict, seed: int, stratify=None):
        """Training rows and held-out rows (or None) for early stopping."""
        if params["validation_fraction"] is None:
            return (X, Y), None
        X_train, X_valid, Y_train, Y_valid = train_test_split(
            X, Y, test_size=params["validation_fraction"], random_state=seed, stratify=stratify
        )
        return (X_train, Y_train), (X_valid, Y_valid)

    def _build_net(self, net_class, module, criterion, n_train, valid, params, **kwargs):
        """A skorch net of ``net_class`` with the estimators' loaders and callbacks."""
        from skorch.dataset import Dataset
        from skorch.helper import predefined_split

        batch_size = min(params["batch_size"], n_train)
        steps_per_epoch = math.ceil(n_train / batch_size)
        # Patience counts epochs, but never fewer than a tenth of the automatic
        # step budget: with one step per epoch, 20 epochs are 20 noisy steps.
        patience = max(self.n_iter_no_change, math.ceil(0.1 * AUTO_STEPS / steps_per_epoch))
        callbacks = build_callbacks(
            total_steps=params["max_epochs"] * steps_per_epoch,
            early_stopping=valid is not None,
            patience=patience,
            progress_bar=self.verbose >= 2,
        )
        optimizer_kwargs = {}
        if isinstance(self.optimizer, str):
            # The multi-tensor implementation of the built-in optimisers is
            # faster on CPU too; user-given classes receive no extra argument.
            optimizer_kwargs["optimizer__foreach"] = True
        return net_class(
            module=module,
            criterion=criterion,
            optimizer=resolve_optimizer(self.optimizer),
            lr=self.learning_rate,
            optimizer__param_groups=[("head*", {"weight_decay": 0.0})],
            optimizer__weight_decay=self.weight_decay,
            max_epochs=params["max_epochs"],
            batch_size=batch_size,
            iterator_train=TensorBatchLoader,
            iterator_train__shuffle=True,
            iterator_valid=TensorBatchLoader,
            train_split=None if valid is None else predefined_split(Dataset(*valid)),
            callbacks=callbacks,
            device=self.device,
            verbose=int(self.verbose >= 1),
            **optimizer_kwargs,
            **kwargs,
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
        from sklearn.utils.validation import check_is_fitted

        check_is_fitted(self)
        pairs = [
            (w.detach().cpu().numpy() > 0.5, b.detach().cpu().numpy() > 0.5)
            for w, b in self.net_.module_.backbone.masks()
        ]
        return [[(w[t], b[t]) for w, b in pairs] for t in range(self.n_tasks_)]

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "net_")
