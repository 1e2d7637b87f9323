"""HeadSGD against torch.optim.SGD + MultiStepLR, and linear_cross_entropy against autograd: the
same weights, bit for bit."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from skelrep.evaluation.head_sgd import HeadSGD, linear_cross_entropy
from skelrep.evaluation.linear import make_linear_head, sgd_epoch


def _data(n=90, d=12, c=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, c, (n,), generator=g)
    x = torch.randn(n, d, generator=g) + torch.nn.functional.one_hot(y, d).float() * 2.0
    return x, y


def _train(make_opt, epochs=9, **settings):
    """Train a head with ``sgd_epoch`` and return (weights, per-epoch lr, per-epoch loss)."""
    x, y = _data()
    gen = torch.Generator().manual_seed(1)
    head = make_linear_head(x.shape[1], 5, gen)
    opt, end_epoch, lr_of = make_opt(head, **settings)
    lrs, losses = [], []
    for _ in range(epochs):
        lrs.append(lr_of())
        losses.append(sgd_epoch(head, opt, x, y, 16, gen)[0])
        end_epoch()
    return {k: v.clone() for k, v in head.state_dict().items()}, lrs, losses


def _torch(head, milestones, **kw):
    opt = torch.optim.SGD(head.parameters(), **kw)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=list(milestones), gamma=0.1)
    return opt, sched.step, lambda: opt.param_groups[0]["lr"]


def _ours(head, milestones, **kw):
    opt = HeadSGD(head.parameters(), milestones=milestones, **kw)
    return opt, opt.end_epoch, lambda: opt.lr


@pytest.mark.parametrize("settings", [
    dict(lr=0.1, momentum=0.9, weight_decay=1e-4, milestones=[3, 6]),
    dict(lr=0.03, momentum=0.9, weight_decay=0.0, milestones=[]),
    dict(lr=0.05, momentum=0.9, weight_decay=5e-4, nesterov=True, milestones=[2, 2, 7]),  # a repeated milestone
    dict(lr=0.2, momentum=0.0, weight_decay=1e-3, milestones=[4]),
])
def test_same_weights_lr_and_losses_as_torch_sgd_with_multistep(settings):
    ours, theirs = _train(_ours, **settings), _train(_torch, **settings)
    for key in theirs[0]:
        assert torch.equal(ours[0][key], theirs[0][key]), key
    assert ours[1] == theirs[1] and ours[2] == theirs[2]
    assert theirs[1][0] != theirs[1][-1] or not settings["milestones"]  # the schedule did act


def _autograd(weight, bias, x, y):
    w, b = weight.clone().requires_grad_(), bias.clone().requires_grad_()
    logits = torch.nn.functional.linear(x, w, b)
    loss = torch.nn.functional.cross_entropy(logits, y)
    loss.backward()
    return loss.detach(), logits.detach(), w.grad, b.grad


@pytest.mark.parametrize("n, d, c", [(256, 128, 52), (1, 7, 3), (37, 64, 60), (1000, 33, 2), (16, 256, 120)])
def test_linear_cross_entropy_is_autograd_bit_for_bit(n, d, c):
    g = torch.Generator().manual_seed(n * 1000 + d)
    x = torch.randn(n, d, generator=g) * 3.0
    y = torch.randint(0, c, (n,), generator=g)
    weight, bias = torch.randn(c, d, generator=g) * 0.5, torch.randn(c, generator=g)
    ours, theirs = linear_cross_entropy(weight, bias, x, y), _autograd(weight, bias, x, y)
    for name, a, b in zip(("loss", "logits", "grad_weight", "grad_bias"), ours, theirs, strict=True):
        assert a.shape == b.shape and torch.equal(a, b), name


def test_linear_cross_entropy_rejects_a_class_out_of_range():
    with pytest.raises((IndexError, RuntimeError)):
        linear_cross_entropy(torch.zeros(3, 4), torch.zeros(3), torch.ones(2, 4), torch.tensor([0, 3]))


def _autograd_epoch(fc, optimizer, x, y, batch_size, generator):
    """sgd_epoch as written with autograd (the reference)."""
    order = torch.randperm(x.shape[0], generator=generator)
    loss_sum, correct = 0.0, 0
    for start in range(0, x.shape[0], batch_size):
        idx = order[start: start + batch_size]
        logits = fc(x[idx])
        loss = torch.nn.functional.cross_entropy(logits, y[idx])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        loss_sum += float(loss.detach()) * idx.numel()
        correct += int((logits.detach().argmax(dim=1) == y[idx]).sum())
    return loss_sum / x.shape[0], 100.0 * correct / x.shape[0]


@pytest.mark.parametrize("weight_decay", [0.0, 1e-4])
def test_sgd_epoch_trains_the_weights_autograd_would(weight_decay):
    runs = []
    for epoch_fn in (sgd_epoch, _autograd_epoch):
        x, y = _data(n=203, d=24, c=7, seed=3)
        gen = torch.Generator().manual_seed(5)
        head = make_linear_head(24, 7, gen)
        opt = HeadSGD(head.parameters(), lr=0.2, momentum=0.9, weight_decay=weight_decay, milestones=[3])
        stats = []
        for _ in range(5):
            stats.append(epoch_fn(head, opt, x, y, 32, gen))
            opt.end_epoch()
        runs.append((head.weight.detach().clone(), head.bias.detach().clone(), stats))
    (w0, b0, s0), (w1, b1, s1) = runs
    assert torch.equal(w0, w1) and torch.equal(b0, b1) and s0 == s1
    assert s0[-1][0] < s0[0][0]  # it learned


def test_a_parameter_without_gradient_is_left_alone():
    frozen, trained = torch.nn.Parameter(torch.ones(3)), torch.nn.Parameter(torch.ones(3))
    opt = HeadSGD([frozen, trained], lr=0.5, momentum=0.9)
    trained.grad = torch.full((3,), 2.0)
    opt.step()
    assert torch.equal(frozen, torch.ones(3)) and torch.equal(trained.detach(), torch.zeros(3))
    opt.zero_grad()
    assert trained.grad is None


def test_nesterov_needs_momentum():
    with pytest.raises(ValueError, match="momentum"):
        HeadSGD([torch.nn.Parameter(torch.ones(1))], lr=0.1, nesterov=True)


def test_training_a_probe_does_not_load_torch_dynamo():
    code = ("import sys, numpy as np\n"
            "from skelrep.evaluation.linear import train_linear_probe\n"
            "x = np.random.default_rng(0).normal(size=(40, 6)).astype(np.float32); y = np.arange(40) % 3\n"
            "train_linear_probe(x, y, x, y, num_classes=3, epochs=3, lr=0.1, milestones=[2], batch_size=8,"
            " progress=False)\n"
            "print('torch._dynamo' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
