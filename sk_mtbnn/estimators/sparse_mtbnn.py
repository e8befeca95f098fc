"""SparseMultiTaskBNNRegressor: the multi-task VBLL regressor and GP drop-in."""

from __future__ import annotations

import math
import numbers
from typing import NamedTuple

import numpy as np
import torch
from sklearn.base import BaseEstimator, MultiOutputMixin, RegressorMixin
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data

from .._training.callbacks import build_callbacks
from .._training.loader import TensorBatchLoader
from .._training.net import MultiTaskNet, TaskLosses
from .._validation import (
    check_choice,
    check_fraction,
    check_layer_sizes,
    check_positive_float,
    check_positive_int,
    check_regression_targets,
)
from ..aggregators import resolve_aggregator
from ..nn.backbone import ACTIVATIONS
from ..nn.blr import LinearStats, heldout_noise_var, linear_stats
from ..nn.covariance import COVARIANCES
from ..nn.heads import HEADS
from ..nn.network import MultiTaskNetwork
from ._gp_api import GPLikeRegressorMixin
from ._torch_utils import inference_copy, iter_chunks, predict_in_chunks, resolve_optimizer

#: Number of optimiser steps that ``max_epochs='auto'`` aims at.
AUTO_STEPS = 3000
#: Largest batch of ``batch_size='auto'``.
AUTO_BATCH = 128
#: Fewest held-out labels of a task for its noise to be chosen on them.
MIN_CALIBRATION_LABELS = 10


class _TrainingData(NamedTuple):
    """Standardised training data and the settings derived from it."""

    X: np.ndarray  # all rows with at least one label (float32, standardised)
    Y: np.ndarray
    train: tuple  # (X, Y) rows the network is trained on
    valid: tuple | None  # (X, Y) held-out rows, or None
    task_columns: list
    reg_weight: np.ndarray
    kl_weight: np.ndarray
    n_labelled: np.ndarray  # labels per task in the training rows
    seed: int
    params: dict


