"""SGD with a multi-step schedule for the small heads trained on frozen features.

The linear probe and the two detection heads (frame-wise and window) train one ``nn.Linear``
for thousands of mini-batch steps of a few microseconds of arithmetic each. ``torch.optim.SGD``
+ ``MultiStepLR`` would cost those stages more than the arithmetic: PyTorch's optimisers import
``torch._dynamo`` on first use (1.3-1.8 s per stage process on 2 CPU cores), and each ``step``
goes through wrappers (grad-mode switches, dynamo guards, the scheduler's step counter) worth
several times the update of a small head. :class:`HeadSGD` is the same update and the same
schedule, written out: the operations of PyTorch's single-tensor SGD (its CPU path) in the same
order, and ``MultiStepLR``'s chained decay, so the weights after any number of epochs are
bit-identical to ``torch.optim.SGD(...)`` + ``MultiStepLR(..., gamma)``
(``tests/evaluation/test_head_sgd.py`` compares them). The encoders are fine-tuned with
``torch.optim`` itself.

The gradients of a step come from :func:`linear_cross_entropy`, not from autograd: building and
running the graph of a three-op head cost more than the ops themselves (autograd ~390 us per
step of 256 x 128 features and 52 classes on 2 CPU cores, this ~270 us), with the same bits.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence

import torch

_aten = torch.ops.aten
_MEAN = 1  # ATen's Reduction::Mean
_NO_IGNORED_CLASS = -100  # F.cross_entropy's default ignore_index


@torch.no_grad()
def linear_cross_entropy(weight: torch.Tensor, bias: torch.Tensor, x: torch.Tensor, y: torch.Tensor
                         ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(loss, logits, grad_weight, grad_bias)`` of ``F.cross_entropy(F.linear(x, weight, bias), y)``
    (mean over the batch) without autograd, bit-identical to its ``backward()``: the kernels
    autograd runs, in its order. Forward: ``addmm`` (``F.linear`` of a 2-D input), ``log_softmax``,
    ``nll_loss``. Backward: ``nll_loss_backward`` of a unit gradient, ``log_softmax``'s backward,
    then ``addmm``'s: the weight's as ``mm_mat2_backward`` computes it for the transposed weight
    (``g.t() @ x``), the bias's as the engine reduces the broadcast bias (a sum over the batch).
    ``tests/evaluation/test_head_sgd.py`` compares it with autograd."""
    logits = torch.addmm(bias, x, weight.t())
    log_probs = torch.log_softmax(logits, 1)
    loss, total_weight = _aten.nll_loss_forward(log_probs, y, None, _MEAN, _NO_IGNORED_CLASS)
    grad = _aten.nll_loss_backward(torch.ones_like(loss), log_probs, y, None, _MEAN, _NO_IGNORED_CLASS,
                                   total_weight)
    grad = torch._log_softmax_backward_data(grad, log_probs, 1, log_probs.dtype)
    return loss, logits, grad.t().mm(x), grad.sum(0)


class HeadSGD:
    """SGD (momentum, weight decay, optional Nesterov; no dampening) over ``params`` at a learning
    rate multiplied by ``gamma`` at each of ``milestones`` (epochs, 1-based as ``MultiStepLR``
    counts its ``step`` calls: a milestone m lowers the lr from epoch m + 1 on).

    ``lr`` is the rate the current epoch trains with; call :meth:`end_epoch` after each epoch."""

    def __init__(self, params: Iterable[torch.Tensor], *, lr: float, momentum: float = 0.0,
                 weight_decay: float = 0.0, nesterov: bool = False, milestones: Sequence[int] = (),
                 gamma: float = 0.1):
        self.params = [p for p in params if p.requires_grad]
        if nesterov and momentum <= 0:
            raise ValueError("nesterov needs a momentum > 0")
        self.lr, self.momentum, self.weight_decay, self.nesterov = lr, momentum, weight_decay, nesterov
        self.milestones, self.gamma = Counter(milestones), gamma
        self.epoch = 0
        self._buffers: list[torch.Tensor | None] = [None] * len(self.params)

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        for i, p in enumerate(self.params):
            if p.grad is None:
                continue
            grad = p.grad
            if self.weight_decay != 0:
                grad = grad.add(p, alpha=self.weight_decay)
            if self.momentum != 0:
                buf = self._buffers[i]
                if buf is None:
                    buf = self._buffers[i] = grad.detach().clone()
                else:
                    buf.mul_(self.momentum).add_(grad, alpha=1)
                grad = grad.add(buf, alpha=self.momentum) if self.nesterov else buf
            p.add_(grad, alpha=-self.lr)

    def end_epoch(self) -> None:
        """Advance the schedule: ``MultiStepLR.step`` (decay chained on the current rate)."""
        self.epoch += 1
        if self.epoch in self.milestones:
            self.lr = self.lr * self.gamma ** self.milestones[self.epoch]
