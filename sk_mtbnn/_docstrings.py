"""Docstring fragments documented in several places, kept in one place.

A docstring names a fragment on a line of its own, ``%(name)s``; :func:`fill_doc`
replaces that line by the fragment, every line indented as the placeholder was
(a fragment may name other fragments the same way).
The rendered ``__doc__`` is plain numpydoc, so Sphinx, ``help`` and doctests see
the full text.
"""

from __future__ import annotations

import re
from typing import TypeVar

_T = TypeVar("_T")

#: One entry per documented parameter (or group of parameters), flush left.
FRAGMENTS: dict[str, str] = {
    # Prediction methods of the regressors and the meta-estimators around them.
    "X_query": """\
X : array-like of shape (n_samples, n_features)
    Query points.""",
    "sample_y_params": """\
X : array-like of shape (n_samples_X, n_features)
    Query points.
n_samples : int, default=1
    Number of samples drawn per query point.
random_state : int, RandomState instance or None, default=0
    Seeds the draws; an int gives reproducible samples.""",
    "X_test": """\
X : array-like of shape (n_samples, n_features)
    Test inputs.""",
    "sample_weight": """\
sample_weight : array-like of shape (n_samples,), default=None
    Sample weights.""",
    # Constructor parameters of the network estimators.
    "hidden_layer_sizes_param": """\
hidden_layer_sizes : tuple of int, default=(128, 128)
    Widths of the shared backbone's hidden layers.""",
    "backbone_params": """\
%(hidden_layer_sizes_param)s
activation : {"silu", "tanh", "relu", "gelu", "elu", "softplus"}, default="silu"
    Activation of the backbone.""",
    # Descriptions (without the ``name : type`` line) that an estimator continues.
    "aggregator_options": """\
How task gradients on the shared backbone are combined: ``"mean"``
(linear scalarisation), ``"pcgrad"``, ``"task_sampling"`` (one task
per step, drawn in proportion to its labels), ``"uniform_task_sampling"``,
``"bayesagg"``, a :class:`~sk_mtbnn.aggregators.GradientAggregator`, or any
``torchjd.aggregation`` aggregator (with the ``torchjd`` extra).""",
    "ensemble_members": """\
Members of a deep ensemble: independently initialised networks whose
predictions are combined as an equal-weight mixture (the spread of
the members' means is epistemic uncertainty). Members are trained
through joblib (``n_jobs``).""",
    "known_noise": """\
Known noise variance of the training targets, in squared units of y
(as in :class:`~sklearn.gaussian_process.GaussianProcessRegressor`):
measurement errors that are known. The fitted noise ``noise_std_``
models only the rest; predictions do not include ``alpha``.""",
    "learning_rate_param": """\
learning_rate : float, default=3e-3
    Initial learning rate; it follows a cosine decay to zero over the
    training.""",
    "epochs_params": """\
max_epochs : int or "auto", default="auto"
    Number of passes over the data. ``"auto"`` aims at about
    3,000 optimiser steps (at least 10 epochs), so small data
    sets get enough steps and large ones few passes.
batch_size : int or "auto", default="auto"
    Mini-batch size; ``"auto"`` is ``min(128, n_samples)``.""",
    "n_iter_no_change_param": """\
n_iter_no_change : int, default=20
    Patience of early stopping, in epochs (never fewer epochs than make
    300 optimiser steps).""",
    "normalize_y_param": """\
normalize_y : bool, default=True
    Standardise each task's targets (over its labelled entries) for
    training; predictions are returned in the original units.""",
    "n_targets_param": """\
n_targets : int, default=None
    Number of tasks of the prior, used by ``predict`` and ``sample_y``
    before ``fit`` (None: one); ignored once fitted, as in
    :class:`~sklearn.gaussian_process.GaussianProcessRegressor`.""",
    "device_param": """\
device : str or torch.device, default="cpu"
    Torch device for training and prediction (``"cpu"``, ``"cuda"``,
    ``"cuda:N"``, ``"mps"``); a device this machine lacks is refused
    with a clear error.""",
    "n_jobs_param": """\
n_jobs : int, default=None
    Parallel jobs training the ensemble members (joblib; ``None`` is 1
    unless in a :func:`joblib.parallel_config` context, ``-1`` all
    cores). Results do not depend on it.""",
    "random_state_param": """\
random_state : int, RandomState instance or None, default=None
    Seeds initialisation, shuffling, the validation split and any random
    draws of the aggregator (task sampling, Monte Carlo); an int gives
    reproducible fits.""",
    "verbose_param": """\
verbose : int, default=0
    0 silent; 1 prints skorch's table of epochs; 2 a progress bar for the
    whole fit (over the members, for an ensemble); 3 each member's bar too.""",
    # Fitted attributes of the network estimators (``net_`` last, so that an
    # estimator's own sentences about its network may follow the fragment).
    "fit_attributes": """\
n_tasks_ : int
    Number of tasks (columns of y).
n_epochs_ : int
    Number of epochs trained.
history_ : skorch.History
    Per-epoch training (and validation) losses.
net_ : skorch.NeuralNet
    The trained skorch net; ``net_.module_`` is the torch network.""",
    "masks_attribute": """\
masks_ : list of list of tuple of ndarray
    ``masks_[t][l]`` is ``(weight_mask, bias_mask)`` (bool) of backbone
    layer ``l`` for task ``t``.""",
    "noise_std_attribute": """\
noise_std_ : ndarray of shape (n_tasks,)
    Fitted observation-noise standard deviation per task, units of y.""",
    "estimators_attribute": """\
estimators_ : list of estimators
    The fitted members when ``n_estimators > 1``.
untrained_twins_ : list of estimators or None
    With ``n_estimators > 1``, per member, its untrained twin (the member on
    its random features alone, whose uncertainty floors the ensemble's) when
    the member trained its random features in the evidence regime, else None.
twin_scale_ : ndarray of shape (n_tasks,)
    With ``n_estimators > 1``, per task, the factor on the twins' epistemic
    variance where it floors the ensemble's: the median ratio of the members'
    to the twins' epistemic variance at the training inputs, at most 1 (ones
    without twins).""",
    "reference_attributes": """\
reference_ : list of SparseMultiTaskBNNRegressor or None
    With ``regime="auto"`` and more than 1,000 labelled rows: per task, an
    untrained single-task random-feature fit on at most 1,000 of its
    training rows, mixed into the task's predictions (docs/algorithms.rst,
    "A random-feature reference above 1,000 rows"); else None (also for
    ensembles, ``max_epochs`` set and ``validation_fraction=None``). The
    active-learning scores use the network alone.
reference_weight_ : ndarray of shape (n_tasks,)
    The reference's weight in each task's predictive mixture: the largest
    whose held-out log density is within 0.01 nats per label of the best
    weight's (zeros without a reference).""",
    # The last constructor parameters of the regressors, in their order.
    "regressor_run_params": """\
%(n_targets_param)s
%(device_param)s
%(n_jobs_param)s
%(random_state_param)s
%(verbose_param)s""",
    "feature_attributes": """\
n_features_in_ : int
    Number of features seen during fit.
feature_names_in_ : ndarray of shape (`n_features_in_`,)
    Names of features seen during fit, when ``X`` has string column names.""",
    # Protection against negative transfer (sharing="auto").
    # (The regressors' shared check, _task_sharing.AdaptiveSharingMixin.)
    "sharing_choice": """\
Protection against negative transfer. ``"auto"``: after the fit, each
task compares the shared features with a private random-feature map
of its own (relevances and lengthscale chosen by that task's evidence,
as a single-task fit chooses them).""",
    "sharing_heldout": """\
A task uses its own when its held-out labels prefer them by two
standard errors (tasks with fewer than 5 held-out or 10 training labels
keep sharing); the others keep sharing (docs/algorithms.rst, section
"Negative transfer"; ``shared_tasks_``).""",
    "sharing_param": """\
sharing : {"auto", "all"}, default="auto"
    %(sharing_choice)s
    %(sharing_heldout)s
    It needs a validation split and a backbone of two layers or more with
    a ramp-like activation (not tanh); otherwise every task shares.
    ``"all"``: every task uses the shared network.""",
    "shared_tasks_attribute": """\
shared_tasks_ : ndarray of bool of shape (n_tasks,)
    Which tasks use the shared features (see ``sharing``); all True with
    ``sharing="all"``.""",
    "sharing_attributes": """\
%(shared_tasks_attribute)s
sharing_gain_ : ndarray of shape (n_tasks,)
    Per task, the held-out log predictive density per label of the shared
    features minus that of the task's private alternative (nats; > 0:
    sharing helps it); NaN where no comparison was made (too few labels,
    ``sharing="all"``, or a network the check does not apply to).""",
    "bayesagg_reference": """\
References
----------
.. [1] I. Achituve, I. Diamant, A. Netzer, G. Chechik, E. Fetaya. "Bayesian
   Uncertainty for Gradient Aggregation in Multi-Task Learning", ICML 2024.""",
    # Query strategies (sk_mtbnn.active_learning).
    "learner": """\
learner : modAL learner or fitted sk_mtbnn regressor
    The model.""",
    "X_pool": """\
X_pool : array-like of shape (n_pool, n_features)
    Unlabelled candidates.
n_instances : int, default=1
    Number of rows to pick.""",
    "X_labelled": """\
X_labelled : array-like, optional
    Labelled inputs, when ``learner`` is a bare estimator.""",
    "labelled_xy_task": """\
X_labelled, y_labelled : array-like, optional
    Labelled data, when ``learner`` is a bare estimator: both, or
    neither; ``y_labelled`` of shape ``(n_labelled, n_tasks)`` (or
    ``(n_labelled,)`` for one task), NaN for a missing label.
task : int or None, default=None
    Compare this task's outputs (all tasks when None); from a learner,
    rows count as labelled when labelled for it.""",
    "query_returns": """\
Returns
-------
query_idx : ndarray of shape (n_instances,)
    Distinct indices into ``X_pool``.""",
    # The sections of GSy and iGS, which take the same arguments.
    "output_greedy_sections": """\
Parameters
----------
%(learner)s
%(X_pool)s
%(labelled_xy_task)s

%(query_returns)s""",
    # A one-task regressor fitted on the first 5 of 21 points, for the query strategies.
    "example_al_regressor": """\
>>> import numpy as np
>>> from sk_mtbnn import SparseMultiTaskBNNRegressor
>>> X = np.linspace(0, 1, 21)[:, None]
>>> reg = SparseMultiTaskBNNRegressor(max_epochs=5, random_state=0).fit(X[:5], X[:5, 0])""",
    # The fitted one-task regressor ``reg``, on inputs ``X``, that examples start from.
    "example_regressor": """\
>>> import numpy as np
>>> from sk_mtbnn import SparseMultiTaskBNNRegressor
>>> X = np.linspace(-3, 3, 50)[:, None]
>>> reg = SparseMultiTaskBNNRegressor(max_epochs=10, random_state=0).fit(X, np.sin(X[:, 0]))""",
    # Scores of Gaussian predictions (sk_mtbnn.metrics).
    "gaussian_predictions": """\
y_true, y_mean, y_std : array-like of shape (n,) or (n, n_tasks)
    Targets (NaN = missing), predictive means and standard deviations
    (finite; standard deviations strictly positive).""",
    "multioutput": """\
multioutput : {"uniform_average", "raw_values"}, default="uniform_average"
    Average over tasks, or return one value per task.""",
    "gaussian_score_params": """\
%(gaussian_predictions)s
%(multioutput)s""",
    # Loaders of the shipped data sets (sk_mtbnn.datasets).
    "loader_params": """\
return_X_y : bool, default=False
    Return ``(X, y)`` instead of a Bunch.
as_frame : bool, default=False
    Return pandas objects (requires pandas).""",
    "loader_returns": """\
data : Bunch or tuple
    ``data`` (the features), ``target`` (one column per task),
    ``feature_names``, ``target_names``, ``frame`` (with ``as_frame=True``)
    and ``DESCR``; or ``(X, y)``.""",
    "fidelity": """\
fidelity : {"high", "low"}, default="high"
    Which fidelity.""",
    # The rest of a two-fidelity test function's sections, after its ``x``.
    "fidelity_sections": """\
%(fidelity)s

Returns
-------
f : ndarray of shape (n,)
    The function at each row of ``x``.""",
    # Evidence of Bayesian linear heads (sk_mtbnn.nn.evidence, evidence_rows).
    "example_linear_data": """\
>>> import torch
>>> from sk_mtbnn.nn.blr import linear_stats
>>> gen = torch.Generator().manual_seed(0)
>>> phi = torch.randn(1, 500, 3, generator=gen, dtype=torch.float64)  # one task
>>> y = phi[0] @ torch.tensor([1.0, -1.0, 0.5], dtype=torch.float64)
>>> y = (y + 0.3 * torch.randn(500, generator=gen, dtype=torch.float64))[:, None]""",
    "rows_phi_y": """\
phi : Tensor of shape (T, N, F)
    Features of every task (the bias is appended here).
y : Tensor of shape (N, T)
    Targets; NaN marks a missing label.""",
    "rows_alpha": """\
alpha : float or Tensor of shape (N,) or (N, T), default=0.0
    Known noise variance of each row.""",
    # Mixture priors over the task heads (sk_mtbnn.nn.task_priors).
    "base_prior_var": """\
prior_var : float, default=None
    Variance of the heads' independent base prior ``N(0, prior_var I)``
    (the heads' ``prior_var``); None: ``1 / D``.""",
    "em_stopping": """\
max_iter : int, default=200
    Most EM iterations.
tol : float, default=1e-8
    Stop when an iteration raises the log marginal likelihood by less than
    ``tol`` per task.""",
    # Six tasks' likelihoods, two clusters of three, for the mixture priors' examples.
    "example_two_clusters": """\
>>> import torch
>>> from sk_mtbnn.nn.task_priors import TaskLikelihood
>>> w = torch.tensor([[1.0, 0.0]] * 3 + [[-1.0, 2.0]] * 3, dtype=torch.float64)
>>> eye = torch.eye(2, dtype=torch.float64).expand(6, 2, 2)
>>> lik = TaskLikelihood(100.0 * eye, 100.0 * w)  # ~100 noise-free rows each""",
    # Plots of a fitted IterativeMagnitudePruning.
    "pruning_plot_sections": """\
Parameters
----------
pruning : IterativeMagnitudePruning
    A fitted meta-estimator.
task_names : list of str, optional
    Labels of the tasks; ``task 0, task 1, ...`` by default.
ax : matplotlib Axes, optional
    Where to draw; a new figure by default.

Returns
-------
ax : matplotlib Axes
    The axes drawn on.""",
    "example_pruning": """\
>>> import numpy as np
>>> from sk_mtbnn import IterativeMagnitudePruning, SparseMultiTaskBNNRegressor
>>> X = np.random.RandomState(0).uniform(size=(60, 2))
>>> imp = IterativeMagnitudePruning(
...     SparseMultiTaskBNNRegressor(hidden_layer_sizes=(8,), max_epochs=5),
...     n_rounds=1, random_state=0).fit(X, X)""",
}

_PLACEHOLDER = re.compile(r"^([ \t]*)%\((\w+)\)s[ \t]*$", re.MULTILINE)


def expand_doc(doc: str, **extra: str) -> str:
    """``doc`` with every ``%(name)s`` line replaced by its fragment, indented as the line.

    ``extra`` fragments are looked up before :data:`FRAGMENTS`; an unknown name
    raises a KeyError (at import time, for a decorated object).
    """

    def expand(match: re.Match) -> str:
        indent, name = match.groups()
        text = _PLACEHOLDER.sub(expand, extra[name] if name in extra else FRAGMENTS[name])
        return "\n".join(indent + line if line else line for line in text.split("\n"))

    return _PLACEHOLDER.sub(expand, doc)


def fill_doc(obj: _T) -> _T:
    """Decorator: :func:`expand_doc` on the docstring of a function, method or class."""
    obj.__doc__ = expand_doc(obj.__doc__ or "")
    return obj
