"""skorch callbacks used by the estimators."""

from __future__ import annotations

import math

import torch
from skorch.callbacks import Callback, EarlyStopping, LRScheduler


class StopOnDivergence(Callback):
    """Raise a clear error as soon as the training loss is not finite."""

    def on_epoch_end(self, net, **kwargs) -> None:
        loss = net.history[-1, "train_loss"]
        if not math.isfinite(loss):
            raise RuntimeError(
                f"Training diverged at epoch {len(net.history)} (the loss is {loss}). "
                f"Lower learning_rate (now {net.lr}) or standardise the targets "
                "(normalize_y=True)."
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
