"""A small Kinect-v1-sized generic dataset from the synthetic suite's motions, for calibration.

The built-in suite is NTU-sized; a user's own data is often a few hundred short sequences of a
20-joint Kinect v1 skeleton (MSR Action3D: 20 actions x 10 subjects x 2-3 repetitions, 567
sequences of 13-76 frames at 15 fps). ``write_small_kinect_set`` writes such a set in the generic
format (``docs/custom_data.md``: ``sequences/<id>.npy`` (T, 20, 3), ``labels.csv``, ``split.csv``)
from the same performances as the synthetic NTU stand-in (``ntu_writer.render_sample``: body
proportions and style per performer, camera yaw and tilt, tempo, idle lead/tail, sensor noise,
occlusions, distractor movements), so it is as hard per sample as the suite, not a toy:

- single-person classes only, ``classes`` of them spread over the NTU-60 vocabulary, so the
  seq/rev/rep variants of a motion family (same mean pose, different time course) are kept
  together wherever the spread lands on a family;
- the 25 Kinect v2 joints mapped to Kinect v1's 20 (SpineShoulder -> shoulder_center; hand tips
  and thumbs dropped), in the SDK order of layout ``kinect_v1_20``;
- every ``frame_step``-th frame (30 fps -> 15 fps at 2), the longest body track of the file
  (a spurious short body the sensor invents is not the performer);
- subjects 1..``subjects``; ``split.csv`` puts odd subjects in train (MSR Action3D's usual
  cross-subject protocol); each subject performs every class once per camera in ``cameras``.

Deterministic: the same arguments give the same bytes on any CPU (the generator's arithmetic is
portable; the npy files are float32 of those values).
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from skelrep.data.generic import LABELS_FILE, SEQUENCES_DIR
from skelrep.data.synthetic import actions as act
from skelrep.data.synthetic.ntu_writer import SyntheticNTUConfig, render_sample

# Kinect v1 SDK order (layout kinect_v1_20) as indices of the 25 NTU / Kinect v2 joints
# (0-based): hip_center=SpineBase, spine=SpineMid, shoulder_center=SpineShoulder, head, then the
# arms (shoulder, elbow, wrist, hand) and legs (hip, knee, ankle, foot), left before right.
KINECT_V1_FROM_NTU = (0, 1, 20, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19)


def small_set_classes(classes: int) -> list[int]:
    """``classes`` NTU-60 single-person action ids, evenly spread over the vocabulary."""
    single = [a for a in range(1, 61) if not act.is_mutual(a)]
    if not 2 <= classes <= len(single):
        raise ValueError(f"classes={classes}; 2..{len(single)} single-person classes exist")
    picks = np.linspace(0, len(single) - 1, classes).round().astype(int)
    return [single[i] for i in picks]


def _csv_bytes(header: tuple[str, ...], rows: list[tuple]) -> bytes:
    lines = [",".join(header)] + [",".join(str(v) for v in row) for row in rows]
    return ("\n".join(lines) + "\n").encode()


def write_small_kinect_set(root: str | Path, classes: int = 20, subjects: int = 10,
                           cameras: tuple[int, ...] = (1, 2, 3), frame_step: int = 2,
                           seed: int = 0, overwrite: bool = False) -> Path:
    """Write the set under ``root`` (a folder); returns ``root``. See the module docstring."""
    root = Path(root)
    if root.exists() and any(root.iterdir()) and not overwrite:
        raise FileExistsError(f"{root} exists; pass overwrite=True to replace it")
    if subjects < 2 or frame_step < 1 or not cameras:
        raise ValueError("need at least 2 subjects, frame_step >= 1 and one camera")
    config = SyntheticNTUConfig(noise_body_fraction=0.06, empty_frame_fraction=0.0)
    actions = small_set_classes(classes)
    (root / SEQUENCES_DIR).mkdir(parents=True, exist_ok=True)
    if overwrite:
        for old in (root / SEQUENCES_DIR).glob("*.npy"):
            old.unlink()
    labels, split = [], []
    for subject in range(1, subjects + 1):
        setup = 1 + (subject - 1) % 4  # performers spread over the suite's four setups
        for action in actions:
            for camera in cameras:
                sample = render_sample(seed, setup, camera, subject, 1, action, config)
                body = max(sample.bodies, key=lambda b: len(b.joints))
                xyz = body.joints[::frame_step, KINECT_V1_FROM_NTU, :3].astype(np.float32)
                sid = f"a{action:02d}_s{subject:02d}_c{camera}"
                buffer = io.BytesIO()
                np.save(buffer, xyz)
                (root / SEQUENCES_DIR / f"{sid}.npy").write_bytes(buffer.getvalue())
                labels.append((sid, act.CLASSES[action].name.replace(",", ";"), subject, camera))
                split.append((sid, "train" if subject % 2 else "test"))
    (root / LABELS_FILE).write_bytes(_csv_bytes(("sample_id", "label", "subject", "camera"), labels))
    (root / "split.csv").write_bytes(_csv_bytes(("sample_id", "split"), split))
    return root
