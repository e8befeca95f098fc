"""Small fits run on one torch thread and restore the caller's thread count."""

import numpy as np
import pytest
import torch

from sk_mtbnn import SparseMultiTaskBNNRegressor
from sk_mtbnn._threads import one_thread
from sk_mtbnn.estimators import _base


@pytest.fixture
def two_threads():
    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(previous)


def test_one_thread_restores_the_count_even_on_error(two_threads):
    with pytest.raises(RuntimeError), one_thread():
        assert torch.get_num_threads() == 1
        raise RuntimeError
    assert torch.get_num_threads() == 2


@pytest.mark.parametrize("regime", ["evidence", "network"])
def test_a_small_fit_trains_on_one_thread(two_threads, monkeypatch, regime):
    seen = []
    original = _base.NetworkEstimatorMixin._fit_and_finalise if regime == "network" else None
    if regime == "network":

        def spy(self, data):
            seen.append(torch.get_num_threads())
            return original(self, data)

        monkeypatch.setattr(_base.NetworkEstimatorMixin, "_fit_and_finalise", spy)
    else:
        from sk_mtbnn.estimators import _evidence_regime

        fit = _evidence_regime.EvidenceRegimeMixin._fit_by_evidence

        def spy(self, module, data):
            seen.append(torch.get_num_threads())
            return fit(self, module, data)

        monkeypatch.setattr(_evidence_regime.EvidenceRegimeMixin, "_fit_by_evidence", spy)
    X = np.linspace(-1, 1, 30)[:, None]
    kw = {"max_epochs": 3} if regime == "network" else {}
    SparseMultiTaskBNNRegressor(
        hidden_layer_sizes=(8, 8), n_estimators=1, regime=regime, random_state=0, **kw
    ).fit(X, np.sin(3 * X[:, 0]))
    assert seen == [1]
    assert torch.get_num_threads() == 2


def test_a_blas_limit_inside_one_thread_is_not_set_again(monkeypatch):
    import threadpoolctl

    calls = []
    original = threadpoolctl.threadpool_limits

    def counting(*args, **kwargs):
        calls.append(kwargs)
        return original(*args, **kwargs)

    monkeypatch.setattr(threadpoolctl, "threadpool_limits", counting)
    from sk_mtbnn._threads import one_blas_thread

    with one_thread():
        for _ in range(3):  # as the evidence search does once per L-BFGS run
            with one_blas_thread():
                pass
    assert len(calls) == 1
    with one_blas_thread():  # outside again: the limit is set
        pass
    assert len(calls) == 2
