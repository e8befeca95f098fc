"""BayesAggMTLRegressor: multi-task regression trained with BayesAgg-MTL."""

from __future__ import annotations

from typing import ClassVar

import torch

from .._docstrings import fill_doc
from .._param_validation import (
    LayerSizes,
    StrOptions,
    positive_float,
    positive_int,
    validate_params,
)
from .._training.blr_net import BayesAggRegressionNet
from .._training.net import TaskLosses
from ..aggregators import BayesAgg
from ..nn.network import MultiTaskNetwork
from ._base import TrainingData, layer_sizes, seeded
from ._constraints import BAYESAGG_CONSTRAINTS, ENSEMBLE_CONSTRAINTS, NETWORK_CONSTRAINTS
from ._prior import PriorModel
from ._regression import MultiTaskRegressorBase
from ._task_sharing import AdaptiveSharingMixin


@fill_doc
class BayesAggMTLRegressor(AdaptiveSharingMixin, MultiTaskRegressorBase):
    """Multi-task regressor trained with BayesAgg-MTL.

    A shared MLP whose last representation ``h`` feeds one linear head per
    task. The heads are exact Bayesian linear regressions on ``h`` (never
    trained by gradient): during training each batch's posterior has the
    previous epoch's full-data posterior as its prior, and the posterior
    induces a distribution over each task's per-sample gradient with respect
    to ``h``, whose moments are exact. The backbone is updated with the
    precision-weighted combination of the task gradients, per sample and per
    dimension (Eq. 7 of Achituve et al., 2024). After training, each head is
    conditioned on all labelled rows, with its noise chosen by held-out
    likelihood; the prediction contract is that of
    :class:`~sklearn.gaussian_process.GaussianProcessRegressor`.

    Read more in the :ref:`User Guide <bayesagg>`.

    Parameters
    ----------
    %(backbone_params)s
    gamma : float, default=1.0
        Prior variance of the head weights, ``N(0, gamma I)``.
    tau : float or "auto", default="auto"
        Noise standard deviation of the head posteriors during training, in
        units of the standardised targets. ``"auto"`` starts at 1 and, after
        every epoch, takes each task's residual standard deviation under its
        full-data posterior (the paper fixes it to 1, which on low-noise
        data makes the posteriors far too wide; measured in the closing
        note). The predictive noise is chosen again after training.
    s : float, default=0.3
        Precision exponent in (0, 1]: task gradient variances enter as
        ``var ** s``; ``s -> 0`` recovers the plain average. 0.3 is the
        paper's value for the UTKFace regression task; its default was 0.5.
    ls_epochs : int, default=1
        Warm-up epochs of linear scalarisation before BayesAgg starts.
    alpha : float, default=0.0
        %(known_noise)s
        The heads are trained and conditioned with the total noise chosen on
        held-out rows; ``alpha`` is then subtracted from it. Per-row known
        noise needs :class:`SparseMultiTaskBNNRegressor`'s evidence regime.
    %(sharing_param)s
    n_estimators : int, default=1
        %(ensemble_members)s
    optimizer : {"adamw", "adam", "sgd"} or torch optimizer class, default="adamw"
        Optimiser of the backbone.
    %(learning_rate_param)s
    weight_decay : float, default=1e-4
        Decoupled weight decay on the backbone weights.
    %(epochs_params)s
    validation_fraction : float or None, default=0.2
        Fraction of the rows held out for early stopping and for choosing the
        predictive noise.
    %(n_iter_no_change_param)s
    %(normalize_y_param)s
    %(regressor_run_params)s

    Attributes
    ----------
    %(fit_attributes)s
        ``net_.module_.head`` holds the heads' posteriors.
    task_weights_ : ndarray of shape (n_epochs_after_warm_up, n_tasks)
        BayesAgg's weight of each task per epoch, averaged over the samples
        where the task is labelled and over the dimensions of ``h``.
    %(noise_std_attribute)s
    elbo_ : float
        Log marginal likelihood of the training targets under the final
        heads (the ELBO is exact for a conditioned Bayesian linear head).
    %(sharing_attributes)s
    %(estimators_attribute)s
    %(masks_attribute)s
        All ones: BayesAgg needs one shared representation.
    %(feature_attributes)s

    See Also
    --------
    BayesAggMTLClassifier : The classification twin.
    SparseMultiTaskBNNRegressor : Accepts ``aggregator="bayesagg"`` with VBLL heads.

    %(bayesagg_reference)s

    Examples
    --------
    >>> import numpy as np
    >>> from sk_mtbnn import BayesAggMTLRegressor
    >>> rng = np.random.RandomState(0)
    >>> X = rng.uniform(-2, 2, size=(200, 2))
    >>> y = np.column_stack([np.sin(X[:, 0]), X[:, 1] ** 2]) + 0.1 * rng.randn(200, 2)
    >>> reg = BayesAggMTLRegressor(max_epochs=40, random_state=0).fit(X, y)
    >>> mean, std = reg.predict(X[:3], return_std=True)
    >>> mean.shape, reg.task_weights_.shape[1]
    ((3, 2), 2)
    """

    _supports_task_masks = False
    _parameter_constraints: ClassVar[dict] = {
        **NETWORK_CONSTRAINTS,
        **ENSEMBLE_CONSTRAINTS,
        # BayesAgg combines gradients on a learnt representation: at least one layer.
        "hidden_layer_sizes": [LayerSizes(min_length=1)],
        **BAYESAGG_CONSTRAINTS,
        "tau": [StrOptions({"auto"}), positive_float()],
        "alpha": [positive_float(allow_zero=True)],
        "sharing": [StrOptions({"auto", "all"})],
        "normalize_y": ["boolean"],
        "n_targets": [None, positive_int()],
    }

    def __init__(
        self,
        hidden_layer_sizes=(128, 128),
        *,
        activation="silu",
        gamma=1.0,
        tau="auto",
        s=0.3,
        ls_epochs=1,
        alpha=0.0,
        sharing="auto",
        n_estimators=1,
        optimizer="adamw",
        learning_rate=3e-3,
        weight_decay=1e-4,
        max_epochs="auto",
        batch_size="auto",
        validation_fraction=0.2,
        n_iter_no_change=20,
        normalize_y=True,
        n_targets=None,
        device="cpu",
        n_jobs=None,
        random_state=None,
        verbose=0,
    ):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.gamma = gamma
        self.tau = tau
        self.s = s
        self.ls_epochs = ls_epochs
        self.alpha = alpha
        self.sharing = sharing
        self.n_estimators = n_estimators
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.normalize_y = normalize_y
        self.n_targets = n_targets
        self.device = device
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.verbose = verbose

    def _check_param_combinations(self, X) -> None:
        super()._check_param_combinations(X)
        self._alpha = float(self.alpha)  # subtracted from the held-out noise after training

    def _build_module(self, data: TrainingData) -> MultiTaskNetwork:
        module = self._make_module(
            self.n_features_in_, self.n_tasks_, data.seed, private=self._private_slot(None)
        )
        for p in module.head.parameters():  # heads are closed-form posteriors
            p.requires_grad_(False)
        return module

    def _make_module(
        self, n_features: int, n_tasks: int, seed: int, private: bool = False
    ) -> MultiTaskNetwork:
        sizes = layer_sizes(self.hidden_layer_sizes)
        return MultiTaskNetwork(
            n_features,
            n_tasks,
            hidden_layer_sizes=sizes,
            activation=self.activation,
            head="gaussian",
            head_kwargs={
                "covariance": "dense",
                # prior variance prior_scale / D = gamma
                "prior_scale": self.gamma * (sizes[-1] + 1),
                "noise_std": 1.0 if self.tau == "auto" else self.tau,
                "seed": seed,
            },
            private_features=private,
        )

    def _prior_model(self, n_features: int) -> PriorModel:
        validate_params(self)
        n_tasks = self.n_targets or 1
        seed = self._draw_seed()
        with seeded(seed):
            module = self._make_module(n_features, n_tasks, seed)
        return PriorModel(module, n_tasks)

    def _net_spec(self, module, data: TrainingData):
        aggregator = BayesAgg(
            gamma=self.gamma, tau=self.tau, s_regression=self.s, ls_epochs=self.ls_epochs
        )
        # The heads are not trained by gradient: the criterion only gives the
        # validation loss (predictive NLL of the full-data posterior).
        criterion = TaskLosses(torch.zeros(self.n_tasks_))
        net_kwargs = {"aggregator": aggregator, "prior_var": self.gamma, "tau": self.tau}
        return BayesAggRegressionNet, criterion, net_kwargs

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.requires_fit = False  # predicts from the prior before fit, as GPR does
        return tags
