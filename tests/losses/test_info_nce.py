"""MoCo InfoNCE with queue negatives against a hand computation."""

import math

import torch

from skelrep.losses.info_nce import moco_info_nce


def test_hand_computed_value_and_logits():
    query = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    positive = torch.tensor([[0.0, 1.0], [0.0, 1.0]])
    queue = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    loss, logits = moco_info_nce(query, positive, queue, temperature=0.5)
    # sample 0: [q.k+, q.queue] = [0, 1, 0, -1] -> /0.5 = [0, 2, 0, -2]
    # sample 1: [1, 0, 1, 0] -> [2, 0, 2, 0]
    assert torch.equal(logits, torch.tensor([[0.0, 2.0, 0.0, -2.0], [2.0, 0.0, 2.0, 0.0]]))
    ce0 = -0.0 + math.log(1 + math.exp(2) + 1 + math.exp(-2))
    ce1 = -2.0 + math.log(2 * math.exp(2) + 2)
    assert math.isclose(loss.item(), (ce0 + ce1) / 2, rel_tol=1e-6)


def test_gradient_reaches_only_the_query():
    torch.manual_seed(0)
    query = torch.nn.functional.normalize(torch.randn(4, 8), dim=1).requires_grad_()
    positive = torch.nn.functional.normalize(torch.randn(4, 8), dim=1)
    queue = torch.nn.functional.normalize(torch.randn(16, 8), dim=1)
    loss, logits = moco_info_nce(query, positive, queue, temperature=0.07)
    assert logits.shape == (4, 17)
    loss.backward()
    assert query.grad is not None and query.grad.abs().sum() > 0
    assert not positive.requires_grad and not queue.requires_grad
