"""Search spaces for Optuna and scikit-optimize, and both searches end to end."""

import pickle
import sys

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.model_selection import KFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sk_mtbnn import (
    BayesAggMTLClassifier,
    BayesAggMTLRegressor,
    IterativeMagnitudePruning,
    SparseMultiTaskBNNRegressor,
)
from sk_mtbnn.metrics import gaussian_nll
from sk_mtbnn.search import Architecture, search_space

ESTIMATORS = [
    SparseMultiTaskBNNRegressor(),
    BayesAggMTLRegressor(),
    BayesAggMTLClassifier(),
    IterativeMagnitudePruning(SparseMultiTaskBNNRegressor()),
]


def neg_nll(estimator, X, y):
    mean, std = estimator.predict(X, return_std=True)
    return -gaussian_nll(y, mean, std)


def _contains(dimension, value, backend):
    """Whether a distribution of ``backend`` can produce ``value``."""
    if backend == "optuna":
        if hasattr(dimension, "choices"):
            return value in dimension.choices
        return dimension.low <= value <= dimension.high
    return value in dimension


@pytest.mark.parametrize("backend", ["optuna", "skopt"])
@pytest.mark.parametrize("estimator", ESTIMATORS, ids=lambda e: type(e).__name__)
def test_every_range_contains_the_default(estimator, backend):
    # The ranges are meant to be centred on the defaults: a search can always
    # come back to them.
    pytest.importorskip({"optuna": "optuna", "skopt": "skopt"}[backend])
    space = search_space(estimator, backend)
    defaults = estimator.get_params(deep=True)
    assert set(space) <= set(defaults)
    for name, dimension in space.items():
        assert _contains(dimension, defaults[name], backend), name


def test_the_spaces_name_the_parameters_that_matter():
    pytest.importorskip("optuna")
    sparse = search_space(SparseMultiTaskBNNRegressor())
    assert {"hidden_layer_sizes", "learning_rate", "weight_decay", "prior_scale"} <= set(sparse)
    assert sparse["learning_rate"].log and sparse["weight_decay"].log
    assert {"gamma", "s"} <= set(search_space(BayesAggMTLRegressor()))
    pruning = search_space(IterativeMagnitudePruning(BayesAggMTLClassifier(aggregator="mean")))
    assert {"prune_ratio", "n_rounds", "estimator__gamma", "estimator__learning_rate"} <= set(
        pruning
    )


def test_pipeline_names_carry_the_step_prefix():
    pytest.importorskip("optuna")
    pipe = make_pipeline(StandardScaler(), SparseMultiTaskBNNRegressor())
    space = search_space(pipe, params=["learning_rate"])
    assert list(space) == ["sparsemultitaskbnnregressor__learning_rate"]
    pipe.set_params(**{name: 1e-3 for name in space})  # the names are valid parameters


def test_classes_work_like_instances():
    pytest.importorskip("optuna")
    assert search_space(BayesAggMTLRegressor).keys() == search_space(BayesAggMTLRegressor()).keys()


def test_custom_architectures():
    pytest.importorskip("optuna")
    pytest.importorskip("skopt")
    choices = [(8,), (8, 8)]
    optuna_dim = search_space(BayesAggMTLRegressor(), hidden_layer_sizes=choices)
    assert optuna_dim["hidden_layer_sizes"].choices == ((8,), (8, 8))
    skopt_dim = search_space(BayesAggMTLRegressor(), "skopt", hidden_layer_sizes=choices)
    assert list(skopt_dim["hidden_layer_sizes"].categories) == choices
    # A ragged list of tuples is what broke skopt; Architecture keeps each whole.
    drawn = skopt_dim["hidden_layer_sizes"].rvs(20, random_state=0)
    assert {tuple(a) for a in drawn} == {(8,), (8, 8)}


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"backend": "hyperopt"}, ValueError, "backend must be one of"),
        ({"params": ["learning_rate", "lr"]}, ValueError, r"\['lr'\] are not in the search"),
        ({"params": "learning_rate"}, TypeError, "list of parameter names"),
        ({"hidden_layer_sizes": [(8,), ()]}, ValueError, "non-empty sequence"),
        ({"hidden_layer_sizes": [(8, 0)]}, ValueError, "positive integers"),
        ({"hidden_layer_sizes": []}, ValueError, "at least one architecture"),
    ],
)
def test_bad_arguments_say_what_to_change(kwargs, error, match):
    pytest.importorskip("optuna")
    with pytest.raises(error, match=match):
        search_space(SparseMultiTaskBNNRegressor(), **kwargs)


def test_unknown_estimator_is_refused():
    with pytest.raises(TypeError, match="search_space knows the estimators"):
        search_space(StandardScaler())


@pytest.mark.parametrize(
    "backend, module, package",
    [("optuna", "optuna.distributions", "optuna"), ("skopt", "skopt.space", "scikit-optimize")],
)
def test_missing_library_names_the_extra(backend, module, package, monkeypatch):
    monkeypatch.setitem(sys.modules, module, None)  # makes the import fail
    with pytest.raises(ImportError, match=rf"sk_mtbnn\[search\].*pip install {package}"):
        search_space(SparseMultiTaskBNNRegressor(), backend)


