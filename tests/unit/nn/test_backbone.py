"""Per-task masks are really applied (docs/algorithms.rst, alg-backbone)."""

import pickle

import torch
import torch.nn.functional as F

from sk_mtbnn.nn.backbone import MaskedMLP
from sk_mtbnn.nn.network import MultiTaskNetwork


def test_dense_pass_is_shared_and_equals_a_plain_mlp():
    torch.manual_seed(0)
    mlp = MaskedMLP(3, (5, 4), n_tasks=2)
    x = torch.randn(6, 3)
    out = mlp(x)
    assert out.shape == (2, 6, 4) and mlp.is_dense()
    h = x
    for layer in mlp.layers:
        h = F.silu(F.linear(h, layer.weight, layer.bias))
    torch.testing.assert_close(out[0], h)
    torch.testing.assert_close(out[1], h)
    # One pass expanded over the tasks, not a copy per task.
    assert out.stride(0) == 0


def test_masked_pass_uses_f_linear_with_masked_weights():
    torch.manual_seed(1)
    mlp = MaskedMLP(3, (5, 4), n_tasks=2)
    x = torch.randn(6, 3)
    masks = [
        (torch.bernoulli(torch.full_like(w, 0.5)), torch.bernoulli(torch.full_like(b, 0.5)))
        for w, b in mlp.masks()
    ]
    mlp.set_masks(masks)
    assert not mlp.is_dense()
    out = mlp(x)
    for t in range(2):
        h = x
        for layer, (w_mask, b_mask) in zip(mlp.layers, masks):
            h = F.silu(F.linear(h, w_mask[t] * layer.weight, b_mask[t] * layer.bias))
        torch.testing.assert_close(out[t], h)


def test_dense_flag_follows_in_place_changes_of_the_buffers():
    mlp = MaskedMLP(2, (3,), n_tasks=2)
    assert mlp.is_dense()
    with torch.no_grad():
        mlp.weight_mask_0[1, 0, 0] = 0.0
    assert not mlp.is_dense()
    with torch.no_grad():
        mlp.weight_mask_0.fill_(1.0)
    assert mlp.is_dense()


def test_zeroing_one_tasks_masks_changes_only_that_tasks_output():
    # The original code's forward pass never applied its masks: zeroing every
    # mask left the output unchanged. Here it must change task t, and only t.
    torch.manual_seed(2)
    net = MultiTaskNetwork(4, 3, hidden_layer_sizes=(8, 8)).double()
    x = torch.randn(10, 4, dtype=torch.float64)
    before = net.predict(x).mean.detach()
    masks = [(w.clone(), b.clone()) for w, b in net.backbone.masks()]
    for w, b in masks:
        w[1] = 0.0
        b[1] = 0.0
    net.backbone.set_masks(masks)
    after = net.predict(x).mean.detach()
    assert not torch.allclose(after[1], before[1])
    torch.testing.assert_close(after[0], before[0])
    torch.testing.assert_close(after[2], before[2])


def test_masks_are_saved_with_the_module():
    net = MultiTaskNetwork(3, 2, hidden_layer_sizes=(4,))
    w, b = net.backbone.masks()[0]
    w2, b2 = w.clone(), b.clone()
    w2[0, :2] = 0
    net.backbone.set_masks([(w2, b2)])
    assert "backbone.weight_mask_0" in net.state_dict()
    restored = pickle.loads(pickle.dumps(net))
    torch.testing.assert_close(restored.backbone.masks()[0][0], w2)
    assert not restored.backbone.is_dense()


def test_apply_masks_zeroes_weights_pruned_for_every_task():
    net = MultiTaskNetwork(3, 2, hidden_layer_sizes=(4,))
    w, b = (m.clone() for m in net.backbone.masks()[0])
    w[:, 0, 0] = 0  # pruned for both tasks
    w[0, 1, 1] = 0  # pruned for task 0 only
    net.backbone.set_masks([(w, b)])
    net.backbone.apply_masks_to_weights()
    weight = net.backbone.layers[0].weight
    assert weight[0, 0] == 0 and weight[1, 1] != 0


def test_task_columns_bypass_the_backbone():
    torch.manual_seed(3)
    # Column 2 feeds only task 1's branch; the backbone sees columns 0, 1.
    net = MultiTaskNetwork(
        3, 2, hidden_layer_sizes=(5,), branch_layer_sizes=(4,), task_columns=[[], [2]]
    ).double()
    assert net.backbone.layers[0].in_features == 2
    x = torch.randn(7, 3, dtype=torch.float64)
    x2 = x.clone()
    x2[:, 2] += 1.0
    a, b = net.predict(x).mean, net.predict(x2).mean
    torch.testing.assert_close(a[0], b[0])
    assert not torch.allclose(a[1], b[1])
    assert not net.heads_on_shared_representation


def test_heads_on_shared_representation_only_without_branches_inputs_or_pruning():
    net = MultiTaskNetwork(3, 2, hidden_layer_sizes=(4,))
    assert net.heads_on_shared_representation
    w, b = (m.clone() for m in net.backbone.masks()[0])
    w[0, 0, 0] = 0
    net.backbone.set_masks([(w, b)])
    assert not net.heads_on_shared_representation
    assert not MultiTaskNetwork(3, 2, branch_layer_sizes=(2,)).heads_on_shared_representation
