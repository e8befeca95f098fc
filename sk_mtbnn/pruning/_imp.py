"""Iterative magnitude pruning of the shared backbone, one sparse subnetwork per task."""

from __future__ import annotations

import copy
import math

import numpy as np
from scipy.sparse import issparse
from sklearn.base import BaseEstimator, MetaEstimatorMixin, clone, is_classifier
from sklearn.metrics import log_loss, r2_score
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state

from .._docstrings import fill_doc
from .._training.callbacks import progress_bar
from .._validation import _nullable_as_float, check_input_frame
from ..estimators._base import seeded
from ..estimators._labels import label_array
from ..metrics import gaussian_nll
from ._checks import check_estimator, check_params, check_scoring
from ._delegation import DelegatingMixin
from ._masks import (
    _as_rows,
    _check_selection_rows,
    _retrain,
    _set_task_masks,
    _sparsity,
    _take,
    _task_masks,
    _task_own_parameters,
    prune_masks,
)


@fill_doc
class IterativeMagnitudePruning(DelegatingMixin, MetaEstimatorMixin, BaseEstimator):
    """Task-specific sparse subnetworks of a shared backbone (lottery-ticket style).

    Fits a clone of ``estimator``, then for every task runs rounds of: prune
    the fraction ``prune_ratio`` of the surviving backbone weights of that
    task by magnitude, rewind the survivors (to their initial values, to an
    early warm-up epoch, or not at all), retrain on that task's labels. Each
    round is scored on a validation split (held out here, or given to
    ``fit``) and nothing else; per task the best round (or the last) is kept.
    Finally all tasks are retrained jointly, each through its own mask
    (docs/algorithms.rst, section "Iterative magnitude pruning with rewinding").

    The original research code never applied its masks, selected rounds on
    the test set and never rewound; here masks are applied in the forward
    pass, selection sees only the validation split, and rewinding is the
    default.

    Read more in the :ref:`User Guide <pruning>`.

    Parameters
    ----------
    estimator : estimator
        An unfitted :class:`~sk_mtbnn.SparseMultiTaskBNNRegressor` or
        :class:`~sk_mtbnn.BayesAggMTLClassifier` (with an aggregator other
        than BayesAgg, which needs one shared representation).
    prune_ratio : float, default=0.2
        Fraction of the surviving weights removed per round; after ``r``
        rounds a task keeps ``(1 - prune_ratio)^r`` of its backbone weights.
    n_rounds : int, default=3
        Number of pruning rounds per task.
    scope : {"global", "layer"}, default="global"
        Rank the weights of all backbone layers together, or prune the same
        fraction in every layer. Global ranking spares the first layer, which
        is small when there are few input features, and lost less accuracy
        than per-layer pruning in the pruning benchmark.
    prune_bias : bool, default=False
        Also prune backbone biases.
    rewind : {"init", "warmup", "none"}, default="init"
        Where the surviving weights restart after each pruning: their initial
        values (Frankle & Carbin 2019), their values after ``rewind_epoch``
        epochs (late rewinding, Frankle et al. 2019), or where training left
        them (fine-tuning).
    rewind_epoch : int, default=1
        Epochs of warm-up training that define the rewind point when
        ``rewind="warmup"``.
    retrain_epochs : int or None, default=None
        Epochs of each round's retraining; None uses the estimator's own
        ``max_epochs`` (and its early stopping).
    select : {"best", "last"}, default="best"
        Keep, per task, the pruned round with the best validation score, or
        the last round (the target sparsity).
    validation_fraction : float, default=0.2
        Rows held out for round selection when ``fit`` gets no validation data.
    scoring : {"default", "nll", "r2", "log_loss", "accuracy"} or callable, default="default"
        Per-task validation score, higher is better: ``"default"`` is the
        negative Gaussian NLL for regressors and the negative log loss for
        classifiers. A callable is called as ``scoring(estimator, X, y, task)``.
    random_state : int, RandomState instance or None, default=None
        Seeds the split and the estimator.
    verbose : int, default=0
        1 prints the score and sparsity of every task and round; 2 or more
        draws one progress bar over the trainings instead (the dense one and
        ``n_rounds`` per task, then the final joint one), the last round's
        score beside it. The estimator's own ``verbose`` sets its output.

    Attributes
    ----------
    estimator_ : estimator
        The final estimator, trained jointly with the selected masks.
    %(masks_attribute)s
    sparsity_ : ndarray of shape (n_tasks,)
        Fraction of pruned backbone weights (and biases, with ``prune_bias``)
        per task.
    overlap_ : ndarray of shape (n_tasks, n_tasks)
        Jaccard index between the tasks' sets of kept weights.
    n_effective_parameters_ : ndarray of shape (n_tasks,)
        Parameters each task's predictions use: kept backbone weights and
        biases, its branch, and its head's weights.
    history_ : list of dict
        Per task and round: ``task``, ``round`` (0 is the dense model),
        ``sparsity`` and validation ``score``.
    n_tasks_ : int
        Number of tasks.

    See Also
    --------
    SparseMultiTaskBNNRegressor : The estimator whose backbone is pruned.

    References
    ----------
    .. [1] J. Frankle, M. Carbin. "The Lottery Ticket Hypothesis: Finding
       Sparse, Trainable Neural Networks", ICLR 2019.
    .. [2] J. Frankle, G. K. Dziugaite, D. M. Roy, M. Carbin. "Stabilizing the
       Lottery Ticket Hypothesis", arXiv:1903.01611, 2019.

    Examples
    --------
    >>> import numpy as np
    >>> from sk_mtbnn import IterativeMagnitudePruning, SparseMultiTaskBNNRegressor
    >>> rng = np.random.RandomState(0)
    >>> X = rng.uniform(-2, 2, size=(200, 3))
    >>> y = np.column_stack([np.sin(X[:, 0]), X[:, 1] * X[:, 2]])
    >>> base = SparseMultiTaskBNNRegressor(hidden_layer_sizes=(32, 32), max_epochs=30)
    >>> imp = IterativeMagnitudePruning(base, prune_ratio=0.5, n_rounds=2, select="last",
    ...                                 random_state=0).fit(X, y)
    >>> imp.sparsity_.round(2)
    array([0.75, 0.75])
    >>> imp.predict(X[:3], return_std=True)[1].shape
    (3, 2)
    """

    def __init__(
        self,
        estimator,
        prune_ratio=0.2,
        n_rounds=3,
        scope="global",
        prune_bias=False,
        rewind="init",
        rewind_epoch=1,
        retrain_epochs=None,
        select="best",
        validation_fraction=0.2,
        scoring="default",
        random_state=None,
        verbose=0,
    ):
        self.estimator = estimator
        self.prune_ratio = prune_ratio
        self.n_rounds = n_rounds
        self.scope = scope
        self.prune_bias = prune_bias
        self.rewind = rewind
        self.rewind_epoch = rewind_epoch
        self.retrain_epochs = retrain_epochs
        self.select = select
        self.validation_fraction = validation_fraction
        self.scoring = scoring
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------------ fit
    def fit(self, X, y, X_val=None, y_val=None):
        """Prune per task, then retrain all tasks jointly with their masks.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training inputs.
        y : array-like of shape (n_samples,) or (n_samples, n_tasks)
            Targets (missing labels as the estimator accepts them).
        X_val, y_val : array-like, optional
            Validation data for choosing the rounds. Without it, a
            ``validation_fraction`` of the rows is held out for that and the
            final joint training uses all rows.

        Returns
        -------
        self : IterativeMagnitudePruning
            The fitted meta-estimator.
        """
        # Fitted on a copy, adopted on success: an invalid refit or Ctrl-C
        # (which ends the whole search) leaves a fitted model as it was.
        work = copy.copy(self)
        for name in getattr(self, "_fit_state_names", ()):
            vars(work).pop(name, None)
        before = set(vars(work))
        work._fit(X, y, X_val, y_val)
        for name in getattr(self, "_fit_state_names", ()):
            vars(self).pop(name, None)
        names = set(vars(work)) - before
        for name in names:
            setattr(self, name, getattr(work, name))
        self._fit_state_names = tuple(sorted(names))
        return self

    def _fit(self, X, y, X_val, y_val) -> None:
        check_params(self)
        rng = check_random_state(self.random_state)
        base = clone(self.estimator)
        check_estimator(base)
        if "n_estimators" in base.get_params():
            base.set_params(n_estimators=1)  # one network is pruned
        if "regime" in base.get_params():
            base.set_params(regime="network")  # masks need mini-batch training
        if "random_state" in base.get_params() and base.random_state is None:
            base.set_params(random_state=int(rng.randint(np.iinfo(np.int32).max)))
        if y is None:
            raise ValueError(
                f"{type(self).__name__} requires y to be passed, but the target y is None."
            )
        if (X_val is None) != (y_val is None):
            raise ValueError("Pass both X_val and y_val, or neither.")
        if issparse(X) or issparse(X_val):
            raise TypeError(
                "Sparse data was passed for X, but dense data is required: convert it with "
                "X.toarray()."
            )
        check_input_frame(X)  # before the split and the first training, for X_val too
        check_input_frame(X_val, "X_val")
        X, X_val = _as_rows(X), _as_rows(X_val)
        if X_val is None:
            n_rows = X.shape[0] if hasattr(X, "shape") else len(X)
            if n_rows - math.ceil(self.validation_fraction * n_rows) < 2:
                raise ValueError(
                    "IterativeMagnitudePruning holds out validation_fraction="
                    f"{self.validation_fraction} of the n_samples={n_rows} rows to choose the "
                    "pruning rounds, which leaves fewer than 2 to train on: pass more rows, or "
                    "X_val and y_val."
                )
            X_fit, X_sel, y_fit, y_sel = train_test_split(
                X,
                y,
                test_size=self.validation_fraction,
                random_state=int(rng.randint(np.iinfo(np.int32).max)),
            )
            X_final, y_final = X, y
        else:
            X_fit, y_fit, X_sel, y_sel = X, y, X_val, y_val
            X_final, y_final = X, y

        data = base._prepare(X_fit, y_fit)
        self.n_tasks_ = base.n_tasks_
        # Labels keep their type; nullable pandas numbers give NaN for pd.NA.
        y_sel = label_array(y_sel) if is_classifier(base) else _nullable_as_float(y_sel)
        y_sel = y_sel[:, None] if y_sel.ndim == 1 else y_sel
        if y_sel.ndim != 2 or y_sel.shape[1] != self.n_tasks_:
            raise ValueError(
                f"y_val has {y_sel.shape[1] if y_sel.ndim == 2 else y_sel.shape} task column(s) "
                f"but y has {self.n_tasks_}: pass validation targets with the same columns."
            )
        check_scoring(self.scoring, base)
        with seeded(data.seed):
            init_state = copy.deepcopy(base._build_module(data).state_dict())
        self.history_ = []
        # One bar over every training: per task the dense one and n_rounds, then the final.
        total = self.n_tasks_ * (self.n_rounds + 1) + 1
        with progress_bar(total, "pruning", "round", self.verbose >= 2) as self._progress:
            selected = [
                self._search_task(base, data, init_state, t, X_sel, y_sel[:, t])
                for t in range(self.n_tasks_)
            ]
            self.estimator_ = self._final_fit(base, X_final, y_final, init_state, selected)
            self._progress.set_postfix_str("final joint training", refresh=False)
            self._progress.update(1)
        del self._progress  # not a fitted attribute
        self._describe(selected)

    # -------------------------------------------------------------- per task
    def _task_data(self, data, t):
        """The training data with every other task's labels removed."""

        def only_t(Y):
            out = np.full_like(Y, np.nan)
            out[:, t] = Y[:, t]
            keep = ~np.isnan(out[:, t])
            return keep, out

        keep, Y = only_t(data.train[1])
        train = (data.train[0][keep], Y[keep])
        valid = None
        if data.valid is not None:
            keep_v, Yv = only_t(data.valid[1])
            valid = (data.valid[0][keep_v], Yv[keep_v]) if keep_v.any() else None
        n_labelled = (~np.isnan(train[1])).sum(0)
        return data.replace(train=train, valid=valid, n_labelled=n_labelled)

    def _search_task(self, base, data, init_state, t, X_sel, y_sel):
        """Rounds of prune / rewind / retrain for task ``t``; returns its masks."""
        task_data = self._task_data(data, t)
        if len(task_data.train[0]) == 0:
            raise ValueError(
                f"Task {t} has no label among the training rows left after the estimator's "
                "own validation split: give the estimator validation_fraction=None, or pass "
                "more labelled rows for that task."
            )
        epochs = self.retrain_epochs
        with seeded(task_data.seed + t):
            module = base._build_module(task_data)
            module.load_state_dict(init_state)
            rewind_state = init_state
            if self.rewind == "warmup":
                _retrain(base, module, task_data, self.rewind_epoch)
                rewind_state = copy.deepcopy(base.net_.module_.state_dict())
                module = base.net_.module_
            _retrain(base, module, task_data, epochs)
        masks = _task_masks(base.net_.module_, t)
        self._record(t, 0, masks, self._score(base, X_sel, y_sel, t))
        candidates = []
        for r in range(1, self.n_rounds + 1):
            trained = base.net_.module_
            masks = self._prune(trained, t, masks, (1 - self.prune_ratio) ** r)
            module = copy.deepcopy(trained)
            if self.rewind != "none":
                module.load_state_dict(rewind_state)
            _set_task_masks(module, t, masks)
            with seeded(task_data.seed + 1000 * r + t):
                _retrain(base, module, task_data, epochs)
            score = self._score(base, X_sel, y_sel, t)
            self._record(t, r, masks, score)
            candidates.append((score, r, masks))
        if self.select == "last":
            return candidates[-1][2]
        return max(candidates, key=lambda c: (c[0], -c[1]))[2]

    def _prune(self, module, t, masks, keep_fraction):
        weights = [
            (layer.weight.detach().cpu().numpy(), layer.bias.detach().cpu().numpy())
            for layer in module.backbone.layers
        ]
        new_w = prune_masks(
            [w for w, _ in weights], [m for m, _ in masks], keep_fraction, self.scope
        )
        if self.prune_bias:
            new_b = prune_masks(
                [b for _, b in weights], [m for _, m in masks], keep_fraction, self.scope
            )
        else:
            new_b = [m for _, m in masks]
        return list(zip(new_w, new_b))

    def _score(self, base, X_sel, y_sel, t) -> float:
        """Validation score of task ``t`` (higher is better), on the selection rows only."""
        if callable(self.scoring):
            return float(self.scoring(base, X_sel, y_sel, t))
        scoring = self.scoring
        if scoring == "default":
            scoring = "log_loss" if is_classifier(base) else "nll"
        if is_classifier(base):
            from ..estimators.bayesagg import _missing_mask

            classes = base._classes[t]
            # Rows of a class the network never saw in training cannot be scored
            # by its probabilities; they are left out of the selection score.
            rows = ~_missing_mask(y_sel, base.missing_label)
            rows[rows] = np.isin(y_sel[rows], classes)
            _check_selection_rows(rows, t)
            labels = np.array(y_sel[rows].tolist())  # their own type, not object (log_loss)
            if scoring == "accuracy":
                pred = np.asarray(base.predict(_take(X_sel, rows))).reshape(rows.sum(), -1)[:, t]
                return float(np.mean(pred == labels))
            proba = base._task_probabilities(_take(X_sel, rows))[t]
            return -float(log_loss(labels, proba, labels=classes))
        y_t = np.asarray(y_sel, dtype=float)
        rows = ~np.isnan(y_t)
        _check_selection_rows(rows, t)
        mean, std = base.predict(_take(X_sel, rows), return_std=True)
        mean, std = mean.reshape(rows.sum(), -1)[:, t], std.reshape(rows.sum(), -1)[:, t]
        if scoring == "r2":
            return float(r2_score(y_t[rows], mean))
        return -float(gaussian_nll(y_t[rows], mean, std))

    def _record(self, t, r, masks, score) -> None:
        sparsity = _sparsity(masks, self.prune_bias)
        self.history_.append({"task": t, "round": r, "sparsity": sparsity, "score": score})
        line = f"task {t} round {r}: sparsity {sparsity:.3f}, validation score {score:.4f}"
        if self.verbose >= 2:
            self._progress.set_postfix_str(line, refresh=False)
            self._progress.update(1)
        elif self.verbose:
            print(line)

    # --------------------------------------------------------------- final
    def _final_fit(self, base, X, y, init_state, selected):
        estimator = clone(base)
        data = estimator._prepare(X, y)
        with seeded(data.seed):
            module = estimator._build_module(data)
            # All rows may hold classes that the search's rows lacked: a head of another
            # shape keeps its own initialisation (the backbone, which is pruned, rewinds).
            own = module.state_dict()
            module.load_state_dict(
                {k: v for k, v in init_state.items() if own[k].shape == v.shape}, strict=False
            )
            if self.rewind == "warmup":
                _retrain(estimator, module, data, self.rewind_epoch)
                module = estimator.net_.module_
            for t, masks in enumerate(selected):
                _set_task_masks(module, t, masks)
            _retrain(estimator, module, data, self.retrain_epochs)
        return estimator

    def _describe(self, selected) -> None:
        self.masks_ = [[(w.copy(), b.copy()) for w, b in masks] for masks in selected]
        self.sparsity_ = np.array([_sparsity(m, self.prune_bias) for m in selected])
        kept = [np.concatenate([w.ravel() for w, _ in m]) for m in selected]
        T = len(kept)
        self.overlap_ = np.ones((T, T))
        for a in range(T):
            for b in range(a + 1, T):
                union = np.logical_or(kept[a], kept[b]).sum()
                inter = np.logical_and(kept[a], kept[b]).sum()
                self.overlap_[a, b] = self.overlap_[b, a] = inter / union if union else 1.0
        own = _task_own_parameters(self.estimator_.net_.module_)
        self.n_effective_parameters_ = np.array(
            [sum(int(w.sum() + b.sum()) for w, b in m) + own[t] for t, m in enumerate(selected)]
        )

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        sub = self.estimator.__sklearn_tags__()
        tags.estimator_type = sub.estimator_type
        tags.target_tags = sub.target_tags
        tags.regressor_tags = sub.regressor_tags
        tags.classifier_tags = sub.classifier_tags
        return tags

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "estimator_")
