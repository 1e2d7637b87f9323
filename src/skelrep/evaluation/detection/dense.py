"""Per-frame features of untrimmed videos from a frozen encoder (dense per-frame detection).

Videos are cut into clips of the encoder's length at the native frame rate: training uses
overlapping sliding windows; testing uses consecutive non-overlapping windows, the last one
padded by repeating the last frame, and the padded predictions are discarded.
"""

from __future__ import annotations

import numpy as np
import torch


def _windows(num_frames: int, length: int, stride: int) -> list[int]:
    starts = list(range(0, max(num_frames - length, 0) + 1, stride))
    if starts[-1] + length < num_frames:  # cover the tail
        starts.append(num_frames - length if num_frames >= length else 0)
    return starts


def _clip(joint: np.ndarray, start: int, length: int) -> np.ndarray:
    """(C, T, V, M) -> (C, length, V, M); past the end, the last frame is repeated."""
    idx = np.minimum(np.arange(start, start + length), joint.shape[1] - 1)
    return joint[:, idx]


@torch.no_grad()
def video_frame_features(encoder, joint: np.ndarray, *, stride: int | None = None, batch_size: int = 64,
                         device: torch.device = torch.device("cpu")) -> tuple[np.ndarray, np.ndarray]:
    """Dense features of every window: returns (features (n, D), frame index (n,)).

    With ``stride=None`` the windows do not overlap and every frame appears exactly once
    (test); with a stride, frames covered by several windows appear several times (train).
    """
    length = encoder.frames
    num_frames = joint.shape[1]
    starts = _windows(num_frames, length, stride or length) if stride else list(range(0, num_frames, length))
    feats, frames = [], []
    for lo in range(0, len(starts), batch_size):
        batch = starts[lo: lo + batch_size]
        x = torch.from_numpy(np.stack([_clip(joint, s, length) for s in batch])).float().to(device)
        dense = encoder.dense_features(x).float().cpu().numpy()  # (B, length, D)
        for s, f in zip(batch, dense, strict=True):
            keep = min(length, num_frames - s)  # drop padded frames
            feats.append(f[:keep])
            frames.append(np.arange(s, s + keep))
    return np.concatenate(feats), np.concatenate(frames)


def timeline_classes(frame_label: np.ndarray, predicted: np.ndarray,
                     names: list[str] | None = None) -> list[tuple[int, str]]:
    """The legend of a timeline: ``(frame class, text)`` of every class in the ground truth or
    the prediction (0, background, left out), in class order. Frame class ``k`` is the dataset's
    label ``k - 1`` (its name ``names[k - 1]``)."""
    present = sorted(int(k) for k in np.union1d(np.unique(frame_label), np.unique(predicted)) if k > 0)
    return [(k, f"{k}: {names[k - 1]}" if names is not None and k <= len(names) else str(k)) for k in present]


def draw_timeline(frame_label: np.ndarray, predicted: np.ndarray, title: str, names: list[str] | None = None):
    """Ground truth against predicted per-frame classes of one video, with a legend naming every
    class that occurs (:func:`timeline_classes`; background is blank). Colours are given in
    class order among the classes of this video (tab20: distinct up to 20 classes)."""
    from matplotlib import colormaps, style
    from matplotlib.colors import ListedColormap
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    legend = timeline_classes(frame_label, predicted, names)
    slot = {k: i for i, (k, _) in enumerate(legend)}
    tab = colormaps["tab20"]
    colours = [tab(i % 20) for i in range(max(len(legend), 1))]
    cmap = ListedColormap(colours)
    rows = -(-len(legend) // 4)  # legend rows, four entries each
    height = 1.9 + 0.16 * rows
    with style.context("default"):
        # margins fixed in inches (the row labels and the title are known strings): matplotlib's
        # constrained layout drew the same picture at twice the cost, ~10 s of a detect stage
        fig = Figure(figsize=(10, height), dpi=100)
        axes = fig.subplots(2, 1, sharex=True, gridspec_kw=dict(
            left=1.1 / 10, right=1 - 0.2 / 10, top=1 - 0.35 / height, bottom=(0.55 + 0.16 * rows) / height,
            hspace=0.2))
        for ax, row, name in zip(axes, (frame_label, predicted), ("ground truth", "predicted"), strict=True):
            index = np.array([slot.get(int(k), -1) for k in row])[None, :]
            ax.imshow(np.ma.masked_less(index, 0), aspect="auto", cmap=cmap, vmin=-0.5,
                      vmax=len(colours) - 0.5, interpolation="nearest")
            ax.set_yticks([0], [name])
        axes[-1].set_xlabel("frame (blank: background)")
        axes[0].set_title(title)
        if legend:
            fig.legend([Patch(color=colours[i]) for i in range(len(legend))], [text for _, text in legend],
                       loc="lower center", ncol=4, fontsize=6, frameon=False)
    return fig


def plot_timeline(path, frame_label: np.ndarray, predicted: np.ndarray, title: str,
                  names: list[str] | None = None) -> None:
    """:func:`draw_timeline` as a byte-deterministic PNG (:mod:`skelrep.png`)."""
    from matplotlib import style

    from ...png import save_png

    with style.context("default"):
        save_png(draw_timeline(frame_label, predicted, title, names), path)