def test_architecture_behaves_like_its_tuple():
    a = Architecture([64, 64])
    assert a == (64, 64) and (64, 64) == a and a != (64,) and a != "64"
    assert hash(a) == hash((64, 64)) and repr(a) == "(64, 64)"
    assert pickle.loads(pickle.dumps(a)) == a
    ragged = np.array([Architecture((8,)), Architecture((8, 8))])
    assert ragged.shape == (2,)  # one object each, not a ragged array
    estimator = SparseMultiTaskBNNRegressor(hidden_layer_sizes=a)
    assert clone(estimator).get_params()["hidden_layer_sizes"] == (64, 64)


def _draws(space, backend, n=3):
    """``n`` parameter settings drawn at random from a space."""
    if backend == "skopt":
        return [{k: d.rvs(1, random_state=i)[0] for k, d in space.items()} for i in range(n)]
    import optuna

    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    return [study.ask(space).params for _ in range(n)]


@pytest.mark.parametrize("backend", ["optuna", "skopt"])
@pytest.mark.parametrize(
    "estimator",
    [
        SparseMultiTaskBNNRegressor(max_epochs=2),
        BayesAggMTLRegressor(max_epochs=2),
        BayesAggMTLClassifier(max_epochs=2),
        IterativeMagnitudePruning(SparseMultiTaskBNNRegressor(max_epochs=2), retrain_epochs=1),
    ],
    ids=lambda e: type(e).__name__,
)
def test_every_draw_is_accepted_by_fit(estimator, backend):
    # The ranges stay inside what the estimators validate, in the types the
    # libraries draw (numpy integers from skopt, Architecture values, ...).
    pytest.importorskip({"optuna": "optuna", "skopt": "skopt"}[backend])
    rng = np.random.RandomState(0)
    X = rng.randn(40, 2)
    y = (X > 0).astype(int) if isinstance(estimator, BayesAggMTLClassifier) else X.copy()
    space = search_space(estimator, backend, hidden_layer_sizes=[(4,), (4, 4)])
    for params in _draws(space, backend):
        clone(estimator).set_params(**params).fit(X, y)


# ----------------------------------------------------------- end to end
@pytest.fixture(scope="module")
def tiny_problem():
    rng = np.random.RandomState(0)
    X = rng.uniform(-2, 2, size=(60, 2))
    y = np.column_stack([np.sin(X[:, 0]), 0.5 * X[:, 1]]) + 0.1 * rng.randn(60, 2)
    y[::4, 1] = np.nan
    return X, y


def _tiny_search_space(backend):
    return search_space(
        SparseMultiTaskBNNRegressor(),
        backend,
        params=["hidden_layer_sizes", "learning_rate"],
        hidden_layer_sizes=[(8,), (4, 4)],
    )


def _assert_best_is_argmax(search, scores, params, X, y, cv):
    """The search kept the trial of best mean CV score, and that score is reproducible."""
    best = int(np.argmax(scores))
    assert len(scores) == 3
    assert search.best_params_ == params[best]
    assert search.best_score_ == pytest.approx(scores[best])
    # An independent re-evaluation of the winner with the same folds: the
    # fits are seeded, so the score agrees to float precision.
    estimator = SparseMultiTaskBNNRegressor(max_epochs=5, random_state=0)
    again = cross_val_score(estimator.set_params(**params[best]), X, y, scoring=neg_nll, cv=cv)
    assert again.mean() == pytest.approx(search.best_score_, rel=1e-6)
    mean, std = search.best_estimator_.predict(X[:3], return_std=True)
    assert mean.shape == std.shape == (3, 2)


@pytest.mark.filterwarnings("ignore:OptunaSearchCV is experimental")
@pytest.mark.filterwarnings("ignore:`optuna.terminator` module has been deprecated:FutureWarning")
def test_optuna_search_cv_runs_and_keeps_the_best(tiny_problem):
    optuna = pytest.importorskip("optuna")
    integration = pytest.importorskip("optuna_integration")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    X, y = tiny_problem
    cv = KFold(2)
    search = integration.OptunaSearchCV(
        SparseMultiTaskBNNRegressor(max_epochs=5, random_state=0),
        _tiny_search_space("optuna"),
        n_trials=3,
        cv=cv,
        scoring=neg_nll,
        random_state=0,
    ).fit(X, y)
    trials = search.trials_
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
    scores = [t.user_attrs["mean_test_score"] for t in trials]
    _assert_best_is_argmax(search, scores, [t.params for t in trials], X, y, cv)


def test_bayes_search_cv_runs_and_keeps_the_best(tiny_problem):
    skopt = pytest.importorskip("skopt")
    X, y = tiny_problem
    cv = KFold(2)
    search = skopt.BayesSearchCV(
        SparseMultiTaskBNNRegressor(max_epochs=5, random_state=0),
        _tiny_search_space("skopt"),
        n_iter=3,
        cv=cv,
        scoring=neg_nll,
        random_state=0,
    ).fit(X, y)
    results = search.cv_results_
    params = [dict(p) for p in results["params"]]
    assert np.all(np.isfinite(results["mean_test_score"]))
    _assert_best_is_argmax(search, results["mean_test_score"], params, X, y, cv)
