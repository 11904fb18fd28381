"""CAS (METHODS.md §7): in eval the output ignores any label; in training the mask is exactly
the raw row W_fc[y]; the auxiliary logits come from the unmasked features."""

from __future__ import annotations

import torch
from ecgarena_caslcnet.cas import CASLCNet, mask_rows
from hypothesis import given, settings
from hypothesis import strategies as st


def net(seed: int = 0) -> CASLCNet:
    torch.manual_seed(seed)
    return CASLCNet(2, 4, width=4)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 1000))
def test_eval_output_does_not_depend_on_a_supplied_label(seed):
    model = net(seed).eval()
    x = torch.randn(3, 2, 64)
    with torch.no_grad():
        plain = model(x)
        for y in (torch.tensor([0, 1, 2]), torch.tensor([3, 3, 3])):
            logits, _ = model.forward_cas(x, y)
            assert torch.equal(logits, plain)


def test_training_masks_with_the_true_label_row_and_aux_sees_unmasked_features():
    model = net(1).train()
    block = model.cas_blocks[0]
    x = torch.randn(5, 8, 16)
    y = torch.tensor([0, 3, 1, 2, 3])
    masked, aux = block.cas(x, y)
    h = torch.nn.functional.relu(block.body(x) + block.skip(x))  # the unmasked features
    assert torch.allclose(aux, block.fc(h.mean(-1)), atol=1e-6)
    assert torch.allclose(masked, h * block.fc.weight[y].unsqueeze(-1), atol=1e-6)
    block.eval()
    masked, aux = block.cas(x, y)  # eval: ŷ = argmax of the aux head, not y
    h = torch.nn.functional.relu(block.body(x) + block.skip(x))  # BatchNorm now in eval
    assert torch.allclose(masked, h * block.fc.weight[aux.argmax(1)].unsqueeze(-1), atol=1e-6)


def test_without_labels_training_masks_with_the_prediction():
    aux = torch.tensor([[0.1, 2.0, -1.0], [3.0, 0.0, 0.0]])
    assert mask_rows(aux, None).tolist() == [1, 0]
    assert mask_rows(aux, torch.tensor([2, 2])).tolist() == [2, 2]


def test_multilabel_mask_is_the_present_label_ranked_highest():
    aux = torch.tensor([[0.1, 2.0, -1.0], [3.0, 0.0, 0.5], [0.0, 0.0, 1.0]])
    y = torch.tensor([[1, 0, 1], [0, 1, 1], [0, 0, 0]])
    assert mask_rows(aux, y).tolist() == [0, 2, 2]  # no label present: ŷ


def test_forward_cas_returns_one_aux_head_per_cas_block_and_trains():
    model = net(2).train()
    x, y = torch.randn(4, 2, 64), torch.tensor([0, 1, 2, 3])
    logits, aux = model.forward_cas(x, y)
    assert logits.shape == (4, 4) and len(aux) == 2 and all(a.shape == (4, 4) for a in aux)
    loss = torch.nn.functional.cross_entropy(logits, y) + sum(
        torch.nn.functional.cross_entropy(a, y) for a in aux
    )
    loss.backward()
    assert all(p.grad is not None for p in model.parameters())
