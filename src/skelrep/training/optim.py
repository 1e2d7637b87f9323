"""PyTorch's Adam and SGD, without the import of ``torch._dynamo`` they make on first use.

``torch.optim.Optimizer`` wraps ``add_param_group``, ``zero_grad``, ``state_dict`` and
``load_state_dict`` in ``torch._disable_dynamo`` and every ``step`` in a grad-mode wrapper that
calls ``torch._dynamo.graph_break()``: both import ``torch._dynamo`` when first called, which
takes 1.0-1.3 s of a 2-core machine in each stage that trains (6 pretraining stages, the
fine-tuning, transfer and detection stages) and does nothing in eager mode. ``EagerAdam`` and
``EagerSGD`` are the torch classes with those methods called undecorated (``inspect.unwrap``:
each decorator keeps the plain function as ``__wrapped__``), and ``step`` run under the grad mode
the wrapper would set. The update arithmetic, the state layout and ``state_dict`` are PyTorch's
own, so the weights are bit-identical and checkpoints load in either class (tested against
``torch.optim``). Step hooks and the profiler's ``record_function`` still apply: the base
``__init__`` wraps ``step`` with them as for any optimizer.

Eager mode only: under ``torch.compile`` of a function that calls ``step``, use ``torch.optim``,
whose graph breaks keep the update out of the compiled graph. The pretraining loop does not
compile (``benchmarks/README.md``: no gain on CPU).
"""

from __future__ import annotations

import inspect

import torch


def _plain(method):
    # The function under torch's decorators (profiling hook, grad mode, _disable_dynamo); a
    # torch version that stops keeping ``__wrapped__`` gets the decorated method, which is slower
    # to start but computes the same.
    return inspect.unwrap(method)


_ADD_PARAM_GROUP = _plain(torch.optim.Optimizer.add_param_group)
_ZERO_GRAD = _plain(torch.optim.Optimizer.zero_grad)
_STATE_DICT = _plain(torch.optim.Optimizer.state_dict)
_LOAD_STATE_DICT = _plain(torch.optim.Optimizer.load_state_dict)


class _EagerMethods:
    """The decorated methods of ``torch.optim.Optimizer``, called as their plain functions."""

    _torch_step = None  # the torch class's step, unwrapped; set by each subclass

    def add_param_group(self, param_group: dict) -> None:
        _ADD_PARAM_GROUP(self, param_group)

    def zero_grad(self, set_to_none: bool = True) -> None:
        _ZERO_GRAD(self, set_to_none)

    def state_dict(self) -> dict:
        return _STATE_DICT(self)

    def load_state_dict(self, state_dict: dict) -> None:
        _LOAD_STATE_DICT(self, state_dict)

    def step(self, closure=None):
        # What ``_use_grad_for_differentiable`` does around the update, minus its graph breaks.
        with torch.set_grad_enabled(self.defaults["differentiable"]):
            return type(self)._torch_step(self, closure)


class EagerAdam(_EagerMethods, torch.optim.Adam):
    """``torch.optim.Adam`` (same arguments, same update, same state) that never imports dynamo."""

    _torch_step = staticmethod(_plain(torch.optim.Adam.step))


class EagerSGD(_EagerMethods, torch.optim.SGD):
    """``torch.optim.SGD`` (same arguments, same update, same state) that never imports dynamo."""

    _torch_step = staticmethod(_plain(torch.optim.SGD.step))
