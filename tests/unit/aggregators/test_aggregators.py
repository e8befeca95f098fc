"""Gradient-combination rules: golden values, invariants, the common convention, and the
backward plumbing."""

import numpy as np
import pytest
import torch
from scipy import stats

from sk_mtbnn.aggregators import (
    BayesAgg,
    GradientMoments,
    MeanAggregator,
    PCGrad,
    TaskSampling,
    TorchJDAggregator,
    project_conflicting,
    resolve_aggregator,
)


def test_pcgrad_golden_values():
    # docs/algorithms.rst, alg-gradients: g_0 = [1, 0], g_1 = [-1, 1] -> [0.5, 1.5]. The
    # original per-tensor, in-place, fixed-order code gave [-0.5, 1.5].
    g = torch.tensor([[1.0, 0.0], [-1.0, 1.0]])
    torch.testing.assert_close(project_conflicting(g), torch.tensor([0.5, 1.5]))
    agg = PCGrad()
    agg.reset([1, 1], torch.Generator().manual_seed(0))
    torch.testing.assert_close(agg.combine(g), torch.tensor([0.5, 1.5]))


def test_pcgrad_projects_against_the_original_gradients():
    # With three tasks, projecting against already-projected gradients gives
    # a different answer; the reference below projects against the originals.
    g = torch.tensor([[1.0, 0.0, 0.0], [-1.0, 1.0, 0.0], [0.0, -1.0, 1.0]], dtype=torch.float64)
    order = [[1, 2], [0, 2], [0, 1]]
    expected = []
    for t in range(3):
        v = g[t].clone()
        for j in order[t]:
            if v @ g[j] < 0:
                v = v - (v @ g[j]) / (g[j] @ g[j]) * g[j]
        expected.append(v)
    torch.testing.assert_close(project_conflicting(g, order), torch.stack(expected).sum(0))


def test_pcgrad_leaves_non_conflicting_gradients_alone():
    g = torch.tensor([[1.0, 2.0], [0.5, 0.1]])
    torch.testing.assert_close(project_conflicting(g), g.sum(0))