class SparseMultiTaskBNNRegressor(
    GPLikeRegressorMixin, MultiOutputMixin, RegressorMixin, BaseEstimator
):
    """Multi-task Bayesian neural-network regressor with VBLL heads.

    A shared MLP backbone with one binary mask per task and weight (all ones
    until pruned), optional per-task branches and task-specific input
    columns, and one variational Bayesian last layer (VBLL) per task.
    Tasks are the columns of ``y``; NaN marks a missing label. Predictions
    follow :class:`~sklearn.gaussian_process.GaussianProcessRegressor`'s
    contract (``predict(X, return_std=True)``, ``return_cov``,
    ``sample_y``), so it replaces a GP in existing code, at a cost linear in
    the number of samples.

    Read more in the :ref:`User Guide <replacing_a_gp>`.

    Parameters
    ----------
    hidden_layer_sizes : tuple of int, default=(128, 128)
        Widths of the shared backbone's hidden layers.
    branch_layer_sizes : tuple of int, default=()
        Widths of each task's own branch layers between the backbone and
        its head. Empty: the heads sit directly on the backbone.
    activation : {"silu", "tanh", "relu", "gelu", "elu", "softplus"}, default="silu"
        Activation of backbone and branches. Smooth activations give smooth,
        GP-like interpolants.
    task_inputs : dict or list, default=None
        Per task, the input columns that bypass the backbone and enter that
        task's branch (e.g. test conditions that only one property depends
        on). A dict ``{task: columns}`` or a list of one column list per task;
        columns are integer positions, or names when ``X`` is a DataFrame.
    head : {"gaussian", "student_t"}, default="gaussian"
        Observation model of the VBLL heads. ``"student_t"`` (Normal-Gamma
        noise, Student-t predictive) for heavy-tailed targets.
    covariance : {"dense", "diagonal", "lowrank"}, default="dense"
        Parameterisation of each head's weight covariance.
    covariance_rank : int, default=2
        Rank of the low-rank part when ``covariance="lowrank"``.
    prior_scale : float, default=1.0
        Prior ``N(0, prior_scale / D)`` of the ``D`` head weights (bias
        included).
    wishart_scale : float, default=0.01
        Scale of the inverse-Wishart prior on the noise variance (in units of
        the normalised targets when ``normalize_y=True``).
    wishart_dof : float, default=1.0
        Degrees of freedom of that prior.
    reg_weight : "auto" or float, default="auto"
        Weight of each head's KL and noise-prior term per training point.
        ``"auto"`` is ``1 / N_t`` for a task with ``N_t`` labels, which makes the
        loss the per-sample negative ELBO.
    aggregator : str or object, default="mean"
        How task gradients on the shared backbone are combined: ``"mean"``
        (linear scalarisation), ``"pcgrad"``, ``"task_sampling"`` (one task
        per step, drawn in proportion to its labels),
        ``"uniform_task_sampling"``, a
        :class:`~sk_mtbnn.aggregators.GradientAggregator`, or any
        ``torchjd.aggregation`` aggregator (with the ``torchjd`` extra).
    optimizer : {"adamw", "adam", "sgd"} or torch optimizer class, default="adamw"
        Optimiser of all parameters.
    learning_rate : float, default=3e-3
        Initial learning rate; it follows a cosine decay to zero over the
        training.
    weight_decay : float, default=1e-4
        Decoupled weight decay on backbone and branch weights (heads are
        regularised by their prior instead).
    max_epochs : int or "auto", default="auto"
        Number of passes over the data. ``"auto"`` aims at about
        ``AUTO_STEPS`` optimiser steps (at least 10 epochs), so small data
        sets get enough steps and large ones few passes.
    batch_size : int or "auto", default="auto"
        Mini-batch size; ``"auto"`` is ``min(128, n_samples)``.
    validation_fraction : float or None, default=0.2
        Fraction of the rows held out for early stopping on the predictive
        negative log-likelihood (the best epoch's weights are restored) and
        for choosing the noise level (see ``refine_head``). None trains for
        ``max_epochs`` on all rows, which overfits small data sets: their
        bands come out too narrow.
    n_iter_no_change : int, default=20
        Patience of early stopping, in epochs (never fewer than a tenth of
        ``AUTO_STEPS`` optimiser steps).
    refine_head : bool, default=True
        After training, set each head's posterior to its closed-form optimum
        given the final features and *all* labelled rows (exact for
        ``"dense"``, mean-field for ``"diagonal"``, the mean only for
        ``"lowrank"``; the conjugate Normal-Gamma update for
        ``"student_t"``). With a validation split, a Gaussian head's noise is
        first chosen to maximise the held-out likelihood (tasks with at
        least ``MIN_CALIBRATION_LABELS`` held-out labels).
    normalize_y : bool, default=True
        Standardise each task's targets (over its labelled entries) for
        training; predictions are returned in the original units.
    device : str, default="cpu"
        Torch device for training and prediction.
    random_state : int, RandomState instance or None, default=None
        Seeds initialisation, shuffling, the validation split and the
        aggregator; an int gives reproducible fits.
    verbose : int, default=0
        0 silent; 1 prints skorch's table of epochs; 2 adds a progress bar.

    Attributes
    ----------
    n_tasks_ : int
        Number of tasks (columns of y).
    net_ : skorch.NeuralNet
        The trained skorch net; ``net_.module_`` is the torch network.
    history_ : skorch.History
        Per-epoch training (and validation) losses.
    masks_ : list of list of tuple of ndarray
        ``masks_[t][l]`` is ``(weight_mask, bias_mask)`` (bool) of backbone
        layer ``l`` for task ``t``.
    noise_std_ : ndarray of shape (n_tasks,)
        Fitted observation-noise standard deviation per task, units of y.
    elbo_ : float
        Evidence lower bound of the training data at the end of training
        (summed over tasks, in nats, units of y): the analogue of
        GaussianProcessRegressor's ``log_marginal_likelihood_value_``.
    n_epochs_ : int
        Number of epochs trained.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of features seen during fit, when ``X`` has string column names.

    See Also
    --------
    sklearn.gaussian_process.GaussianProcessRegressor : The exact GP this replaces.
    sk_mtbnn.BayesAggMTLRegressor : Multi-task regressor trained with BayesAgg-MTL.
    sk_mtbnn.IterativeMagnitudePruning : Per-task sparse subnetworks of the backbone.

    References
    ----------
    .. [1] J. Harrison, J. Willes, J. Snoek. "Variational Bayesian Last
       Layers", ICLR 2024.
    .. [2] F. Xiong, B. Wang, C. Li, J. Yin, H. Wang. "A comprehensive
       multi-source uncertainty quantification method for RANS-CFD based on
       sparse multi-task deep active learning", Aerospace Science and
       Technology 165:110483, 2025.
    .. [3] T. Yu et al. "Gradient Surgery for Multi-Task Learning",
       NeurIPS 2020.

    Examples
    --------
    >>> import numpy as np
    >>> from sk_mtbnn import SparseMultiTaskBNNRegressor
    >>> rng = np.random.RandomState(0)
    >>> X = rng.uniform(-3, 3, size=(200, 1))
    >>> y = np.column_stack([np.sin(X[:, 0]), np.cos(X[:, 0])]) + 0.1 * rng.randn(200, 2)
    >>> y[::3, 1] = np.nan  # a third of task 1's labels are missing
    >>> reg = SparseMultiTaskBNNRegressor(max_epochs=50, random_state=0).fit(X, y)
    >>> mean, std = reg.predict(X[:5], return_std=True)
    >>> mean.shape, std.shape
    ((5, 2), (5, 2))
    >>> reg.sample_y(X[:5], n_samples=3).shape
    (5, 2, 3)
    """

    def __init__(
        self,
        hidden_layer_sizes=(128, 128),
        branch_layer_sizes=(),
        activation="silu",
        task_inputs=None,
        head="gaussian",
        covariance="dense",
        covariance_rank=2,
        prior_scale=1.0,
        wishart_scale=1e-2,
        wishart_dof=1.0,
        reg_weight="auto",
        aggregator="mean",
        optimizer="adamw",
        learning_rate=3e-3,
        weight_decay=1e-4,
        max_epochs="auto",
        batch_size="auto",
        validation_fraction=0.2,
        n_iter_no_change=20,
        refine_head=True,
        normalize_y=True,
        device="cpu",
        random_state=None,
        verbose=0,
    ):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.branch_layer_sizes = branch_layer_sizes
        self.activation = activation
        self.task_inputs = task_inputs
        self.head = head
        self.covariance = covariance
        self.covariance_rank = covariance_rank
        self.prior_scale = prior_scale
        self.wishart_scale = wishart_scale
        self.wishart_dof = wishart_dof
        self.reg_weight = reg_weight
        self.aggregator = aggregator
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.refine_head = refine_head
        self.normalize_y = normalize_y
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------------ fit
    def fit(self, X, y):
        """Fit the network to ``X`` and the (possibly partly missing) targets ``y``.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)
            Training inputs; standardised internally.
        y : array-like of shape (n_samples,) or (n_samples, n_tasks)
            Targets, one column per task; NaN marks a missing label. Each
            task's loss uses only its labelled rows.

        Returns
        -------
        self : SparseMultiTaskBNNRegressor
            The fitted estimator.
        """
        data = self._prepare(X, y)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(data.seed)
            module = self._build_module(data)
            self._train(module, data)
        return self

    def _prepare(self, X, y) -> _TrainingData:
        """Validate and standardise the data, split off validation rows."""
        X = validate_data(self, X, reset=True, dtype=np.float64, ensure_min_samples=2)
        Y = check_regression_targets(y, X, type(self).__name__)
        self.n_tasks_ = Y.shape[1]
        task_columns = self._resolve_task_inputs(X.shape[1])
        seed = int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))
        keep = ~np.all(np.isnan(Y), axis=1)  # rows without any label teach nothing
        X, Y = X[keep], Y[keep]
        if len(X) < 2:
            raise ValueError(
                f"Only {len(X)} row(s) of y carry a label (the others are all NaN); at least "
                "2 labelled rows are needed."
            )
        params = self._check_params(len(X))
        self._x_mean = X.mean(0)
        self._x_scale = _nonzero(X.std(0))
        if self.normalize_y:
            self._y_mean = np.nanmean(Y, axis=0)
            self._y_scale = _nonzero(np.nanstd(Y, axis=0))
        else:
            self._y_mean = np.zeros(self.n_tasks_)
            self._y_scale = np.ones(self.n_tasks_)
        X_all = ((X - self._x_mean) / self._x_scale).astype(np.float32)
        Y_all = ((Y - self._y_mean) / self._y_scale).astype(np.float32)

        valid = None
        X_train, Y_train = X_all, Y_all
        if params["validation_fraction"] is not None:
            X_train, Xv, Y_train, Yv = train_test_split(
                X_all, Y_all, test_size=params["validation_fraction"], random_state=seed
            )
            valid = (Xv, Yv)
        n_labelled = (~np.isnan(Y_train)).sum(0)
        if np.any(n_labelled == 0):
            raise ValueError(
                "After holding out validation_fraction of the rows, "
                f"task {int(np.argmin(n_labelled))} has no training label left. "
                "Lower validation_fraction or set it to None."
            )
        if params["reg_weight"] == "auto":
            reg_weight = 1.0 / n_labelled
            # Weight of the KL term against the full-data likelihood: 1 for
            # the plain ELBO, N_t * reg_weight otherwise.
            kl_weight = np.ones(self.n_tasks_)
        else:
            reg_weight = np.full(self.n_tasks_, params["reg_weight"])
            kl_weight = reg_weight * (~np.isnan(Y_all)).sum(0)
        return _TrainingData(
            X_all,
            Y_all,
            (X_train, Y_train),
            valid,
            task_columns,
            reg_weight,
            kl_weight,
            n_labelled,
            seed,
            params,
        )

    def _train(self, module: MultiTaskNetwork, data: _TrainingData, max_epochs=None) -> None:
        """Train ``module`` on ``data`` through a new skorch net (``net_``)."""
        params = dict(data.params)
        if max_epochs is not None:
            params["max_epochs"] = max_epochs
        self.net_ = self._build_net(module, data.reg_weight, len(data.train[0]), data.valid, params)
        self.net_.aggregator.reset(data.n_labelled, torch.Generator().manual_seed(data.seed))
        self.net_.fit(*data.train)
        self._after_training(data)

    def _check_params(self, n_samples: int) -> dict:
        check_layer_sizes(self.hidden_layer_sizes, "hidden_layer_sizes")
        check_layer_sizes(self.branch_layer_sizes, "branch_layer_sizes")
        check_choice(self.activation, "activation", sorted(ACTIVATIONS))
        check_choice(self.head, "head", HEADS)
        check_choice(self.covariance, "covariance", COVARIANCES)
        check_positive_int(self.covariance_rank, "covariance_rank")
        check_positive_float(self.prior_scale, "prior_scale")
        check_positive_float(self.wishart_scale, "wishart_scale")
        check_positive_float(self.wishart_dof, "wishart_dof")
        check_positive_float(self.learning_rate, "learning_rate")
        check_positive_float(self.weight_decay, "weight_decay", allow_zero=True)
        check_positive_int(self.n_iter_no_change, "n_iter_no_change")
        resolve_optimizer(self.optimizer)
        params = {}
        if self.reg_weight == "auto":
            params["reg_weight"] = "auto"
        else:
            params["reg_weight"] = check_positive_float(self.reg_weight, "reg_weight")
        params["validation_fraction"] = (
            None
            if self.validation_fraction is None
            else check_fraction(self.validation_fraction, "validation_fraction")
        )
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

    def _resolve_task_inputs(self, n_features: int) -> list[list[int]]:
        """Task-specific columns as integer positions, one list per task."""
        spec = self.task_inputs
        if spec is None:
            return [[] for _ in range(self.n_tasks_)]
        if isinstance(spec, dict):
            lists = [[] for _ in range(self.n_tasks_)]
            for task, cols in spec.items():
                if not (isinstance(task, numbers.Integral) and 0 <= task < self.n_tasks_):
                    raise ValueError(
                        f"task_inputs keys must be task indices in [0, {self.n_tasks_}); "
                        f"got {task!r}."
                    )
                lists[int(task)] = list(cols)
        else:
            lists = [list(cols) for cols in spec]
            if len(lists) != self.n_tasks_:
                raise ValueError(
                    f"task_inputs has {len(lists)} entries but y has {self.n_tasks_} tasks; "
                    "give one column list per task (or a dict {task: columns})."
                )
        names = list(getattr(self, "feature_names_in_", []))
        resolved = []
        for cols in lists:
            idx = []
            for c in cols:
                if isinstance(c, str):
                    if c not in names:
                        where = (
                            f"X's columns are {names}"
                            if names
                            else "X has no column names (pass a DataFrame, or integer positions)"
                        )
                        raise ValueError(f"task_inputs names column {c!r}, but {where}.")
                    idx.append(names.index(c))
                elif isinstance(c, numbers.Integral) and 0 <= c < n_features:
                    idx.append(int(c))
                else:
                    raise ValueError(
                        f"task_inputs column {c!r} is neither a column name of X nor an "
                        f"integer position in [0, {n_features})."
                    )
            resolved.append(sorted(set(idx)))
        if len({c for cols in resolved for c in cols}) == n_features:
            raise ValueError(
                "task_inputs routes every column of X around the backbone; leave at "
                "least one column for the shared backbone."
            )
        return resolved

    def _build_module(self, data: _TrainingData) -> MultiTaskNetwork:
        # The noise starts at the targets' spread (ALGORITHMS.md §1), not at
        # the original code's random e^-9..e^9.
        noise_std = float(np.nanmean(np.nanstd(data.train[1], axis=0))) or 1.0
        return MultiTaskNetwork(
            self.n_features_in_,
            self.n_tasks_,
            hidden_layer_sizes=tuple(self.hidden_layer_sizes),
            branch_layer_sizes=tuple(self.branch_layer_sizes),
            activation=self.activation,
            task_columns=data.task_columns,
            head=self.head,
            head_kwargs={
                "covariance": self.covariance,
                "rank": self.covariance_rank,
                "prior_scale": self.prior_scale,
                "wishart_scale": self.wishart_scale,
                "dof": self.wishart_dof,
                "noise_std": noise_std,
                "seed": data.seed,
            },
        )

    def _build_net(self, module, reg_weight, n_train, valid, params) -> MultiTaskNet:
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
        return MultiTaskNet(
            module=module,
            criterion=TaskLosses(torch.as_tensor(reg_weight, dtype=torch.float32)),
            optimizer=resolve_optimizer(self.optimizer),
            lr=self.learning_rate,
            optimizer__param_groups=[("head.*", {"weight_decay": 0.0})],
            optimizer__weight_decay=self.weight_decay,
            **_foreach_kwargs(self.optimizer),
            max_epochs=params["max_epochs"],
            batch_size=batch_size,
            iterator_train=TensorBatchLoader,
            iterator_train__shuffle=True,
            iterator_valid=TensorBatchLoader,
            train_split=None if valid is None else predefined_split(Dataset(*valid)),
            callbacks=callbacks,
            device=self.device,
            verbose=int(self.verbose >= 1),
            aggregator=resolve_aggregator(self.aggregator),
        )

    def _after_training(self, data: _TrainingData) -> None:
        self.history_ = self.net_.history
        self.n_epochs_ = len(self.history_)
        module = self.net_.module_
        if not all(torch.isfinite(p).all() for p in module.parameters()):
            raise RuntimeError(
                "Training diverged: the network's weights are not finite. Lower "
                f"learning_rate (now {self.learning_rate}) or keep normalize_y=True."
            )
        module.backbone.apply_masks_to_weights()
        head = module.head
        if self.refine_head:
            self._refine_head(data)
        with torch.no_grad():
            self.noise_std_ = np.sqrt(head.noise_var().double().cpu().numpy()) * self._y_scale
        self.elbo_ = self._training_elbo(data.X, data.Y)

    def _refine_head(self, data: _TrainingData) -> None:
        """Closed-form head posterior given the final features (``refine_head``).

        Computed in float64 on a copy, then written back into the network.
        """
        module = inference_copy(self.net_.module_)
        head = module.head
        train = _head_statistics(module, *data.train)
        stats = train
        if data.valid is not None:
            Xv, Yv = (torch.as_tensor(a, dtype=torch.float64) for a in data.valid)
            with torch.no_grad():
                phi_valid = module(Xv)
            if self.head == "gaussian":
                noise_var = heldout_noise_var(
                    train,
                    phi_valid,
                    Yv,
                    head.prior_var,
                    head.noise_var().detach(),
                    MIN_CALIBRATION_LABELS,
                )
                with torch.no_grad():
                    head.log_noise_std.copy_(0.5 * torch.log(noise_var))
            stats = train + linear_stats(phi_valid, Yv)
        head.condition_on(stats, torch.as_tensor(data.kl_weight, dtype=torch.float64))
        with torch.no_grad():
            for target, source in zip(self.net_.module_.head.parameters(), head.parameters()):
                target.copy_(source.to(target.dtype))

    def _training_elbo(self, Xs, Ys) -> float:
        """ELBO of the training targets in the units of y (nats)."""
        module = inference_copy(self.net_.module_)
        total = 0.0
        with torch.no_grad():
            for x, y in iter_chunks(Xs, Ys):
                lab = ~torch.isnan(y)
                nll = module.head.expected_nll(module(x), torch.where(lab, y, 0.0))
                total -= float((nll * lab.T).sum())
            total -= float(module.head.kl_divergence().sum())
        # The log-likelihood of standardised targets, back in units of y.
        return total - float(np.sum((~np.isnan(Ys)).sum(0) * np.log(self._y_scale)))

    # ---------------------------------------------------------- inference
    def _inference(self):
        check_is_fitted(self)
        return inference_copy(self.net_.module_, self.device)

    def _scaled_tensor(self, X) -> torch.Tensor:
        return torch.as_tensor((X - self._x_mean) / self._x_scale, dtype=torch.float64)

    def _moments(self, X):
        module = self._inference()
        pred = predict_in_chunks(lambda x: module.predict(x), self._scaled_tensor(X), self.device)
        mean = pred[0].T * self._y_scale + self._y_mean
        scale2 = self._y_scale**2
        return mean, pred[1].T * scale2, pred[2].T * scale2

    def _joint_covariance(self, X):
        module = self._inference()
        with torch.no_grad():
            phi = module(self._scaled_tensor(X).to(self.device))
            cov = module.head.joint_covariance(phi).cpu().numpy()  # (T, m, m)
        return np.moveaxis(cov, 0, -1) * self._y_scale**2

    def _samples(self, X, n_samples, generator):
        module = self._inference()
        with torch.no_grad():
            phi = module(self._scaled_tensor(X).to(self.device))
            draws = module.head.sample(phi, n_samples, generator).cpu().numpy()  # (n, T, m)
        draws = draws * self._y_scale[:, None] + self._y_mean[:, None]
        return np.transpose(draws, (2, 1, 0))

    @property
    def masks_(self):
        """Backbone masks per task and layer: ``masks_[t][l] = (weight, bias)``."""
        check_is_fitted(self)
        pairs = [
            (w.detach().cpu().numpy() > 0.5, b.detach().cpu().numpy() > 0.5)
            for w, b in self.net_.module_.backbone.masks()
        ]
        return [[(w[t], b[t]) for w, b in pairs] for t in range(self.n_tasks_)]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = True
        return tags

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "net_")


def _head_statistics(module, X: np.ndarray, Y: np.ndarray) -> LinearStats:
    """Sufficient statistics of the head inputs, accumulated over row chunks."""
    stats = None
    with torch.no_grad():
        for x, y in iter_chunks(X, Y):
            part = linear_stats(module(x), y)
            stats = part if stats is None else stats + part
    return stats


def _foreach_kwargs(optimizer) -> dict:
    # The multi-tensor implementation of the built-in optimisers is faster on
    # CPU too; user-given optimiser classes receive no extra argument.
    return {"optimizer__foreach": True} if isinstance(optimizer, str) else {}


def _nonzero(scale: np.ndarray) -> np.ndarray:
    """Replace zero (constant-column) scales by 1, as scikit-learn's scalers do."""
    scale = np.asarray(scale, dtype=np.float64).copy()
    scale[~np.isfinite(scale) | (scale < 10 * np.finfo(np.float64).eps)] = 1.0
    return scale
