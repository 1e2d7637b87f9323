"""The settings of the synthetic suite (``data.<dataset>.synthetic`` in params.yaml).

Plain dataclasses, apart from the writers: validating params.yaml (every stage's first step)
needs only these, not numpy and the motion tables the writers load.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SyntheticNTUConfig:
    """Size and nuisance settings of a synthetic NTU archive.

    ``performers``/``setups`` default to a per-dataset choice (8 performers, 4 setups; 1,440
    samples per archive with 60 classes x 3 cameras x 1 replication). ``classes`` keeps the
    first ``classes`` action ids of the archive (all when None).
    """

    performers: tuple[int, ...] | None = None
    setups: tuple[int, ...] | None = None
    cameras: tuple[int, ...] = (1, 2, 3)
    replications: tuple[int, ...] = (1,)
    classes: int | None = None
    min_frames: int = 32
    max_frames: int = 300
    noise_m: float = 0.008             # per-joint sensor noise (std, metres)
    inferred_noise_m: float = 0.03     # extra noise of inferred joints
    inferred_rate: float = 1.5         # inferred-joint episodes per second
    distractor_prob: float = 0.4       # chance of an unrelated small movement in a sample
    noise_body_fraction: float = 0.06  # files with a spurious short body
    empty_frame_fraction: float = 0.05  # files starting with frames of bodyCount 0
    crlf_fraction: float = 0.1         # files written with CRLF line endings
    # per-sample nuisances (all off: scale (1, 1), shear 0, tilt 0, occluded 0, idle (0, 0),
    # tempo (1, 1)); they survive SpineMid centring and shoulder x-alignment
    distortion_scale: tuple[float, float] = (0.7, 1.4)  # per-axis camera-space scale (log-uniform)
    distortion_shear: float = 0.4      # off-diagonal shear terms ~ U(-s, s)
    tilt_deg: float = 25.0             # camera pitch and roll ~ U(-t, t) degrees
    occluded_joints: int = 6           # 0..n limb joints lost per sample
    occlusion_span: tuple[float, float] = (0.3, 1.0)  # contiguous fraction of frames lost
    idle_fraction: tuple[float, float] = (0.0, 0.6)   # idle before / after, x action length
    tempo_range: tuple[float, float] = (0.6, 1.6)     # per-sample duration factor (log-uniform)


@dataclass(frozen=True)
class SyntheticPKUConfig:
    """Size and nuisance settings of a synthetic PKU-MMD phase.

    Each recording gives three videos (L, M, R). Every class appears in both splits, which
    needs ``test_recordings * actions_per_video`` >= the number of classes (51 / 41).
    """

    train_recordings: int = 12
    test_recordings: int = 4
    actions_per_video: int = 13
    gap_frames: tuple[int, int] = (20, 70)   # idle frames between actions
    background_prob: float = 0.35            # chance that a gap holds an unlabelled movement
    noise_m: float = 0.008
    inferred_noise_m: float = 0.03
    inferred_rate: float = 1.5
    reversed_label_fraction: float = 0.02    # label lines written with start > end
    low_confidence_fraction: float = 0.3     # label lines with confidence 1
    # per-video / per-action nuisances, as in SyntheticNTUConfig (all off: scale (1, 1),
    # shear 0, tilt 0, occluded 0, tempo (1, 1))
    distortion_scale: tuple[float, float] = (0.7, 1.4)  # per-axis camera-space scale, per view
    distortion_shear: float = 0.4
    tilt_deg: float = 25.0
    occluded_joints: int = 6                 # 0..n limb joints lost per window of each video
    occlusion_span: tuple[float, float] = (0.3, 1.0)  # fraction of a window a joint is lost
    occlusion_window: int = 120              # frames per occlusion window
    tempo_range: tuple[float, float] = (0.6, 1.6)     # per-action duration factor (log-uniform)
