"""Batched skeleton augmentations with the official per-sample semantics.

USDRL, UmURL and ISC share one ``feeder/augmentations.py``: a temporal crop-resize (scale
U(a, b) of the valid length, at least ``min_crop`` frames, resampled to the clip length by linear
interpolation), then one spatial augmentation (joint corruption or shear). The downstream
crops (whole sequence, centred window) are the evaluation inputs.

The reference feeders augment one sample at a time in numpy inside the data-loader workers.
Here every function takes a whole batch ``x`` of shape ``(N, C, T_max, V, M)`` (zero padded
after ``num_frames[n]`` valid frames) and does the same per-sample work with batched tensor
ops on the device that holds ``x``, so the loader only reads raw arrays.

Randomness. Every random draw goes through the explicit ``generator`` argument and is made on
*the generator's device* (CPU when ``generator`` is None, which then uses torch's global RNG),
then moved to ``x.device``. The draws are small (a few numbers per sample), so the copy is
cheap, and a CPU generator with a fixed seed gives the same augmentation stream whether ``x``
lives on CPU or CUDA. Each function consumes a fixed number of draws per call, independent of
the data values, so streams stay aligned across runs. A CUDA generator also works but its
stream differs from the CPU one. The exact numpy streams of the official code are not
reproduced (nor are they reproducible there: its DataLoader workers share one unseeded numpy
stream).

Conventions. Spatial matrices act on the channel axis: ``x'[:, t, v, m] = A @ x[:, t, v, m]``,
with ``C x C`` matrices, so 2D (C=2) and 3D (C=3) data both work. The official joint
corruption computes ``x' = A^T x`` (``np.dot`` on channel-last data); since the entries of
``A`` are i.i.d. U(-1, 1) the distribution is identical.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, Literal

import torch

from skelrep.data.augment_schema import AUG_SCHEMA, check_aug, scaled_joint_count
from skelrep.schema import validate

__all__ = [
    "AugmentConfig",
    "center_crop_window",
    "deterministic_crop_resize",
    "joint_corruption",
    "make_views",
    "random_crop_resize",
    "random_crop_windows",
    "random_spatial",
    "resample_time",
    "shear",
]


# ----------------------------------------------------------------------------------------
# random draws


def _rand(shape: tuple[int, ...], generator: torch.Generator | None, device: torch.device,
          dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """U[0, 1) draws made on the generator's device, returned on ``device``."""
    draw_device = generator.device if generator is not None else torch.device("cpu")
    return torch.rand(shape, generator=generator, device=draw_device, dtype=dtype).to(device)


def _uniform(shape: tuple[int, ...], low: float, high: float, generator: torch.Generator | None,
             device: torch.device) -> torch.Tensor:
    """U[low, high) float32 draws on ``device``."""
    return low + (high - low) * _rand(shape, generator, device)


def _random_joint_mask(n: int, num_joints: int, num_nodes: int,
                       generator: torch.Generator | None, device: torch.device) -> torch.Tensor:
    """(n, V) bool mask with exactly ``num_joints`` True per row, a uniform random subset."""
    keys = _rand((n, num_nodes), generator, device)
    # The k smallest of V i.i.d. uniforms form a uniform k-subset (sampling w/o replacement).
    chosen = keys.argsort(dim=1)[:, :num_joints]
    mask = torch.zeros(n, num_nodes, dtype=torch.bool, device=device)
    return mask.scatter_(1, chosen, True)


# ----------------------------------------------------------------------------------------
# checks


def _check_batch(x: torch.Tensor) -> None:
    if x.dim() != 5:
        raise ValueError(f"expected x of shape (N, C, T, V, M), got {tuple(x.shape)}")
    if not x.is_floating_point():
        raise ValueError(f"expected a floating point x, got {x.dtype}")


