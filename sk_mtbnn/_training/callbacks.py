"""skorch callbacks used by the estimators."""

from __future__ import annotations

import math
import warnings

import numpy as np
import torch
from skorch.callbacks import Callback, EarlyStopping, LRScheduler

#: Above this learning rate training warns: no optimiser here is stable that far up.
MAX_USUAL_LEARNING_RATE = 1.0


class StopOnDivergence(Callback):
    """Raise a clear error as soon as training stops being finite.

    The loss is checked after every training step and the weights after an
    epoch's last step (a check per step would cost ~10% of a small network's
    step), so that no computation on diverged weights -- a head's Cholesky
    factorisation at the epoch's end -- fails first with a message of its own.
    Before training, warns of a learning rate above 1 (whose fit may still
    end finite, e.g. BayesAgg's closed-form heads on a saturated backbone) and
    refuses inputs that overflowed in the standardisation.
    """

    def on_train_begin(self, net, X=None, y=None, **kwargs) -> None:
        if net.lr > MAX_USUAL_LEARNING_RATE:
            warnings.warn(
                f"learning_rate={net.lr:g} is far above the usual range of these optimisers "
                "(1e-4 to 1e-1): training may diverge (an error then says so) or end far from "
                "a good fit. Lower learning_rate.",
                UserWarning,
                stacklevel=2,
            )
        if isinstance(X, torch.Tensor | np.ndarray) and not bool(np.isfinite(np.asarray(X)).all()):
            raise ValueError(
                "X has entries too large to standardise (they overflow float32 once centred "
                "and scaled): rescale X, e.g. express its columns in other units."
            )

    def on_epoch_begin(self, net, dataset_train=None, **kwargs) -> None:
        n_rows = None if dataset_train is None else len(dataset_train)
        self.steps_left_ = None if n_rows is None else math.ceil(n_rows / net.batch_size)

    def on_batch_end(self, net, batch=None, training=False, loss=None, **kwargs) -> None:
        if not training:
            return
        if loss is not None and not bool(torch.isfinite(torch.as_tensor(loss)).all()):
            raise diverged_error(net, f"the loss is {float(torch.as_tensor(loss).mean())}")
        left = getattr(self, "steps_left_", None)
        self.steps_left_ = None if left is None else left - 1
        if left is not None and left > 1:
            return  # not the epoch's last step
        if not all(bool(torch.isfinite(p).all()) for p in net.module_.parameters()):
            raise diverged_error(net, "the weights are no longer finite")

    def on_epoch_end(self, net, **kwargs) -> None:
        loss = net.history[-1, "train_loss"]
        if not math.isfinite(loss):
            raise diverged_error(net, f"the loss is {loss}")


def diverged_error(net, what: str = "the weights or features are no longer finite"):
    """The error of a diverged training of ``net``: what to change (``learning_rate``)."""
    return RuntimeError(
        f"Training diverged at epoch {len(net.history)} ({what}). Lower learning_rate "
        f"(now {net.lr}) or standardise the targets (normalize_y=True)."
    )


class FitProgress(Callback):
    """One progress bar for the whole training: epochs, the last losses and the ETA.

    (skorch's ``ProgressBar`` draws one bar of batches per epoch.) The bar
    counts up to ``max_epochs``; early stopping ends it sooner.
    """

    def on_train_begin(self, net, **kwargs) -> None:
        from tqdm.auto import tqdm

        self.bar_ = tqdm(total=net.max_epochs, unit="epoch", desc="fit", leave=True)

    def on_epoch_end(self, net, **kwargs) -> None:
        row = net.history[-1]
        losses = {k: f"{row[k]:.4g}" for k in ("train_loss", "valid_loss") if k in row}
        self.bar_.set_postfix(losses, refresh=False)
        self.bar_.update(1)

    def on_train_end(self, net, **kwargs) -> None:
        self.bar_.close()


def progress_bar(total: int, desc: str, unit: str, show: bool):
    """A bar like :class:`FitProgress`'s over ``total`` steps (tqdm), or a silent one.

    The bar of ensemble members (``desc="ensemble"``) and of pruning rounds
    (``desc="pruning"``); ``show=False`` gives a disabled bar with the same
    methods (``update``, ``set_postfix``, ``close``, a context manager).
    """
    from tqdm.auto import tqdm

    return tqdm(total=total, unit=unit, desc=desc, leave=True, disable=not show)


def build_callbacks(
    *, total_steps: int, early_stopping: bool, patience: int, progress_bar: bool
) -> list:
    """Cosine learning-rate decay per step, divergence check, optional extras."""
    callbacks = [
        (
            "lr_schedule",
            LRScheduler(
                policy=torch.optim.lr_scheduler.CosineAnnealingLR,
                T_max=max(total_steps, 1),
                step_every="batch",
            ),
        ),
        ("divergence", StopOnDivergence()),
    ]
    if early_stopping:
        callbacks.append(
            (
                "early_stopping",
                EarlyStopping(monitor="valid_loss", patience=patience, load_best=True),
            )
        )
    if progress_bar:
        callbacks.append(("progress_bar", FitProgress()))
    return callbacks
