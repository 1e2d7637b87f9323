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


def plot_timeline(path, frame_label: np.ndarray, predicted: np.ndarray, title: str) -> None:
    """Ground truth against predicted per-frame classes of one video, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ...io import atomic_path

    fig, axes = plt.subplots(2, 1, figsize=(10, 2.2), sharex=True, dpi=100)
    cmap = plt.get_cmap("tab20", 52)
    for ax, row, name in zip(axes, (frame_label, predicted), ("ground truth", "predicted"), strict=True):
        masked = np.ma.masked_where(row[None, :] == 0, row[None, :])
        ax.imshow(masked, aspect="auto", cmap=cmap, vmin=0, vmax=51, interpolation="nearest")
        ax.set_yticks([0], [name])
    axes[-1].set_xlabel("frame")
    axes[0].set_title(title)
    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", metadata={"Software": None})
    plt.close(fig)