def _check_num_frames(x: torch.Tensor, num_frames: torch.Tensor) -> torch.Tensor:
    """Validate ``num_frames`` against x and return it as int64 on x's device.

    The range check reads the counts, so it is made where they are: counts on the host (what
    the training loop passes, pinned) are checked there before the copy, which then does not
    wait for the device; counts already on a GPU are read from it, a host sync.
    """
    _check_batch(x)
    if num_frames.shape != (x.shape[0],):
        raise ValueError(f"num_frames must have shape ({x.shape[0]},), got {tuple(num_frames.shape)}")
    t_max = x.shape[2]
    if bool(((num_frames < 1) | (num_frames > t_max)).any()):
        raise ValueError(f"num_frames must lie in [1, {t_max}] (T_max), got {num_frames.tolist()}")
    return num_frames.to(device=x.device, dtype=torch.int64, non_blocking=True)


def _check_num_joints(num_joints: int, num_nodes: int) -> None:
    if not 0 <= num_joints <= num_nodes:
        raise ValueError(
            f"num_joints={num_joints} must lie in [0, V={num_nodes}]: cannot corrupt more "
            "joints than the skeleton has"
        )


# ----------------------------------------------------------------------------------------
# temporal


def resample_time(x: torch.Tensor, starts: torch.Tensor, lengths: torch.Tensor,
                  out_frames: int) -> torch.Tensor:
    """Resample each sample's frames ``[start, start + length)`` to ``out_frames`` frames.

    Same arithmetic as the official per-sample
    ``F.interpolate(crop.view(1, C*V*M, L, 1), size=(out_frames, 1), mode='bilinear',
    align_corners=False)``: source coordinate ``(i + 0.5) * L / out - 0.5`` clamped at 0,
    linear between the two neighbouring frames, the right neighbour clamped at ``L - 1``.
    Indices and weights are computed in float32 exactly as torch's kernel does; the blended
    values agree to float32 rounding (torch's own last bit varies with SIMD width and fused
    multiply-add). Returns ``(N, C, out_frames, V, M)``.
    """
    _check_batch(x)
    n, _, t_max, _, _ = x.shape
    if out_frames < 1:
        raise ValueError(f"out_frames must be >= 1, got {out_frames}")
    if starts.shape != (n,) or lengths.shape != (n,):
        raise ValueError(f"starts and lengths must have shape ({n},), got "
                         f"{tuple(starts.shape)} and {tuple(lengths.shape)}")
    starts = starts.to(device=x.device, dtype=torch.int64)
    lengths = lengths.to(device=x.device, dtype=torch.int64)
    if bool(((starts < 0) | (lengths < 1) | (starts + lengths > t_max)).any()):
        raise ValueError(f"every window [start, start + length) must be non-empty and lie in "
                         f"[0, {t_max}); got starts={starts.tolist()}, lengths={lengths.tolist()}")

    i0, i1, w0, w1 = _resample_weights(lengths, out_frames)

    return _blend_frames(x, starts, i0, i1, w0, w1)


def _blend_frames(x: torch.Tensor, starts: torch.Tensor, i0: torch.Tensor, i1: torch.Tensor,
                  w0: torch.Tensor, w1: torch.Tensor) -> torch.Tensor:
    """``x[start + i0] * w0 + x[start + i1] * w1`` per sample along time; the window tensors are
    ``(N, out)``, or ``(K, N, out)`` for K windows of every sample (then ``(K*N, C, out, V, M)``
    is returned, window-major, without copying ``x`` K times)."""
    lead, out_frames = starts.shape, i0.shape[-1]
    src = x if len(lead) == 1 else x.unsqueeze(0)
    shape = (*lead, 1, out_frames, 1, 1)
    dim = len(lead) + 1

    def frames(index: torch.Tensor) -> torch.Tensor:
        return torch.take_along_dim(src, (starts[..., None] + index).view(shape), dim=dim)

    out = frames(i0) * w0.view(shape).to(x.dtype) + frames(i1) * w1.view(shape).to(x.dtype)
    return out.flatten(0, len(lead) - 1) if len(lead) > 1 else out


