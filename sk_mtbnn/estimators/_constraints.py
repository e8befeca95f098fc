"""Parameter constraints shared by the network estimators (declarative, validated in fit)."""

from __future__ import annotations

import torch

from .._param_validation import (
    Integral,
    Interval,
    LayerSizes,
    Real,
    StrOptions,
    positive_float,
    positive_int,
)
from ..nn.backbone import ACTIVATIONS
from ._torch_utils import OPTIMIZERS

#: The training settings every network estimator has.
NETWORK_CONSTRAINTS: dict = {
    "hidden_layer_sizes": [LayerSizes()],
    "activation": [StrOptions(set(ACTIVATIONS))],
    "optimizer": [StrOptions(set(OPTIMIZERS)), type],
    "learning_rate": [positive_float()],
    "weight_decay": [positive_float(allow_zero=True)],
    "max_epochs": [StrOptions({"auto"}), positive_int()],
    "batch_size": [StrOptions({"auto"}), positive_int()],
    "validation_fraction": [None, Interval(Real, 0, 1, closed="neither")],
    "n_iter_no_change": [positive_int()],
    "device": [str, torch.device],
    "random_state": ["random_state"],
    "verbose": ["verbose"],
}

#: Deep ensembles of the regressors.
ENSEMBLE_CONSTRAINTS: dict = {
    "n_estimators": [StrOptions({"auto"}), positive_int()],
    "n_jobs": [None, Integral],
}

#: The settings of BayesAgg-MTL that both BayesAgg estimators have.
BAYESAGG_CONSTRAINTS: dict = {
    "gamma": [positive_float()],
    "s": [Interval(Real, 0, 1, closed="right")],
    "ls_epochs": [positive_int(0)],
}
