"""The MoCo v2 InfoNCE loss with queue negatives (ISC's cross-representation contrast, T = 0.07)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def moco_info_nce(query: Tensor, positive: Tensor, queue: Tensor, temperature: float) -> tuple[Tensor, Tensor]:
    """Cross-entropy of ``[q·k+, q·queue] / T`` with the positive at index 0.

    ``query`` and ``positive`` are ``(N, D)``, ``queue`` is ``(K, D)``, all L2-normalised.
    Returns the batch-mean loss and the ``(N, 1 + K)`` logits. Gradient flows to ``query``
    only when the caller passes detached keys and queue, as MoCo does.
    """
    # float32 even under autocast: logits divided by T = 0.07 lose too much in half precision
    with torch.autocast(query.device.type, enabled=False):
        query, positive, queue = query.float(), positive.float(), queue.float()
        positive_logits = (query * positive).sum(dim=1, keepdim=True)
        negative_logits = query @ queue.t()
        logits = torch.cat([positive_logits, negative_logits], dim=1) / temperature
        target = torch.zeros(query.shape[0], dtype=torch.long, device=query.device)
        return F.cross_entropy(logits, target), logits