def _resample_weights(lengths: torch.Tensor, out_frames: int) -> tuple[torch.Tensor, ...]:
    """Frame indices and weights ``(i0, i1, w0, w1)``, each ``lengths.shape + (out,)``, of the
    official linear resampling of windows of ``lengths`` frames to ``out_frames``."""
    # torch computes scale = float(L) / out and the source index in float32 (opmath of float).
    scale = lengths.to(torch.float32)[..., None] / out_frames                     # (..., 1)
    dst = torch.arange(out_frames, device=lengths.device, dtype=torch.float32)   # (out,)
    src = (scale * (dst + 0.5) - 0.5).clamp_min(0.0)                             # (..., out)
    last = (lengths - 1)[..., None]
    i0 = src.floor().to(torch.int64).minimum(last)
    i1 = (i0 + 1).minimum(last)
    w1 = (src - i0.to(torch.float32)).clamp(0.0, 1.0)
    return i0, i1, 1.0 - w1, w1


def _random_windows(num_frames: torch.Tensor, draws: torch.Tensor, scale: tuple[float, float],
                    min_crop: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(starts, lengths) of the official random crop from two U[0, 1) float64 draws per window
    (``draws[0]`` the scale, ``draws[1]`` the start), broadcast against ``num_frames``."""
    low, high = scale
    if not 0.0 < low <= high:
        raise ValueError(f"scale must satisfy 0 < low <= high, got {scale}")
    if min_crop < 1:
        raise ValueError(f"min_crop must be >= 1, got {min_crop}")
    s = low + (high - low) * draws[0]
    lengths = torch.floor(num_frames * s).to(torch.int64).clamp_min(min_crop).minimum(num_frames)
    slack = num_frames - lengths
    # floor(u * (slack + 1)) is uniform on {0..slack}; the minimum guards float rounding.
    starts = torch.floor(draws[1] * (slack + 1)).to(torch.int64).minimum(slack)
    return starts, lengths


def random_crop_windows(num_frames: torch.Tensor, count: int, scale: tuple[float, float] = (0.5, 1.0),
                        min_crop: int = 64, generator: torch.Generator | None = None,
                        ) -> tuple[torch.Tensor, torch.Tensor]:
    """``count`` independent official random crops of each sequence: (starts, lengths), each
    ``(count, N)`` int64 on the CPU, the arithmetic of :func:`random_crop_resize`.

    All ``count * 2 * N`` float64 draws are made at once, in this order (crop, scale|start,
    sample), so the windows depend only on the generator's state and ``num_frames``, never on
    how the samples are later batched. The features stage caches the linear probe's random
    train crops with it.
    """
    num_frames = torch.as_tensor(num_frames, dtype=torch.int64).cpu()
    if num_frames.dim() != 1 or bool((num_frames < 1).any()):
        raise ValueError(f"num_frames must be a 1-D tensor of positive counts, got {num_frames.tolist()}")
    if count < 1:
        raise ValueError(f"count must be >= 1, got {count}")
    draws = _rand((count, 2, num_frames.shape[0]), generator, torch.device("cpu"), dtype=torch.float64)
    return _random_windows(num_frames, draws.transpose(0, 1), scale, min_crop)


def random_crop_resize(x: torch.Tensor, num_frames: torch.Tensor, out_frames: int,
                       scale: tuple[float, float] = (0.1, 1.0), min_crop: int = 64,
                       generator: torch.Generator | None = None) -> torch.Tensor:
    """Official ``temporal_cropresize`` per sample: random window, resampled to ``out_frames``.

    s ~ U(scale); L = clamp(floor(n * s), min_crop, n), so a sequence with n < min_crop is
    used whole; start uniform over the integers [0, n - L]. Draws: 2 per sample (float64,
    like numpy's scalar arithmetic in the official code).
    """
    num_frames = _check_num_frames(x, num_frames)
    draws = _rand((2, x.shape[0]), generator, x.device, dtype=torch.float64)
    starts, lengths = _random_windows(num_frames, draws, scale, min_crop)
    return resample_time(x, starts, lengths, out_frames)


def center_crop_window(num_frames: torch.Tensor, ratio: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(starts, lengths) of the official centre crop keeping the centre ``ratio`` of each sequence.

    The official feeders' arithmetic (``crop_subsequence``, test branch)::

        start = int((1 - ratio) * n / 2)      # truncation, float64 as Python/numpy scalars
        data = input[:, start:n - start]      # so length = n - 2 * start

    e.g. n = 300, ratio 0.95: start 7, length 286 (not floor(300 * 0.95) = 285). The window is
    symmetric and never empty (length >= ratio * n > 0); no 64-frame minimum applies in this
    deterministic branch.
    """
    if not 0.0 < ratio <= 1.0:
        raise ValueError(f"center ratio must lie in (0, 1], got {ratio}")
    num_frames = torch.as_tensor(num_frames, dtype=torch.int64)
    # float64, evaluated left to right as the official ``(1 - r) * n / 2``: the rounding of
    # 1 - r matters (e.g. (1 - 0.95) * 20 / 2 = 0.50000000000000044 -> start 0)
    starts = torch.floor((1.0 - ratio) * num_frames.to(torch.float64) / 2).to(torch.int64)
    return starts, num_frames - 2 * starts


def deterministic_crop_resize(x: torch.Tensor, num_frames: torch.Tensor, out_frames: int,
                              mode: Literal["whole", "center"] = "whole",
                              ratio: float = 1.0) -> torch.Tensor:
    """The deterministic evaluation crops, resampled to ``out_frames``.

    ``whole``: frames 0..n-1 (``ratio`` must stay 1.0). ``center``: the official centre crop
    of :func:`center_crop_window` (start int((1 - ratio) * n / 2), length n - 2 * start). No
    64-frame minimum applies in this deterministic branch (none in the official code).
    """
    num_frames = _check_num_frames(x, num_frames)
    if mode == "whole":
        if ratio != 1.0:
            raise ValueError(f"mode='whole' takes no ratio (got {ratio}); use mode='center'")
        return resample_time(x, torch.zeros_like(num_frames), num_frames, out_frames)
    if mode == "center":
        starts, lengths = center_crop_window(num_frames, ratio)
        return resample_time(x, starts, lengths, out_frames)
    raise ValueError(f"mode must be 'whole' or 'center', got {mode!r}")


# ----------------------------------------------------------------------------------------
# spatial


def _apply_joint_transform(x: torch.Tensor, matrices: torch.Tensor,
                           joint_mask: torch.Tensor) -> torch.Tensor:
    """x' = A_n x on the joints where ``joint_mask[n, v]``; other joints unchanged."""
    transformed = torch.einsum("ncd,ndtvm->nctvm", matrices.to(x.dtype), x)
    n, _, _, v, _ = x.shape
    return torch.where(joint_mask.view(n, 1, 1, v, 1), transformed, x)


def _corruption_draws(x: torch.Tensor, num_joints: int, p_zero: float,
                      generator: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample (C x C matrix, joint mask) of joint corruption; the zero branch is A = 0."""
    n, c, _, v, _ = x.shape
    _check_num_joints(num_joints, v)
    if not 0.0 <= p_zero <= 1.0:
        raise ValueError(f"p_zero must lie in [0, 1], got {p_zero}")
    mask = _random_joint_mask(n, num_joints, v, generator, x.device)
    zero = _rand((n,), generator, x.device) < p_zero
    matrices = _uniform((n, c, c), -1.0, 1.0, generator, x.device)
    return matrices.masked_fill(zero.view(n, 1, 1), 0.0), mask


def _shear_matrices(x: torch.Tensor, shear_range: float,
                    generator: torch.Generator | None) -> torch.Tensor:
    """Per-sample C x C shear matrices: diagonal exactly 1, off-diagonal U(-r, r)."""
    n, c = x.shape[:2]
    if shear_range < 0:
        raise ValueError(f"shear_range must be >= 0, got {shear_range}")
    matrices = _uniform((n, c, c), -shear_range, shear_range, generator, x.device)
    eye = torch.eye(c, dtype=torch.bool, device=x.device)
    return matrices.masked_fill(eye, 1.0)


def joint_corruption(x: torch.Tensor, num_joints: int = 15, p_zero: float = 0.5,
                     generator: torch.Generator | None = None) -> torch.Tensor:
    """Official ``joint_courruption`` per sample.

    Draw ``num_joints`` distinct joints (the same for all frames and persons); with
    probability ``p_zero`` set them to 0, otherwise multiply their coordinates by one random
    C x C matrix with entries U(-1, 1). Raises ValueError when ``num_joints > V``.
    """
    _check_batch(x)
    matrices, mask = _corruption_draws(x, num_joints, p_zero, generator)
    return _apply_joint_transform(x, matrices, mask)


def shear(x: torch.Tensor, shear_range: float = 1.0,
          generator: torch.Generator | None = None) -> torch.Tensor:
    """Official ``pose_augmentation`` per sample: x' = S x on every point, S with unit diagonal."""
    _check_batch(x)
    n, _, _, v, _ = x.shape
    every_joint = torch.ones(n, v, dtype=torch.bool, device=x.device)
    return _apply_joint_transform(x, _shear_matrices(x, shear_range, generator), every_joint)


def random_spatial(x: torch.Tensor, p_corrupt: float = 0.5, num_joints: int = 15,
                   p_zero: float = 0.5, shear_range: float = 1.0,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """Exactly one spatial augmentation per sample: joint corruption with probability
    ``p_corrupt``, shear otherwise.

    Both are "multiply some joints by a per-sample matrix", so the per-sample choice selects
    a matrix and a joint mask and the batch is transformed in one pass. Draws for both
    branches are always made, keeping the stream independent of the choices.
    """
    _check_batch(x)
    return _apply_joint_transform(x, *_spatial_draws(x, p_corrupt, num_joints, p_zero, shear_range, generator))


def _spatial_draws(x: torch.Tensor, p_corrupt: float, num_joints: int, p_zero: float, shear_range: float,
                   generator: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample (C x C matrix, joint mask) of :func:`random_spatial` (``x`` gives the shapes)."""
    if not 0.0 <= p_corrupt <= 1.0:
        raise ValueError(f"p_corrupt must lie in [0, 1], got {p_corrupt}")
    n, _, _, v, _ = x.shape
    corrupt = _rand((n,), generator, x.device) < p_corrupt
    corrupt_matrices, corrupt_mask = _corruption_draws(x, num_joints, p_zero, generator)
    shear_matrices = _shear_matrices(x, shear_range, generator)
    matrices = torch.where(corrupt.view(n, 1, 1), corrupt_matrices, shear_matrices)
    mask = torch.where(corrupt.view(n, 1), corrupt_mask, torch.ones_like(corrupt_mask))
    return matrices, mask


def make_views(x: torch.Tensor, num_frames: torch.Tensor, *, n_views: int, out_frames: int,
               crop_scale: tuple[float, float] = (0.1, 1.0), min_crop: int = 64,
               corrupt_joints: int = 15, p_zero: float = 0.5, shear_range: float = 1.0,
               p_corrupt: float = 0.5, generator: torch.Generator | None = None,
               stacked: bool = False) -> list[torch.Tensor] | torch.Tensor:
    """``n_views`` independently augmented views, each (N, C, out_frames, V, M).

    Per view: random crop-resize, then exactly one spatial augmentation (joint corruption or
    shear, each with probability ``p_corrupt`` / 1 - ``p_corrupt``). Modalities (bone, motion)
    are to be derived from the views afterwards.

    The draws are made view by view, in the order of :func:`random_crop_resize` then
    :func:`random_spatial` per view; the frames of all views are then gathered, blended and
    transformed at once (the same values as view by view). With ``stacked`` the views come as
    one ``(n_views * N, C, out_frames, V, M)`` tensor, view-major; else as a list of its chunks.
    """
    if n_views < 1:
        raise ValueError(f"n_views must be >= 1, got {n_views}")
    num_frames = _check_num_frames(x, num_frames)
    _check_num_joints(corrupt_joints, x.shape[3])
    if out_frames < 1:
        raise ValueError(f"out_frames must be >= 1, got {out_frames}")
    n, c, _, v, m = x.shape
    # the draws read only the shape and device of a view
    shape_of_view = SimpleNamespace(shape=torch.Size((n, c, out_frames, v, m)), device=x.device)
    windows, spatial = [], []
    for _ in range(n_views):
        draws = _rand((2, n), generator, x.device, dtype=torch.float64)
        windows.append(_random_windows(num_frames, draws, crop_scale, min_crop))
        spatial.append(_spatial_draws(shape_of_view, p_corrupt, corrupt_joints, p_zero, shear_range, generator))
    starts = torch.stack([w[0] for w in windows])   # (K, N)
    lengths = torch.stack([w[1] for w in windows])
    clips = _blend_frames(x, starts, *_resample_weights(lengths, out_frames))  # (K*N, C, out, V, M)
    out = _apply_joint_transform(clips, torch.cat([s[0] for s in spatial]), torch.cat([s[1] for s in spatial]))
    return out if stacked else list(out.chunk(n_views))


# ----------------------------------------------------------------------------------------
# params.yaml (the block's schema: skelrep.data.augment_schema)


@dataclass(frozen=True)
class AugmentConfig:
    """The ``<method>.aug`` block (:data:`AUG_SCHEMA`, every key required in params); the field
    defaults, for code and tests, are the settings of the official code bases.

    ``views`` defaults to 4 (USDRL, UmURL); ISC configs set 2. ``corrupt_joints`` is given on
    NTU's 25-joint scale and scaled to the data's joint count (:func:`scaled_joint_count`).
    """

    crop_scale: tuple[float, float] = (0.1, 1.0)
    min_crop: int = 64
    corrupt_joints: int = 15
    p_zero: float = 0.5
    shear_range: float = 1.0
    p_corrupt: float = 0.5
    views: int = 4

    @classmethod
    def from_values(cls, values: dict) -> AugmentConfig:
        """From a section validated with :data:`AUG_SCHEMA`."""
        return cls(**{**values, "crop_scale": tuple(values["crop_scale"])})

    @classmethod
    def from_params(cls, section: Any, prefix: str) -> AugmentConfig:
        """Validate a ``<method>.aug`` section (every key required); errors name ``f"{prefix}.{key}"``."""
        return cls.from_values(validate(section, AUG_SCHEMA, prefix, check_aug))

    def make_views(self, x: torch.Tensor, num_frames: torch.Tensor, out_frames: int,
                   generator: torch.Generator | None = None,
                   stacked: bool = False) -> list[torch.Tensor] | torch.Tensor:
        """``make_views`` with this configuration, for the joint count of ``x``."""
        _check_batch(x)
        corrupt = scaled_joint_count(self.corrupt_joints, x.shape[3])
        return make_views(x, num_frames, n_views=self.views, out_frames=out_frames,
                          crop_scale=self.crop_scale, min_crop=self.min_crop,
                          corrupt_joints=corrupt, p_zero=self.p_zero,
                          shear_range=self.shear_range, p_corrupt=self.p_corrupt,
                          generator=generator, stacked=stacked)
