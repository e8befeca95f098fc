"""SparseMultiTaskBNNRegressor: the multi-task VBLL regressor and GP drop-in."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import torch
from sklearn.utils.validation import check_array

from .._docstrings import fill_doc
from .._param_validation import (
    LayerSizes,
    StrOptions,
    positive_float,
    positive_int,
    validate_params,
)
from .._training.net import MultiTaskNet, TaskLosses
from ..aggregators import resolve_aggregator
from ..aggregators.bayesagg import BayesAgg, check_bayesagg
from ..nn.covariance import COVARIANCES
from ..nn.heads import HEADS
from ..nn.network import MultiTaskNetwork
from ..nn.task_priors import TASK_PRIORS
from ._base import TrainingData, layer_sizes, seeded
from ._constraints import ENSEMBLE_CONSTRAINTS, NETWORK_CONSTRAINTS
from ._evidence_regime import EvidenceRegimeMixin
from ._prior import PriorModel
from ._reference import ReferenceMixin
from ._regression import MultiTaskRegressorBase
from ._task_inputs import resolve_task_inputs
from ._task_sharing import AdaptiveSharingMixin


@fill_doc
class SparseMultiTaskBNNRegressor(
    AdaptiveSharingMixin, ReferenceMixin, EvidenceRegimeMixin, MultiTaskRegressorBase
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
    %(hidden_layer_sizes_param)s
    branch_layer_sizes : tuple of int, default=()
        Widths of each task's own branch layers between the backbone and
        its head. Empty: the heads sit directly on the backbone.
    activation : {"silu", "tanh", "relu", "gelu", "elu", "softplus"}, default="silu"
        Activation of backbone and branches. Smooth activations give smooth,
        GP-like interpolants.
    residual : bool, default=False
        Residual backbone layers ``h + act(W h + b)`` (equal widths; the input first
        passes a fixed random orthonormal projection). With ``spectral_norm`` they make
        the representation distance preserving, so the last layer's uncertainty grows
        away from the data (SNGP, Liu et al. 2020; DUE, van Amersfoort et al. 2021).
    spectral_norm : float or None, default=None
        Soft spectral normalisation of every backbone weight,
        ``W / max(1, sigma_max(W) / c)`` with ``c = spectral_norm``.
    random_features : int or None, default=None
        A final layer of that many fixed random Fourier features of the
        representation (unit length scale), so that the heads approximate a
        GP with an RBF kernel on it.
    task_inputs : dict or list, default=None
        Per task, the input columns that bypass the backbone and enter that
        task's branch (e.g. test conditions that only one property depends
        on). A dict ``{task: columns}`` or a list of one column list per task;
        columns are integer positions, or names when ``X`` is a DataFrame.
    head : {"gaussian", "student_t", "heteroscedastic"}, default="gaussian"
        Observation model of the VBLL heads. ``"student_t"`` (Normal-Gamma
        noise, Student-t predictive) for heavy-tailed targets;
        ``"heteroscedastic"``: a Gaussian whose noise variance the network
        predicts per input and task (``log sigma_t(x)`` linear in the head
        features, with a floor), for targets whose noise varies; its noise is
        then the average over the training inputs in ``noise_std_``.
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
    head_prior : {"clustering", "gating", "hierarchical", "gumbel_softmax", \
            "group_sparsity"} or None, default=None
        A prior over the task heads that relates the tasks (seed 004;
        docs/algorithms.rst, section on task-relatedness priors), fitted by empirical
        Bayes on the final features when the heads are conditioned after training
        (``regime="network"``): a mixture of Gaussians with responsibilities (task
        clustering, Bakker & Heskes 2003), its gating by task features
        (``fit(..., task_features=F)``, ``F`` of shape ``(n_tasks, k)``), a shared-mean
        hierarchical prior, each task's prior a mixture of the other tasks' posteriors
        (Gumbel-Softmax relatedness, Shen et al. 2021), or a group-sparsity Gaussian
        scale mixture with a generalised-inverse-Gaussian hyperprior (Archambeau et al.
        2011). The fitted relatedness is ``task_similarity_``. None: independent heads.
    sharing : {"auto", "all"}, default="auto"
        %(sharing_choice)s
        With the small-data regime's untrained features, a task with 30
        labels or more uses its own when their evidence is higher by a nat;
        with trained features, the held-out labels decide.
        %(sharing_heldout)s
        It applies with a Gaussian head, no branch layers, task inputs,
        random features or ``head_prior`` (which relates the heads on the
        shared features), and a plain unpruned backbone of two layers or more
        with a ramp-like activation. ``"all"``: every task uses the shared
        network.
    aggregator : str or object, default="mean"
        %(aggregator_options)s
    n_estimators : int or "auto", default="auto"
        %(ensemble_members)s
        ``"auto"`` is 5 where the evidence regime fits the members (about
        0.1-0.5 s each up to 1,000 rows) and 1 for mini-batch training, whose
        members cost a full training each: set it (e.g. 5 with ``n_jobs=-1``)
        for distance-aware bands on large data. In an ensemble, a member whose
        random features were trained (see ``regime``) gets an untrained twin, the
        same member on its random features alone, whose uncertainty floors the
        ensemble's: trained features can extrapolate with confidence away from
        the data (docs/algorithms.rst, "Untrained twins").
    regime : {"auto", "evidence", "network"}, default="auto"
        How the network is fitted. ``"evidence"`` fits it the way a GP is fitted: the
        backbone becomes a random-feature map whose lengthscale, prior and noise
        variances maximise the evidence (type-II maximum likelihood) of all labelled
        rows, and from 100 rows on the features are also trained full-batch, kept only
        if their held-out likelihood is clearly better (docs/algorithms.rst, section
        "The small-data regime"). ``"network"`` trains the network by mini-batches (the
        settings below). ``"auto"`` takes ``"evidence"`` when there are at most 1,000
        labelled rows, ``max_epochs="auto"`` and the network allows it (at least two
        hidden layers, a ramp-like activation, Gaussian head with dense covariance, no
        branch layers, ``reg_weight="auto"``), and ``"network"`` otherwise; there it
        mixes in a random-feature reference (``reference_``).
    alpha : float or array-like of shape (n_samples,) or (n_samples, n_tasks), default=0.0
        %(known_noise)s
        Entries of an array follow the rows (and tasks) of ``y``; an array
        needs the evidence regime. With mini-batch training a scalar
        ``alpha`` is subtracted from the noise chosen on held-out rows.
    optimizer : {"adamw", "adam", "sgd"} or torch optimizer class, default="adamw"
        Optimiser of all parameters.
    %(learning_rate_param)s
    weight_decay : float, default=1e-4
        Decoupled weight decay on backbone and branch weights (heads are
        regularised by their prior instead).
    %(epochs_params)s
    validation_fraction : float or None, default=0.2
        Fraction of the rows held out for early stopping on the predictive negative
        log-likelihood (the best epoch's weights are restored) and for choosing the
        noise level (see ``refine_head``). None trains for ``max_epochs`` on all rows,
        which overfits small data sets: their bands come out too narrow.
    %(n_iter_no_change_param)s
    refine_head : bool, default=True
        After training, set each head's posterior to its closed-form optimum given the
        final features and *all* labelled rows (exact for ``"dense"``, mean-field for
        ``"diagonal"``, the mean only for ``"lowrank"``; the conjugate Normal-Gamma
        update for ``"student_t"``). With a validation split, a Gaussian head's noise is
        first chosen to maximise the held-out likelihood (tasks with at least 10
        held-out labels).
    %(normalize_y_param)s
    %(regressor_run_params)s

    Attributes
    ----------
    %(fit_attributes)s
    %(masks_attribute)s
    %(noise_std_attribute)s
    task_similarity_ : ndarray of shape (n_tasks, n_tasks)
        With ``head_prior``: the fitted relatedness of the tasks (1 on the
        diagonal for the clustering priors; see
        :func:`sk_mtbnn.plotting.plot_task_similarity`).
    %(shared_tasks_attribute)s
    sharing_gain_ : ndarray of shape (n_tasks,)
        Per task, what the shared features gain it per label over its
        private ones (nats; > 0: sharing helps it): the held-out log
        predictive density, or with untrained features the log evidence
        divided by the task's labels; NaN where the task had too few labels
        to compare.
    regime_ : {"evidence", "network"}
        The regime used (see ``regime``).
    %(reference_attributes)s
    log_marginal_likelihood_value_ : float
        With the evidence regime: the log marginal likelihood of the training
        targets given the final features (summed over tasks, nats, units of
        y), exact as GaussianProcessRegressor's attribute of that name.
    elbo_ : float
        Evidence lower bound of the training data at the end of training
        (summed over tasks, in nats, units of y): the analogue of
        GaussianProcessRegressor's ``log_marginal_likelihood_value_``.
    %(estimators_attribute)s
    %(feature_attributes)s

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

    #: As GaussianProcessRegressor, one labelled row is enough (the prior plus one observation).
    _min_labelled_rows = 1
    _parameter_constraints: ClassVar[dict] = {
        **NETWORK_CONSTRAINTS,
        **ENSEMBLE_CONSTRAINTS,
        "branch_layer_sizes": [LayerSizes()],
        "task_inputs": [None, dict, list, tuple],
        "head": [StrOptions(set(HEADS))],
        "covariance": [StrOptions(set(COVARIANCES))],
        "covariance_rank": [positive_int()],
        "prior_scale": [positive_float()],
        "wishart_scale": [positive_float()],
        "wishart_dof": [positive_float()],
        "reg_weight": [StrOptions({"auto"}), positive_float()],
        "aggregator": "no_validation",  # a name or an object: resolve_aggregator checks it
        "refine_head": ["boolean"],
        "normalize_y": ["boolean"],
        "n_targets": [None, positive_int()],
        "regime": [StrOptions({"auto", "evidence", "network"})],
        "residual": ["boolean"],
        "spectral_norm": [None, positive_float()],
        "random_features": [None, positive_int()],
        "head_prior": [None, StrOptions(set(TASK_PRIORS))],
        "sharing": [StrOptions({"auto", "all"})],
        "alpha": [positive_float(allow_zero=True), "array-like"],
    }

    def __init__(
        self,
        hidden_layer_sizes=(128, 128),
        *,
        branch_layer_sizes=(),
        activation="silu",
        residual=False,
        spectral_norm=None,
        random_features=None,
        task_inputs=None,
        head="gaussian",
        covariance="dense",
        covariance_rank=2,
        prior_scale=1.0,
        wishart_scale=1e-2,
        wishart_dof=1.0,
        reg_weight="auto",
        head_prior=None,
        sharing="auto",
        aggregator="mean",
        n_estimators="auto",
        regime="auto",
        alpha=0.0,
        optimizer="adamw",
        learning_rate=3e-3,
        weight_decay=1e-4,
        max_epochs="auto",
        batch_size="auto",
        validation_fraction=0.2,
        n_iter_no_change=20,
        refine_head=True,
        normalize_y=True,
        n_targets=None,
        device="cpu",
        n_jobs=None,
        random_state=None,
        verbose=0,
    ):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.branch_layer_sizes = branch_layer_sizes
        self.activation = activation
        self.residual = residual
        self.spectral_norm = spectral_norm
        self.random_features = random_features
        self.task_inputs = task_inputs
        self.head = head
        self.covariance = covariance
        self.covariance_rank = covariance_rank
        self.prior_scale = prior_scale
        self.wishart_scale = wishart_scale
        self.wishart_dof = wishart_dof
        self.reg_weight = reg_weight
        self.head_prior = head_prior
        self.sharing = sharing
        self.aggregator = aggregator
        self.n_estimators = n_estimators
        self.regime = regime
        self.alpha = alpha
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.refine_head = refine_head
        self.normalize_y = normalize_y
        self.n_targets = n_targets
        self.device = device
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------------ fit
    def _check_param_combinations(self, X) -> None:
        super()._check_param_combinations(X)
        self._task_columns = resolve_task_inputs(
            self.task_inputs, self.n_tasks_, X.shape[1], getattr(self, "feature_names_in_", None)
        )
        resolve_aggregator(self.aggregator)  # a clear error for an unknown one
        self._task_features = self._check_task_features()
        if self.head_prior is not None and self.head == "student_t":
            raise ValueError(
                "head_prior relates Gaussian heads: use head='gaussian' (or 'heteroscedastic') "
                "with a head_prior, or head_prior=None with head='student_t'."
            )
        self._alpha = self._check_alpha()

    def _check_task_features(self):
        features = getattr(self, "_task_features_input", None)
        if self.head_prior != "gating":
            if features is not None:
                raise ValueError("task_features is used by head_prior='gating' only.")
            return None
        if features is None:
            raise ValueError(
                "head_prior='gating' needs task features: fit(X, y, task_features=F) with F "
                f"of shape ({self.n_tasks_}, n_task_features)."
            )
        features = check_array(features, dtype=np.float64, input_name="task_features")
        if features.shape[0] != self.n_tasks_:
            raise ValueError(
                f"task_features has {features.shape[0]} rows but y has {self.n_tasks_} tasks: "
                "give one row of features per task."
            )
        return torch.as_tensor(features)

    def _build_module(self, data: TrainingData) -> MultiTaskNetwork:
        # The noise starts at the targets' spread (docs/algorithms.rst, alg-vbll), not at
        # the original code's random e^-9..e^9.
        columns = [c[~np.isnan(c)] for c in data.train[1].T]
        spreads = [c.std() for c in columns if len(c) > 1]
        noise_std = float(np.mean(spreads)) if spreads else 1.0
        noise_std = noise_std if noise_std > 1e-8 else 1.0  # constant targets
        return self._make_module(
            self.n_features_in_, self.n_tasks_, self._task_columns, noise_std, data.seed
        )

    def _make_module(self, n_features, n_tasks, task_columns, noise_std, seed, private=True):
        return MultiTaskNetwork(
            n_features,
            n_tasks,
            hidden_layer_sizes=layer_sizes(self.hidden_layer_sizes),
            branch_layer_sizes=layer_sizes(self.branch_layer_sizes),
            activation=self.activation,
            task_columns=task_columns,
            backbone_kwargs={
                "residual": self.residual,
                "spectral_norm": self.spectral_norm,
                "random_features": self.random_features,
            },
            head=self.head,
            head_kwargs={
                "covariance": self.covariance,
                "rank": self.covariance_rank,
                "prior_scale": self.prior_scale,
                "wishart_scale": self.wishart_scale,
                "dof": self.wishart_dof,
                "noise_std": noise_std,
                "seed": seed,
            },
            private_features=private and self._private_slot(task_columns),
        )

    def _prior_model(self, n_features: int) -> PriorModel:
        validate_params(self)
        n_tasks = self.n_targets or 1
        seed = self._draw_seed()
        with seeded(seed):
            module = self._make_module(n_features, n_tasks, None, 1.0, seed, private=False)
        return PriorModel(module, n_tasks)

    def _reg_weight(self, data: TrainingData) -> np.ndarray:
        if self.reg_weight == "auto":
            return 1.0 / np.maximum(data.n_labelled, 1)
        return np.full(self.n_tasks_, float(self.reg_weight))

    def _kl_weight(self, data: TrainingData) -> np.ndarray:
        # Weight of the KL term against the full-data likelihood: 1 for the
        # plain ELBO (reg_weight='auto'), N_t * reg_weight otherwise.
        if self.reg_weight == "auto":
            return np.ones(self.n_tasks_)
        return self._reg_weight(data) * (~np.isnan(data.Y)).sum(0)

    def _net_spec(self, module: MultiTaskNetwork, data: TrainingData):
        aggregator = resolve_aggregator(self.aggregator)
        if isinstance(aggregator, BayesAgg):
            check_bayesagg(aggregator)
            if self.head != "gaussian" or not module.heads_on_shared_representation:
                raise ValueError(
                    "aggregator='bayesagg' needs the task heads to sit directly on one shared "
                    "representation with Gaussian noise: use head='gaussian', "
                    "branch_layer_sizes=(), no task_inputs and unpruned masks, or choose "
                    "another aggregator."
                )
        reg_weight = torch.as_tensor(self._reg_weight(data), dtype=torch.float32)
        return MultiTaskNet, TaskLosses(reg_weight), {"aggregator": aggregator}

    def _refines_head(self) -> bool:
        return self.refine_head

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.requires_fit = False  # predicts from the prior before fit, as GPR does
        return tags
