"""Top-k accuracy (linear probe, late-fusion rows of ``skelrep compare``) and the array conversion KNN shares."""

from __future__ import annotations

import numpy as np
import torch

ArrayLike = np.ndarray | torch.Tensor


def to_numpy(x: ArrayLike) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def topk_accuracy(scores: ArrayLike, labels: ArrayLike, k: int = 1) -> float:
    """Percentage of rows whose label is among the k highest scores.

    Ties between equal scores go to the lower class index (stable sort), so the result is
    deterministic even for constant scores.
    """
    s = to_numpy(scores)
    y = to_numpy(labels).astype(np.int64).reshape(-1)
    if s.ndim != 2 or s.shape[0] != y.shape[0]:
        raise ValueError(f"scores must be (N, C) with N = len(labels); got {s.shape} and {y.shape}")
    if s.shape[0] == 0:
        raise ValueError("topk_accuracy of an empty set is undefined")
    if not 1 <= k <= s.shape[1]:
        raise ValueError(f"k must be in 1..{s.shape[1]}, got {k}")
    top = np.argsort(-s, axis=1, kind="stable")[:, :k]
    hits = (top == y[:, None]).any(axis=1)
    return float(100.0 * hits.mean())



# what each evaluation stage's one-line summary reports: (name, metric key or, for detection,
# the start of one: the key ends in the official θ)
_SUMMARY = {"linear": ("top-1", "top1_last"), "knn": ("KNN-1", "top1"), "detect": ("mAP_action", "mAP_action_theta")}
_BASELINES = (("random_init", "random init"), ("handcrafted", "hand-crafted"))


def summary_line(stage: str, protocol: str, metrics: dict[str, float]) -> str:
    """The line an evaluation stage ends with: its headline metric for the pretrained encoder and
    the same metric for the baselines it evaluated, e.g. ``linear ntu60-xsub: top-1 33.5 (random
    init 21.0, hand-crafted 26.4)``; ``detect`` names the θ of its mAP_action and adds the other
    detection protocols' (``detect/<protocol>/...``, their baselines ``detect/random_init/<protocol>/...``),
    e.g. ``...; window 10.2 (random init 6.0); dense_finetune 20.1``."""
    name, key = _SUMMARY[stage]

    def find(prefix: str) -> tuple[str, float] | None:
        """(the key's rest after ``prefix``, value) of the first matching key with a value."""
        hits = sorted(k for k, v in metrics.items() if v is not None and (k == prefix or (
            stage == "detect" and k.startswith(prefix) and "/" not in k[len(prefix):])))
        return (hits[0][len(prefix):], float(metrics[hits[0]])) if hits else None

    def baselines(part: str) -> str:
        """`` (random init 21.0, hand-crafted 26.4)`` for the baselines measured under
        ``<stage>/<variant>/<part><key>``; empty when none was."""
        found = [f"{text} {b[1]:.1f}" for variant, text in _BASELINES
                 if (b := find(f"{stage}/{variant}/{part}{key}")) is not None]
        return f" ({', '.join(found)})" if found else ""

    others = []
    if stage == "detect":  # detect/<protocol>/mAP_action_theta...: the other detection protocols
        variants = {variant for variant, _ in _BASELINES}
        for part in sorted({k.split("/")[1] for k in metrics if k.count("/") == 2} - variants):
            found = find(f"detect/{part}/{key}")
            if found is not None:
                others.append(f"{part} {found[1]:.1f}" + baselines(f"{part}/"))
    main = find(f"{stage}/{key}")
    if main is None:
        if others:
            return f"{stage} {protocol}: {name} " + "; ".join(others)
        return f"{stage} {protocol}: no {name} measured"
    rest, value = main
    return (f"{stage} {protocol}: {name} {value:.1f}" + (f" at θ={rest}" if rest else "")
            + baselines("") + "".join(f"; {o}" for o in others))
