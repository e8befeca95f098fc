"""A small-data regime as fast as a GP: random features, evidence, full-batch training.

At small n (a few to a few thousand rows) the whole training set fits in one
batch, and a GP's recipe applies to the network:

1. the backbone becomes a random-feature map whose lengthscale, like a GP
   kernel's, is chosen by the evidence over a grid
   (:func:`~sk_mtbnn._training.random_features.choose_lengthscale`), and the
   head's prior and noise variances by type-II maximum likelihood;
2. optionally, the backbone is then trained full-batch on the exact negative
   evidence of the training rows (the head marginalised in closed form; with
   a Gaussian head this is the ELBO at its optimal ``q``), starting from the
   random features. The evidence of trained features is optimistic -- they
   were fitted to the rows it scores -- so the training is judged on held-out
   rows, by their log predictive densities given the training rows: training
   stops when they have not improved for ``patience`` checks, and the best
   checkpoint replaces the random features (step 0) only if it beats them by
   two standard errors (a paired test over the held-out labels). The head
   prior and noise of trained features maximise the conditional evidence
   ``log p(y_valid | y_train)``
   (:func:`~sk_mtbnn.nn.evidence.maximise_conditional_evidence`; Lotfi et
   al., ICML 2022);
3. the head is conditioned on every labelled row with the chosen prior and
   noise (and a known per-row noise ``alpha``).
"""

from __future__ import annotations

import copy
import math
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor, nn

from ..nn.blr import isotropic_prior, linear_stats, posterior, row_precisions, with_bias
from ..nn.evidence import (
    Evidence,
    log_marginal_likelihood,
    maximise_conditional_evidence,
    maximise_evidence,
    maximise_evidence_of_features,
    task_constant_alpha,
)
from .random_features import (
    LENGTHSCALES,
    LengthscaleChoice,
    choose_lengthscale,
    features64,
    float64_copy,
    set_random_features,
)

#: Fewest labelled rows for ``train="auto"`` to try training the features.
MIN_TRAIN_ROWS = 100


class SmallDataFit(NamedTuple):
    """Result of :func:`fit_small_data`.

    ``prior_var`` and ``noise_var`` ``(T,)`` are the head's prior variance of
    every weight and its noise variance (on top of ``alpha``); ``criterion``
    ``(T,)`` is the log evidence of all rows (random features) or the
    conditional evidence of the held-out rows (trained features);
    ``n_steps`` is the number of training steps kept (0: random features);
    ``choice`` the lengthscale search's
    :class:`~sk_mtbnn._training.random_features.LengthscaleChoice` (the random
    features before any training, with each task's relevances); ``split`` the
    training and held-out rows that judged the feature training (None when it
    was not tried).
    """

    module: nn.Module
    lengthscale: float
    prior_var: Tensor
    noise_var: Tensor
    criterion: Tensor
    n_steps: int
    choice: LengthscaleChoice
    split: tuple[Tensor, Tensor] | None = None


class TrainingOutcome(NamedTuple):
    """Result of :func:`train_features`.

    ``n_steps`` is the kept step (0: the random features are kept),
    ``start_score`` and ``best_score`` the summed held-out log predictive
    densities at the start and at the best check, ``evidence`` the head
    hyper-parameters for the kept features (None when none were kept), and
    ``split`` the training and held-out rows.
    """

    n_steps: int
    start_score: float
    best_score: float
    evidence: Evidence | None
    split: tuple[Tensor, Tensor]


def condition_head(
    head: nn.Module,
    phi: Tensor,
    Y: Tensor,
    prior_var: Tensor,
    noise_var: Tensor,
    alpha: Tensor | float = 0.0,
) -> None:
    """Set a Gaussian head to the exact posterior given ``(phi, Y)``, in place.

    The prior of task ``t`` is ``N(0, prior_var_t I)`` and the noise of row
    ``n`` is ``noise_var_t + alpha_n``; the head's own noise becomes
    ``noise_var`` (``alpha`` is, as in ``GaussianProcessRegressor``, only
    a property of the training rows). Computed in float64.
    """
    if not hasattr(head, "log_noise_std"):
        raise ValueError("The evidence regime needs a Gaussian head (head='gaussian').")
    phi, Y = phi.to(torch.float64), Y.to(torch.float64)
    prior_var, noise_var = prior_var.to(torch.float64), noise_var.to(torch.float64)
    # Per-row precisions folded into the statistics: then a unit noise.
    stats = linear_stats(phi, Y, row_precisions(noise_var, alpha, len(Y)))
    mean, precision = _posterior(stats, prior_var, torch.ones_like(noise_var))
    # Through a float64 copy: the precision of a near-noiseless fit is too
    # ill-conditioned for a float32 Cholesky factorisation.
    head64 = copy.deepcopy(head).to(torch.float64)
    with torch.no_grad():
        head64.mean.copy_(mean)
        head64.log_noise_std.copy_(0.5 * torch.log(noise_var))
        head64.covariance.set_from_precision(precision)
        for target, source in zip(head.parameters(), head64.parameters()):
            target.copy_(source.to(target.dtype))


