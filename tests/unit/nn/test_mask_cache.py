"""The all-ones-mask cache of MaskedMLP sees writes that bypass the version counters."""

import numpy as np
import pytest
import torch

from sk_mtbnn.nn.backbone import MaskedMLP


@pytest.mark.parametrize("how", ["data", "numpy"])
def test_eval_mode_sees_writes_around_the_version_counter(how):
    mlp = MaskedMLP(3, (8, 8), n_tasks=2).eval()
    x = torch.randn(5, 3)
    assert mlp.is_dense()
    dense_out = mlp(x)
    mask = mlp.masks()[0][0]
    if how == "data":
        mask.data[1].zero_()
    else:
        mask.numpy()[1] = 0.0
    assert not mlp.is_dense()
    out = mlp(x)
    # Task 1's first layer now sees only its bias, so its output changes; task 0 keeps
    # the same weights and masks, so its output is unchanged (exact up to float rounding).
    torch.testing.assert_close(out[0], dense_out[0])
    assert not torch.allclose(out[1], dense_out[1])


def test_train_mode_cache_is_reset_by_a_mode_switch():
    mlp = MaskedMLP(3, (8,), n_tasks=2).train()
    assert mlp.is_dense()
    mlp.masks()[0][0].data[0, 0, 0] = 0.0  # bypasses the counter: the cache keeps "dense"
    mlp.eval()
    assert not mlp.is_dense()
    mlp.train()
    assert not mlp.is_dense()  # the switch forgot the stale answer


def test_set_masks_is_seen_in_train_mode():
    mlp = MaskedMLP(3, (8,), n_tasks=2).train()
    assert mlp.is_dense()
    masks = [(np.zeros((2, 8, 3)), np.ones((2, 8)))]
    mlp.set_masks(masks)
    assert not mlp.is_dense()