@pytest.mark.parametrize("seed", range(5))
def test_pcgrad_two_task_update_does_not_increase_either_loss(seed):
    # For two tasks, g_t'.g_t = |g_t|^2 - (g_0.g_1)^2 / |g_j|^2 >= 0 and
    # g_j'.g_t = 0 after projection, so the update agrees with both gradients.
    g = torch.randn(2, 6, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    update = project_conflicting(g)
    assert torch.all(g @ update >= -1e-12)


def test_pcgrad_is_permutation_equivariant_in_the_tasks():
    g = torch.randn(3, 4, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    order = [[1, 2], [0, 2], [0, 1]]
    perm = [2, 0, 1]
    inverse = {p: i for i, p in enumerate(perm)}
    perm_order = [[inverse[j] for j in order[p]] for p in perm]
    torch.testing.assert_close(
        project_conflicting(g, order), project_conflicting(g[perm], perm_order)
    )


class TwoTaskProblem:
    """Shared w (2,) and task heads v (2, 1): L_t = (a_t . w) * v_t."""

    def __init__(self):
        self.w = torch.tensor([0.3, -0.2], requires_grad=True)
        self.v = torch.tensor([[2.0], [3.0]], requires_grad=True)
        self.a = torch.tensor([[1.0, 0.0], [-1.0, 1.0]])

    def losses(self):
        return (self.a @ self.w) * self.v[:, 0]

    def shared_grads(self):
        # dL_t/dw = a_t v_t
        return self.a * self.v.detach()


def test_jacobian_backward_writes_combined_shared_and_own_task_gradients():
    prob = TwoTaskProblem()
    agg = PCGrad()
    agg.reset([1, 1], torch.Generator().manual_seed(0))
    agg.backward(prob.losses(), torch.tensor([True, True]), [prob.w], [prob.v])
    torch.testing.assert_close(prob.w.grad, project_conflicting(prob.shared_grads()))
    # Each head gets its own task's gradient: dL_t/dv_t = a_t . w.
    torch.testing.assert_close(prob.v.grad, (prob.a @ prob.w.detach())[:, None])


def test_absent_task_contributes_nothing():
    prob = TwoTaskProblem()
    agg = PCGrad()
    agg.reset([1, 1], torch.Generator().manual_seed(0))
    agg.backward(prob.losses(), torch.tensor([True, False]), [prob.w], [prob.v])
    torch.testing.assert_close(prob.w.grad, prob.shared_grads()[0])
    assert prob.v.grad[1, 0] == 0


def test_mean_is_the_gradient_of_the_summed_losses():
    prob = TwoTaskProblem()
    agg = MeanAggregator()
    agg.reset([5, 5], torch.Generator())
    agg.backward(prob.losses(), torch.tensor([True, True]), [prob.w], [prob.v])
    torch.testing.assert_close(prob.w.grad, prob.shared_grads().sum(0))


def test_task_sampling_frequencies_follow_label_counts():
    counts = [100, 300, 600]
    agg = TaskSampling(weighted=True)
    agg.reset(counts, torch.Generator().manual_seed(0))
    w = torch.zeros(3, requires_grad=True)
    hits = np.zeros(3)
    n = 3000
    for _ in range(n):
        w.grad = None
        agg.backward(w * 1.0, torch.tensor([True, True, True]), [w], [])
        hits += (w.grad != 0).numpy()
    assert hits.sum() == n  # exactly one task per step
    expected = n * np.array(counts) / sum(counts)
    # Chi-square goodness of fit; a correct sampler fails at 1e-3 once in a thousand.
    assert stats.chisquare(hits, expected).pvalue > 1e-3


def test_uniform_task_sampling_ignores_label_counts():
    agg = resolve_aggregator("uniform_task_sampling")
    agg.reset([1, 1000], torch.Generator().manual_seed(0))
    w = torch.zeros(2, requires_grad=True)
    hits = np.zeros(2)
    for _ in range(2000):
        w.grad = None
        agg.backward(w * 1.0, torch.tensor([True, True]), [w], [])
        hits += (w.grad != 0).numpy()
    assert stats.chisquare(hits).pvalue > 1e-3


@pytest.mark.parametrize("name", ["MGDA", "IMTLG", "UPGrad"])
def test_torchjd_aggregators_are_accepted(name):
    # UPGrad solves its projections with quadprog, which the ``torchjd`` and
    # ``test`` extras must install (torchjd's ``quadprog-projector`` extra).
    torchjd = pytest.importorskip("torchjd")
    reference = getattr(torchjd.aggregation, name)()
    agg = resolve_aggregator(reference)
    assert isinstance(agg, TorchJDAggregator) and agg.aggregator is not reference
    # The adapter scales torchjd's result (at the scale of the mean) by the
    # number of tasks: the update for the summed losses.
    g = torch.tensor([[1.0, 0.0], [-1.0, 1.0]])
    torch.testing.assert_close(agg.combine(g), 2 * reference(g))
    prob = TwoTaskProblem()
    agg.reset([1, 1], torch.Generator())
    agg.backward(prob.losses(), torch.tensor([True, True]), [prob.w], [prob.v])
    torch.testing.assert_close(prob.w.grad, 2 * reference(prob.shared_grads()))


def test_resolve_aggregator_names_and_errors():
    assert isinstance(resolve_aggregator("mean"), MeanAggregator)
    assert isinstance(resolve_aggregator("pcgrad"), PCGrad)
    user = TaskSampling(weighted=False)
    resolved = resolve_aggregator(user)
    assert resolved is not user and resolved.weighted is False
    with pytest.raises(ValueError, match="aggregator must be one of"):
        resolve_aggregator("mgda")
    with pytest.raises(TypeError, match="torchjd aggregator"):
        resolve_aggregator(42)


# ------------------------------------------------ one convention for every rule
def shared_update(agg, jacobian, seed=0):
    """The update of a shared ``w`` under linear task losses ``L_t = J_t . w``."""
    w = torch.zeros(jacobian.shape[1], requires_grad=True)
    agg.reset([10] * len(jacobian), torch.Generator().manual_seed(seed))
    agg.backward(jacobian @ w, torch.ones(len(jacobian), dtype=torch.bool), [w], [])
    return w.grad


def representation_update(agg, jacobian, var):
    """BayesAgg's update of one sample whose tasks have mean gradients ``jacobian``."""
    agg.reset([10] * len(jacobian), torch.Generator())
    labelled = torch.ones(1, len(jacobian), dtype=torch.bool)
    return agg.combine(GradientMoments(jacobian[None], var[None], labelled, "regression"))[0]


def torchjd_rules(*names):
    torchjd = pytest.importorskip("torchjd")
    return [TorchJDAggregator(getattr(torchjd.aggregation, name)()) for name in names]


def test_every_aggregator_returns_the_sum_of_identical_task_gradients():
    # Three tasks with the same gradient: no rule has a reason to prefer one,
    # and every rule returns the update for the summed losses, 3 g.
    g = torch.tensor([0.5, -1.0, 2.0])
    jacobian = g.expand(3, -1).clone()
    rules = [MeanAggregator(), PCGrad(), TaskSampling(True), TaskSampling(False)]
    rules += torchjd_rules("Mean", "UPGrad", "MGDA", "IMTLG")
    for agg in rules:
        torch.testing.assert_close(shared_update(agg, jacobian), 3 * g, msg=repr(agg))
    # BayesAgg, whatever the gradients' variances: the weights sum to one.
    var = torch.tensor([[0.1, 1.0, 5.0], [2.0, 0.3, 1.0], [1.0, 1.0, 1.0]])
    torch.testing.assert_close(representation_update(BayesAgg(ls_epochs=0), jacobian, var), 3 * g)


def test_rules_agree_on_non_conflicting_gradients():
    # Pairwise non-negative inner products: nothing to project or re-weight.
    jacobian = torch.tensor([[1.0, 0.0, 0.5], [0.5, 1.0, 0.0], [0.0, 0.5, 1.0]])
    assert torch.all(jacobian @ jacobian.T >= 0)
    total = jacobian.sum(0)
    for agg in [MeanAggregator(), PCGrad(), *torchjd_rules("Mean", "UPGrad")]:
        torch.testing.assert_close(shared_update(agg, jacobian), total, msg=repr(agg))
    equal = torch.ones_like(jacobian)
    torch.testing.assert_close(representation_update(BayesAgg(ls_epochs=0), jacobian, equal), total)
    # Uniform task sampling: each step is 3 g_t for one task, the sum in
    # expectation. 3000 steps: the mean is within 5 standard errors of it.
    steps = torch.stack(
        [shared_update(TaskSampling(weighted=False), jacobian, seed) for seed in range(3000)]
    )
    assert all(any(torch.equal(s, 3 * row) for row in jacobian) for s in steps[:50])
    se = steps.std(0) / np.sqrt(len(steps))
    assert torch.all((steps.mean(0) - total).abs() <= 5 * se)