def _posterior(stats, prior_var: Tensor, noise_var: Tensor) -> tuple[Tensor, Tensor]:
    """Exact posterior of every task's head under the prior ``N(0, prior_var_t I)``."""
    n_tasks, dim = stats.moment.shape
    return posterior(stats, noise_var, *isotropic_prior(n_tasks, dim, prior_var, stats.moment))


def split_rows(n_rows: int, fraction: float, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """Random training and held-out row indices, ``fraction`` of the rows (at least 1) held out."""
    order = torch.randperm(n_rows, generator=generator)
    n_valid = max(1, round(fraction * n_rows))
    return order[n_valid:], order[:n_valid]


class Adam:
    """Adam (Kingma & Ba, ICLR 2015) on a list of leaf tensors.

    Written out because constructing any ``torch.optim`` optimiser imports
    ``torch._dynamo`` on first use, which takes 2-4 s: longer than a whole
    small-data fit.
    """

    def __init__(self, params: list[Tensor], lr: float, betas=(0.9, 0.999), eps=1e-8) -> None:
        self.params, self.lr, self.betas, self.eps = params, lr, betas, eps
        self.moments = [(torch.zeros_like(p), torch.zeros_like(p)) for p in params]
        self.n_steps = 0

    @torch.no_grad()
    def step(self) -> None:
        self.n_steps += 1
        b1, b2 = self.betas
        step = self.lr / (1 - b1**self.n_steps)
        root_correction = (1 - b2**self.n_steps) ** 0.5
        for p, (m, v) in zip(self.params, self.moments):
            if p.grad is None:
                continue
            m.mul_(b1).add_(p.grad, alpha=1 - b1)
            v.mul_(b2).addcmul_(p.grad, p.grad, value=1 - b2)
            p.addcdiv_(m, (v.sqrt() / root_correction).add_(self.eps), value=-step)
            p.grad = None


def heldout_log_densities(work, x, y, train_rows, valid_rows, alpha: float | Tensor) -> Tensor:
    """Log predictive densities of the held-out labels, one per labelled cell.

    Under the posterior given the training rows, with the prior and noise
    that maximise the training rows' evidence: an honest held-out score
    (choosing them on the held-out rows too would favour whichever features
    are checked most often). The cells come in a fixed order (task-major),
    so the densities of two networks can be compared pairwise.
    """
    with torch.no_grad():
        # Features of the scored rows only (the caller may pass many more rows).
        train = linear_stats(work(x[train_rows]), y[train_rows])
        fit = maximise_evidence(train, alpha=alpha)
        noise = fit.noise_var + alpha
        mean, precision = _posterior(train, fit.prior_var, noise)
        cov = torch.cholesky_inverse(torch.linalg.cholesky(precision))
        p = with_bias(work(x[valid_rows]))
        pred_mean = torch.einsum("tbd,td->tb", p, mean)
        pred_var = torch.einsum("tbd,tde,tbe->tb", p, cov, p) + noise[:, None]
        target = y[valid_rows].T
        labelled = ~torch.isnan(target)
        log_density = -0.5 * (
            math.log(2 * math.pi) + torch.log(pred_var) + (target - pred_mean) ** 2 / pred_var
        )
    return log_density[labelled]


def _copy_state(state: dict, module: nn.Module) -> None:
    """Write ``state`` into ``module``'s tensors, in place and in their dtypes."""
    with torch.no_grad():
        for name, value in module.state_dict().items():
            value.copy_(state[name].to(value.dtype))


def significantly_better(new: Tensor, old: Tensor) -> bool:
    """A one-sided paired z-test at 2 standard errors on per-cell log densities."""
    diff = new - old
    if len(diff) < 2:
        return False
    return bool(diff.mean() > 2.0 * diff.std() / math.sqrt(len(diff)))


def _heldout_hyperparameters(work, x, y, train_rows, valid_rows, alpha) -> Evidence:
    """Prior and noise of trained features: those that maximise ``log p(y_valid | y_train)``."""
    with torch.no_grad():
        train = linear_stats(work(x[train_rows]), y[train_rows])
        valid = linear_stats(work(x[valid_rows]), y[valid_rows])
    return maximise_conditional_evidence(train, valid, alpha=alpha)


def train_features(
    module: nn.Module,
    X: Tensor,
    Y: Tensor,
    *,
    alpha: float | Tensor = 0.0,
    validation_fraction: float = 0.2,
    max_steps: int = 300,
    check_every: int = 10,
    patience: int = 3,
    learning_rate: float = 1e-2,
    generator: torch.Generator | None = None,
    baseline: nn.Module | None = None,
) -> TrainingOutcome:
    """Train the backbone full-batch on the evidence, kept only where held-out rows agree.

    Parameters
    ----------
    module : MultiTaskNetwork
        Network to train in place (its backbone and branches; the head is
        marginalised, not trained). Typically set to random features first.
    X : Tensor of shape (N, n_features)
        Standardised inputs.
    Y : Tensor of shape (N, T)
        Standardised targets, NaN where missing.
    alpha : float or Tensor of shape (T,), default=0.0
        Known noise variance of every row (of each task).
    validation_fraction : float, default=0.2
        Share of the rows held out to judge the training.
    max_steps : int, default=300
        Most Adam steps on the full batch of training rows.
    check_every : int, default=10
        Steps between held-out checks.
    patience : int, default=3
        Checks without improvement before stopping.
    learning_rate : float, default=1e-2
        Adam's step size.
    generator : torch.Generator, default=None
        Draws the held-out rows.
    baseline : MultiTaskNetwork, default=None
        The network to beat (same layout as ``module``), which ``module``
        becomes when training does not beat it; None: ``module`` as it
        starts.

    Returns
    -------
    outcome : TrainingOutcome
        The kept step and the held-out scores. The best checkpoint is kept
        only if its held-out log predictive densities beat the start's by
        two standard errors of their paired differences; its head prior and
        noise are then those that maximise the conditional evidence of the
        held-out rows.
    """
    generator = generator or torch.Generator().manual_seed(0)
    train_rows, valid_rows = split_rows(len(X), validation_fraction, generator)
    work = float64_copy(module)
    x, y = X.to(torch.float64), Y.to(torch.float64)
    x_train, y_train = x[train_rows], y[train_rows]
    reference = work if baseline is None else float64_copy(baseline)
    start = heldout_log_densities(reference, x, y, train_rows, valid_rows, alpha)
    best = (start, 0, copy.deepcopy(work.state_dict()))
    with torch.no_grad():
        fit = maximise_evidence_of_features(work(x_train), y_train, alpha=alpha)
    log_prior = torch.log(fit.prior_var).requires_grad_()
    log_noise = torch.log(fit.noise_var).requires_grad_()
    params = [*work.backbone.parameters(), *work.branches.parameters()]
    optimiser = Adam([*params, log_prior, log_noise], lr=learning_rate)
    n_train = float((~torch.isnan(y_train)).sum())
    stale = 0
    for step in range(1, max_steps + 1):
        stats = linear_stats(work(x_train), y_train)
        lml = log_marginal_likelihood(stats, log_prior.exp(), log_noise.exp() + alpha)
        if not bool(torch.isfinite(lml).all()):
            break  # the features diverged: keep the best checkpoint so far
        (-lml.sum() / n_train).backward()
        optimiser.step()
        if step % check_every:
            continue
        try:
            score = heldout_log_densities(work, x, y, train_rows, valid_rows, alpha)
        except RuntimeError:  # no posterior on these features (LinAlgError is one)
            break  # they diverged: keep the best checkpoint so far
        if not bool(torch.isfinite(score).all()):
            break
        if score.sum() > best[0].sum():
            best, stale = (score, step, copy.deepcopy(work.state_dict())), 0
        else:
            stale += 1
            if stale >= patience:
                break
    score, step, state = best
    outcome = TrainingOutcome(
        0, float(start.sum()), float(score.sum()), None, (train_rows, valid_rows)
    )
    if not (step and significantly_better(score, start)):
        if baseline is not None:
            _copy_state(reference.state_dict(), module)
        return outcome  # the module keeps (or takes) the baseline's random features
    work.load_state_dict(state)
    _copy_state(state, module)
    evidence = _heldout_hyperparameters(work, x, y, train_rows, valid_rows, alpha)
    return outcome._replace(n_steps=step, evidence=evidence)


def fit_small_data(
    module: nn.Module,
    X,
    Y,
    *,
    alpha: Tensor | float = 0.0,
    train: bool | str = "auto",
    lengthscales=LENGTHSCALES,
    random_state: int = 0,
    choice: LengthscaleChoice | None = None,
    relevance_of: LengthscaleChoice | None = None,
    **train_options,
) -> SmallDataFit:
    """Fit ``module`` the way a GP is fitted: evidence-chosen features and head.

    Parameters
    ----------
    module : MultiTaskNetwork
        Network with a Gaussian head, modified in place: random-feature
        backbone (see
        :func:`~sk_mtbnn._training.random_features.check_random_feature_network`),
        optionally trained, and its head conditioned on all rows.
    X : array-like or Tensor of shape (N, n_features)
        Standardised training inputs.
    Y : array-like or Tensor of shape (N, T)
        Standardised targets, NaN where missing.
    alpha : float or array-like of shape (N,) or (N, T), default=0.0
        Known per-row noise variance, in units of the standardised targets.
    train : bool or "auto", default="auto"
        Whether to try training the features (:func:`train_features`);
        ``"auto"`` tries when there are at least :data:`MIN_TRAIN_ROWS`
        labelled rows and ``alpha`` is the same on every row of each task.
    lengthscales : sequence of float, default=LENGTHSCALES
        Candidate lengthscales of the random features.
    random_state : int, default=0
        Seeds the random features and the held-out split.
    choice : LengthscaleChoice, default=None
        The random features of an earlier fit on the same data (its
        :attr:`SmallDataFit.choice`), taken instead of searching again.
    relevance_of : LengthscaleChoice, default=None
        The choice of another draw on the same data, whose input relevances
        this draw takes instead of searching its own (see
        :func:`~sk_mtbnn._training.random_features.choose_lengthscale`).
    **train_options
        Passed to :func:`train_features`.

    Returns
    -------
    fit : SmallDataFit
        The module and the chosen hyper-parameters.

    Examples
    --------
    >>> import numpy as np
    >>> from sk_mtbnn.nn.network import MultiTaskNetwork
    >>> from sk_mtbnn._training.full_batch import fit_small_data
    >>> rng = np.random.RandomState(0)
    >>> X = rng.uniform(-1.7, 1.7, size=(20, 1)).astype(np.float32)
    >>> Y = (np.sin(3 * X) + 0.1 * rng.randn(20, 1)).astype(np.float32)
    >>> net = MultiTaskNetwork(1, 1, hidden_layer_sizes=(128, 128))
    >>> fit = fit_small_data(net, X, Y)
    >>> fit.n_steps, bool(fit.noise_var[0] < 0.1)
    (0, True)
    """
    X = torch.as_tensor(np.asarray(X), dtype=torch.float32)
    Y = torch.as_tensor(np.asarray(Y), dtype=torch.float32)
    alpha_t = torch.as_tensor(np.asarray(alpha), dtype=torch.float64)
    generator = torch.Generator().manual_seed(int(random_state))
    if choice is None:
        choice = choose_lengthscale(
            module,
            X,
            Y,
            alpha=alpha_t,
            lengthscales=lengthscales,
            generator=generator,
            relevance_of=relevance_of,
        )
    else:
        set_random_features(module, choice.layout, choice.lengthscale)
    evidence, n_steps, split = choice.evidence, 0, None
    n_labelled = int((~torch.isnan(Y)).any(1).sum())
    constant = task_constant_alpha(alpha_t)
    if train == "auto":
        train = n_labelled >= MIN_TRAIN_ROWS and constant is not None
    if train:
        if constant is None:
            raise ValueError("Training the features needs the same alpha on every row.")
        # Training starts from the isotropic features (measured: from the ARD
        # ones it stalls near its start) and must beat the ARD features.
        baseline = None
        if choice.isotropic is not None:
            baseline = float64_copy(module)
            set_random_features(module, choice.isotropic.layout, choice.isotropic.lengthscale)
        outcome = train_features(
            module,
            X,
            Y,
            alpha=constant,
            generator=generator,
            baseline=baseline,
            **train_options,
        )
        split = outcome.split
        if outcome.n_steps:
            evidence, n_steps = outcome.evidence, outcome.n_steps
    phi = features64(module, X)
    condition_head(module.head, phi, Y, evidence.prior_var, evidence.noise_var, alpha_t)
    return SmallDataFit(
        module,
        choice.lengthscale,
        evidence.prior_var,
        evidence.noise_var,
        evidence.log_evidence,
        n_steps,
        choice,
        split,
    )
