"""EagerAdam / EagerSGD: torch.optim's update bit for bit, its checkpoints, and no torch._dynamo."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from skelrep.training.optim import EagerAdam, EagerSGD

# (ours, torch's, keyword arguments): the configurations the pipeline builds, and the options around them
CASES = [
    (EagerAdam, torch.optim.Adam, {"lr": 1e-3, "weight_decay": 1e-5}),
    (EagerAdam, torch.optim.Adam, {"lr": 3e-3, "betas": (0.8, 0.95), "amsgrad": True}),
    (EagerSGD, torch.optim.SGD, {"lr": 0.1, "momentum": 0.9, "weight_decay": 1e-4}),
    (EagerSGD, torch.optim.SGD, {"lr": 0.05}),
    (EagerSGD, torch.optim.SGD, {"lr": 0.05, "momentum": 0.9, "nesterov": True}),
]
IDS = ["adam", "adam-amsgrad", "sgd-momentum-wd", "sgd-plain", "sgd-nesterov"]


def _model(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.BatchNorm1d(8), torch.nn.GELU(), torch.nn.Linear(8, 3))
    model.extra = torch.nn.Parameter(torch.randn(4))  # never used: its grad stays None, the step skips it
    return model


def _train(model, opt, steps: int, start: int = 0, sched=None) -> list[float]:
    losses = []
    for i in range(start, start + steps):
        g = torch.Generator().manual_seed(100 + i)
        x, y = torch.randn(16, 6, generator=g), torch.randint(0, 3, (16,), generator=g)
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        if sched is not None:
            sched.step()
        losses.append(loss.item())
    return losses


def _assert_bitwise_equal(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def _assert_same_state(a: dict, b: dict) -> None:
    assert a["param_groups"] == b["param_groups"]
    assert a["state"].keys() == b["state"].keys()
    for i in a["state"]:
        _assert_bitwise_equal(a["state"][i], b["state"][i])


@pytest.mark.parametrize(("ours", "theirs", "kw"), CASES, ids=IDS)
def test_the_update_is_torch_s_bit_for_bit_under_a_schedule(ours, theirs, kw):
    runs = []
    for cls in (ours, theirs):
        model = _model()
        # two parameter groups, as a fine-tuned encoder and its head may have
        groups = [{"params": list(model[0].parameters())},
                  {"params": [*model[1].parameters(), *model[3].parameters(), model.extra], "lr": kw["lr"] / 2}]
        opt = cls(groups, **kw)
        sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=[3, 5], gamma=0.1)
        losses = _train(model, opt, 7, sched=sched)
        runs.append((losses, model.state_dict(), opt.state_dict(), sched.state_dict()))
    (l_a, m_a, o_a, s_a), (l_b, m_b, o_b, s_b) = runs
    assert l_a == l_b
    _assert_bitwise_equal(m_a, m_b)
    _assert_same_state(o_a, o_b)
    assert s_a == s_b


@pytest.mark.parametrize(("ours", "theirs", "kw"), CASES, ids=IDS)
@pytest.mark.parametrize("writer_is_ours", [True, False], ids=["ours-to-torch", "torch-to-ours"])
def test_a_checkpoint_of_either_class_resumes_in_the_other(ours, theirs, kw, writer_is_ours):
    straight = _model()
    opt = theirs(straight.parameters(), **kw)
    _train(straight, opt, 6)

    first, second = (ours, theirs) if writer_is_ours else (theirs, ours)
    model = _model()
    opt = first(model.parameters(), **kw)
    _train(model, opt, 3)
    state = opt.state_dict()
    opt = second(model.parameters(), **kw)
    opt.load_state_dict(state)
    _train(model, opt, 3, start=3)
    _assert_bitwise_equal(model.state_dict(), straight.state_dict())


def test_step_hooks_run_and_the_grad_mode_is_restored():
    model = _model()
    opt = EagerAdam(model.parameters(), lr=1e-3)
    calls = []
    opt.register_step_pre_hook(lambda o, args, kwargs: calls.append(("pre", torch.is_grad_enabled())))
    opt.register_step_post_hook(lambda o, args, kwargs: calls.append(("post", torch.is_grad_enabled())))
    model(torch.randn(4, 6)).sum().backward()
    with torch.enable_grad():
        opt.step()
        assert torch.is_grad_enabled()
    assert calls == [("pre", True), ("post", True)]


def test_the_closure_runs_with_grad_and_its_loss_is_returned():
    model = _model()
    opt = EagerSGD(model.parameters(), lr=0.1)
    x = torch.randn(4, 6)

    def closure():
        opt.zero_grad()
        loss = model(x).sum()
        loss.backward()  # fails if the step ran the closure without grad
        return loss

    assert isinstance(opt.step(closure), torch.Tensor)


def test_zero_grad_sets_none_or_zeros_as_asked():
    model = _model()
    opt = EagerSGD(model.parameters(), lr=0.1)
    model(torch.randn(4, 6)).sum().backward()
    opt.zero_grad(set_to_none=False)
    assert torch.equal(model[0].weight.grad, torch.zeros_like(model[0].weight))
    opt.zero_grad()
    assert model[0].weight.grad is None


def test_a_torch_optimizer_built_first_does_not_change_ours():
    # building a torch.optim optimizer patches its class's step with the profiling hook; ours unwraps
    # to the same plain function either way
    torch.optim.Adam(_model().parameters(), lr=1e-3)
    a, b = _model(), _model()
    _train(a, torch.optim.Adam(a.parameters(), lr=1e-3), 3)
    _train(b, EagerAdam(b.parameters(), lr=1e-3), 3)
    _assert_bitwise_equal(a.state_dict(), b.state_dict())


def test_invalid_arguments_fail_as_torch_s_do():
    with pytest.raises(ValueError, match="learning rate"):
        EagerAdam(_model().parameters(), lr=-1.0)
    with pytest.raises(ValueError, match="momentum"):
        EagerSGD(_model().parameters(), lr=0.1, nesterov=True)


def test_pretraining_with_either_optimizer_and_a_resume_never_imports_torch_dynamo(tmp_path):
    # A fresh process: the USDRL loop with Adam, killed after epoch 1 and resumed (the optimizer's
    # load_state_dict), then with SGD; torch._dynamo costs ~1 s of start-up wherever it is imported.
    code = f"""
import sys
import pytest, torch
from pathlib import Path
from skelrep.data.dataset import SkeletonH5Dataset
from tests.conftest import TINY_SPLIT, write_tiny_h5
from tests.training.test_pretrain import _kill_after_epoch_1, _run, tiny_usdrl
root = Path({str(tmp_path)!r})
data = SkeletonH5Dataset(write_tiny_h5(root / "tiny.h5", frames=24), TINY_SPLIT, "train")
method = tiny_usdrl(epochs=2, milestones=[1])
_kill_after_epoch_1(method, data, root / "adam")
assert _run(method, data, root / "adam").resumed_from_epoch == 2
_run(tiny_usdrl(epochs=1, milestones=[1], optimizer="sgd"), data, root / "sgd")
print("torch._dynamo" in sys.modules)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parents[2])
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "False"
