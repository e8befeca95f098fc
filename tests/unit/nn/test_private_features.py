"""PrivateFeatures: chosen tasks' heads see a map of their own instead of the backbone."""

import pytest
import torch

from sk_mtbnn.nn.backbone import MaskedMLP
from sk_mtbnn.nn.network import MultiTaskNetwork


def test_a_private_task_sees_its_own_map_and_the_others_are_unchanged():
    torch.manual_seed(0)
    net = MultiTaskNetwork(3, 3, hidden_layer_sizes=(8, 8), private_features=True).eval()
    x = torch.randn(6, 3)
    before = net(x)
    own = MaskedMLP(3, (8, 8), n_tasks=1)
    net.private.set_task(1, own)
    after = net(x)
    # Reference: the one-task MLP's own forward pass (an independent code path).
    torch.testing.assert_close(after[1], own(x)[0])
    torch.testing.assert_close(after[[0, 2]], before[[0, 2]])
    assert net.private_tasks().tolist() == [1]
    assert not net.heads_on_shared_representation


def test_private_maps_are_not_trained():
    net = MultiTaskNetwork(2, 2, hidden_layer_sizes=(4, 4), private_features=True)
    assert all(not p.requires_grad for p in net.private.parameters())


def test_private_features_need_the_heads_on_the_backbone():
    with pytest.raises(ValueError, match="no branch layers"):
        MultiTaskNetwork(2, 2, branch_layer_sizes=(4,), private_features=True)


def test_inactive_slot_changes_nothing():
    torch.manual_seed(1)
    a = MultiTaskNetwork(2, 2, hidden_layer_sizes=(4, 4), private_features=True).eval()
    state = {k: v for k, v in a.state_dict().items() if not k.startswith("private.")}
    b = MultiTaskNetwork(2, 2, hidden_layer_sizes=(4, 4)).eval()
    b.load_state_dict(state)
    x = torch.randn(5, 2)
    torch.testing.assert_close(a(x), b(x))
