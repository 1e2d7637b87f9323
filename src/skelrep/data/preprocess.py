"""Raw archives -> one HDF5 file per dataset (built-in benchmark or the user's own), holding
every sample once and one index set per named split (:mod:`skelrep.data.hdf5`).

Archive members are read in place (the ~114k NTU files are never extracted), parsed in
parallel across cores, and appended sample by sample to the HDF5 file, so memory stays flat
whatever the dataset size: at most ``_BLOCK`` tasks per worker are in flight.

A user dataset (:func:`preprocess_generic`) is read from its raw folder (the copied dataset
and its ``layout.yaml``); untracked frames and short sequences are handled per
``data.<dataset>.generic``, samples are normalised with the layout's joints, each protocol on
the dataset becomes a named split, and the layout goes into the file's ``layout`` attribute,
from which every later stage takes V, M, C and the bone tree.
"""

from __future__ import annotations

import collections
import functools
import itertools
import json
import logging
import multiprocessing as mp
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np
from tqdm import tqdm

from .. import __version__
from ..catalog import DATASETS
from ..errors import DataError, ParamsError, SkelrepError
from ..io import atomic_path, write_json_atomic
from ..memory import keep_freed_memory
from ..schema import validate
from ..workers import worker_pool
from . import ntu, pku
from .archive import open_archive
from .download import read_manifest
from .generic import (
    DATASET_DIR,
    LAYOUT_FILE,
    GenericConfig,
    assign_splits,
    load_sequence,
    read_generic_index,
    stored_frames,
)
from .hdf5 import (
    LAYOUT_ATTR,
    SUBSETS,
    SampleWriter,
    encode_sample,
    encoded_samples_match,
    write_detection_split,
    write_detection_video,
    write_split,
)
from .layout import SkeletonLayout, load_layout, pre_normalize_layout
from .normalize import NORMALISATIONS, denoise_bodies_sgn, pre_normalize, select_bodies_by_energy
from .plausibility import LayoutCheck
from .preprocess_schema import PKU_SCHEMA, PREPROCESS_SCHEMA
from .skeleton_figure import skeleton_figure

log = logging.getLogger(__name__)

NTU_META = ("setup", "camera", "performer", "replication", "action")
PKU_META = ("video", "view", "subject")
_VIEWS = {"L": 0, "M": 1, "R": 2}
_BLOCK = 64  # tasks in flight per worker: bounds memory
_CHUNK = 4  # tasks sent to a worker at a time (fewer, larger messages)

@dataclass(frozen=True)
class PreprocessConfig:
    normalisation: str = "umurl"
    denoise: bool = False
    max_frames: int = 300
    max_bodies_read: int = 4
    bodies_out: int = 2
    on_error: str = "fail"
    workers: int = 0
    pku: dict = field(default_factory=lambda: {"boundary_convention": "one_based_inclusive",
                                               "long_clip_policy": "head", "max_frames": 300})

    @classmethod
    def from_params(cls, preprocess: dict, pku_section: dict) -> PreprocessConfig:
        p = validate(preprocess, PREPROCESS_SCHEMA, "preprocess")
        return cls(**p, pku=validate(pku_section, PKU_SCHEMA, "pku"))


@dataclass
class PreprocessSummary:
    dataset: str
    num_samples: int = 0
    splits: dict = field(default_factory=dict)           # split -> {train: n, test: n}
    num_classes_seen: dict = field(default_factory=dict)  # split -> {train: n, test: n}
    skipped: list = field(default_factory=list)
    dropped_missing: int = 0
    detection_videos: dict = field(default_factory=dict)
    layout_check: dict = field(default_factory=dict)  # skelrep.data.plausibility.LayoutCheck.result

    def as_dict(self) -> dict:
        return {"dataset": self.dataset, "num_samples": self.num_samples, "splits": self.splits,
                "num_classes_seen": self.num_classes_seen, "skipped": self.skipped,
                "num_skipped": len(self.skipped), "dropped_missing_skeletons": self.dropped_missing,
                "detection_videos": self.detection_videos, "layout_check": self.layout_check}


class _Splits:
    """The named splits of a dataset file, filled sample by sample: split -> subset -> indices."""

    def __init__(self, names):
        self.indices = {name: {s: [] for s in SUBSETS} for name in names}
        self.labels = {name: {s: set() for s in SUBSETS} for name in names}

    def add(self, index: int, label: int, subset_of: dict[str, str | None]) -> None:
        for name, subset in subset_of.items():
            if subset is not None:
                self.indices[name][subset].append(index)
                self.labels[name][subset].add(label)

    def write(self, h5, summary: PreprocessSummary) -> None:
        for name, subsets in self.indices.items():
            write_split(h5, name, subsets)
        summary.splits = {n: {s: len(v) for s, v in subsets.items()} for n, subsets in self.indices.items()}
        summary.num_classes_seen = {n: {s: len(v) for s, v in ls.items()} for n, ls in self.labels.items()}


# --- worker side -----------------------------------------------------------------------------
# Each worker process opens its own archive handles (cached per process).

_ARCHIVES: dict[tuple[int, str], object] = {}


def _archive(path: str):
    # Keyed by pid: a forked worker must not reuse the parent's handle, whose file offset
    # is shared between processes (concurrent reads would corrupt each other).
    key = (os.getpid(), path)
    if key not in _ARCHIVES:
        _ARCHIVES[key] = open_archive(path)
    return _ARCHIVES[key]


def _source(archive_path: str, member: str) -> str:
    # Relative, host-independent file naming in error messages and reports.
    return f"{Path(archive_path).name}:{member}"


@functools.cache
def _ntu_check() -> LayoutCheck:
    """The layout check's per-sample part for NTU samples, in a worker (one per process)."""
    return LayoutCheck("ntu", load_layout("ntu25"))


def _ntu_task(task: tuple[str, str, PreprocessConfig, bool]):
    """One NTU file -> (member, sample, num_frame, error, layout-check part).

    With ``encode`` (:func:`skelrep.data.hdf5.encoded_samples_match`) the sample comes back as
    its compressed HDF5 chunk and the layout check's part is measured here: the writing process
    then only copies bytes into the file and adds up counts, and the pipe carries the compressed
    chunk instead of the 180 kB array. Without it, the array, and the check runs there.
    """
    archive_path, member, cfg, encode = task
    source = _source(archive_path, member)
    try:
        # x y z is all either path reads; every field is still validated
        skel = ntu.parse_skeleton(_archive(archive_path).read(member), source, xyz_only=True)
        if cfg.denoise:
            bodies = denoise_bodies_sgn(skel)  # (C, T', V, 2)
        else:
            # slots past the most bodies of any frame are all zero: they cannot change the choice
            used = max(int(skel.body_count.max()), cfg.bodies_out)
            slots = ntu.slot_xyz(skel, min(cfg.max_bodies_read, used))
            bodies = select_bodies_by_energy(slots, keep=cfg.bodies_out)
        num_frame = min(bodies.shape[1], cfg.max_frames)
        joint = pre_normalize(bodies, frames=cfg.max_frames, **NORMALISATIONS[cfg.normalisation])
        if encode:
            return member, encode_sample(joint), num_frame, None, _ntu_check().measure(joint, num_frame)
        return member, joint, num_frame, None, None
    except DataError as exc:
        if cfg.on_error == "fail":
            raise
        return member, None, 0, str(exc), None


def _pku_task(task: tuple[str, str, str, str, PreprocessConfig, bool]):
    """Parse one untrimmed PKU video; cut its trimmed clips (and keep the video for detection)."""
    skel_archive, skel_member, label_archive, label_member, cfg, keep_video = task
    vid = Path(skel_member).stem
    swapped: list[int] = []  # label lines with start > end (counted by the caller)
    try:
        video = pku.parse_pku_skeleton(_archive(skel_archive).read(skel_member), _source(skel_archive, skel_member))
        rows = pku.parse_pku_labels(_archive(label_archive).read(label_member), _source(label_archive, label_member),
                                    swapped=swapped)
        conv, policy, max_frames = (cfg.pku["boundary_convention"], cfg.pku["long_clip_policy"],
                                    cfg.pku["max_frames"])
        norm = NORMALISATIONS[cfg.normalisation]
        clips = []
        for i, (label, start, end, _conf) in enumerate(rows):
            u, v = pku.clip_range(int(start), int(end), conv)
            clip = pku.cut_clip(video, u, v, max_frames=max_frames, long_policy=policy)  # (L, M, V, C)
            if len(clip) == 0:
                raise DataError(_source(label_archive, label_member), f"segment {start},{end} is empty", line=i + 1)
            bodies = select_bodies_by_energy(clip.transpose(1, 0, 2, 3), keep=cfg.bodies_out)
            joint = pre_normalize(bodies, frames=max_frames, **norm)
            clips.append((f"{vid}_{i:03d}", joint, min(len(clip), max_frames), int(label) - 1))
        detection = None
        if keep_video:
            bodies = select_bodies_by_energy(video.transpose(1, 0, 2, 3), keep=cfg.bodies_out)
            # untrimmed video: no loop padding; rotation from the first non-empty frame
            joint = pre_normalize(bodies, **norm, pad_null=False)
            detection = (joint, pku.frame_labels(len(video), rows, conv), rows)
        return vid, clips, detection, None, [f"{_source(label_archive, label_member)}:{line}" for line in swapped]
    except DataError as exc:
        if cfg.on_error == "fail":
            raise
        return vid, [], None, str(exc), []


@dataclass(frozen=True)
class _GenericSample:
    """How a worker turns one generic array into a normalised sample."""

    layout: SkeletonLayout
    zero_frames: str
    min_frames: int
    max_frames: int  # T_max of the file: min(generic.max_frames, the longest sequence)
    extra_persons: str
    z_align: bool
    x_align: bool
    on_error: str


def _generic_task(task: tuple[str, str, _GenericSample]):
    data_dir, sample_id, how = task
    try:
        x = load_sequence(_archive(data_dir), sample_id, how.layout, prefix="", zero_frames=how.zero_frames,
                          min_frames=how.min_frames, extra_persons=how.extra_persons)  # (C, T, V, M)
        joint = pre_normalize_layout(x, how.layout, frames=how.max_frames, z_align=how.z_align,
                                     x_align=how.x_align)
        return sample_id, joint, min(x.shape[1], how.max_frames), None
    except DataError as exc:
        if how.on_error == "fail":
            raise
        return sample_id, None, 0, str(exc)


def _call_each(fn: Callable, chunk: list) -> list:
    return [fn(task) for task in chunk]


def _parallel(fn: Callable, tasks: list, workers: int, desc: str) -> Iterator:
    """Ordered parallel map (results stream back in task order) with at most ``_BLOCK`` tasks per
    worker in flight, which bounds memory.

    The window slides: each chunk of ``_CHUNK`` tasks taken back is replaced by the next one, so
    the workers never wait for the slowest chunk of a block (as they did with one ``imap`` per
    block) nor for the writer to drain it.
    """
    if workers <= 1:
        for t in tqdm(tasks, desc=desc, unit="file", mininterval=1.0):
            yield fn(t)
        return
    ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
    chunks = (tasks[lo: lo + _CHUNK] for lo in range(0, len(tasks), _CHUNK))
    # quiet workers that die with this process (a killed stage leaves no orphans or tracebacks)
    with worker_pool(workers, ctx) as pool, tqdm(total=len(tasks), desc=desc, unit="file", mininterval=1.0) as bar:
        in_flight = collections.deque(pool.apply_async(_call_each, (fn, chunk))
                                      for chunk in itertools.islice(chunks, _BLOCK * workers // _CHUNK))
        while in_flight:
            results = in_flight.popleft().get()
            for chunk in itertools.islice(chunks, 1):
                in_flight.append(pool.apply_async(_call_each, (fn, chunk)))
            for result in results:
                bar.update(1)
                yield result


def resolve_workers(workers: int) -> int:
    return workers if workers > 0 else (os.cpu_count() or 1)


# --- orchestration ---------------------------------------------------------------------------


def _archives_by_role(raw_dir: Path) -> dict[str, list[Path]]:
    manifest = read_manifest(raw_dir)
    roles: dict[str, list[Path]] = {}
    for entry in manifest["archives"]:
        roles.setdefault(entry["role"], []).append(raw_dir / entry["name"])
    return roles


def _finish_check(check: LayoutCheck, summary: PreprocessSummary, figure: Path | None) -> None:
    """Record (and warn about) the layout check; draw the example frame. Reads the samples only."""
    summary.layout_check = check.warn()
    if figure is not None:
        name, frame = check.example if check.example is not None else (None, None)
        skeleton_figure(frame, check.layout, Path(figure),
                        title=f"{check.dataset}: layout {check.layout.name}, sample {name}, "
                              "first frame (normalised)")


def preprocess_dataset(dataset: str, raw_dirs: dict[str, Path], out_path: Path, cfg: PreprocessConfig,
                       *, expect_published_sizes: bool = False, figure: Path | None = None,
                       synthetic: bool = False) -> PreprocessSummary:
    """Build ``out_path`` for the built-in ``dataset`` from the raw folders it reads: every sample
    once, and the index sets of each of its benchmark splits. The layout check
    (:mod:`skelrep.data.plausibility`) goes into the summary; ``figure`` is the PNG of one
    skeleton frame (:mod:`skelrep.data.skeleton_figure`). ``synthetic``: the raw data is the
    built-in synthetic suite, whose deliberate label quirks are reported at INFO."""
    info = DATASETS[dataset]
    keep_freed_memory()
    attrs = {"dataset": dataset, "splits": _json_list(info.splits), "num_classes": info.num_classes,
             "normalisation": cfg.normalisation, "z_align": NORMALISATIONS[cfg.normalisation]["z_align"],
             "denoise": cfg.denoise, "max_frames": cfg.max_frames, "bodies_out": cfg.bodies_out,
             "body_selection": "sgn_denoise" if cfg.denoise else "energy_top2",
             "source_sha256": _manifest_digest(*(raw_dirs[d] for d in info.raw_datasets)),
             "skelrep_version": __version__}
    summary = PreprocessSummary(dataset)
    check = LayoutCheck(dataset, load_layout("ntu25"))
    with atomic_path(out_path, suffix=".h5") as tmp:
        with h5py.File(tmp, "w", track_order=True) as h5:
            if info.format == "ntu":
                _ntu_dataset(h5, info, raw_dirs, cfg, summary, check)
            else:
                _pku_dataset(h5, dataset, raw_dirs[dataset], cfg, summary, check, synthetic)
            for key, value in sorted(attrs.items()):
                h5.attrs[key] = value
        if expect_published_sizes and info.format == "ntu":
            _assert_published_sizes(dataset, summary)
    _finish_check(check, summary, figure)
    log.info("%s: %d samples (%s), skipped %d", dataset, summary.num_samples, _describe(summary.splits),
             len(summary.skipped))
    return summary


def _json_list(values) -> str:
    return json.dumps(list(values))


def _describe(splits: dict) -> str:
    return "; ".join(f"{name}: train {c['train']}, test {c['test']}" for name, c in splits.items())


def _ntu_dataset(h5, info, raw_dirs, cfg, summary, check: LayoutCheck) -> None:
    # NTU-120 = the NTU-60 archive plus the extension archive; merge members by file name.
    dataset = info.name
    archives = [p for ds in info.raw_datasets for p in _archives_by_role(raw_dirs[ds]).get("skeleton", [])]
    members = {Path(stem).name + ".skeleton": loc for stem, loc in _members_by_stem(archives, ".skeleton").items()}
    if not members:
        raise DataError(str(raw_dirs[dataset]), "no .skeleton members found in the archives")
    missing = ntu.load_missing(dataset)
    max_setup, max_action = (17, 60) if dataset == "ntu60" else (32, 120)
    encode = encoded_samples_match()  # compress in the workers (same bytes as h5py's)
    tasks, names = [], []
    for fname in sorted(members):
        stem = fname[: -len(".skeleton")]
        if stem in missing:
            summary.dropped_missing += 1
            continue
        name = ntu.parse_ntu_name(stem)
        if name.setup > max_setup or name.action > max_action:
            continue
        names.append(name)
        tasks.append((*members[fname], cfg, encode))
    writer = SampleWriter(h5, (3, cfg.max_frames, 25, cfg.bodies_out), NTU_META)
    splits = _Splits(info.splits)
    results = _parallel(_ntu_task, tasks, resolve_workers(cfg.workers), f"preprocess {dataset}")
    for (member, joint, num_frame, error, measured), name in zip(results, names, strict=True):
        stem = Path(member).stem
        if error is not None:
            summary.skipped.append({"sample": stem, "error": error})
            log.warning("skipped %s", error)
            continue
        index = writer.append(stem, joint, num_frame, name.label, {k: getattr(name, k) for k in NTU_META})
        if measured is not None:
            check.merge(stem, measured)
        else:
            check.add(stem, joint, num_frame)
        splits.add(index, name.label, {b: ntu.ntu_split(name, dataset, b) for b in info.splits})
    writer.close()
    splits.write(h5, summary)
    summary.num_samples = writer.count


def _pku_dataset(h5, dataset, raw_dir, cfg, summary, check: LayoutCheck, synthetic: bool = False) -> None:
    roles = _archives_by_role(raw_dir)
    for role in ("skeleton", "label", "split"):
        if not roles.get(role):
            raise DataError(str(raw_dir / "manifest.json"), f"no archive with role {role!r}")
    split_path = roles["split"][0]  # a loose text file, as distributed
    train_ids, test_ids = pku.parse_pku_split(split_path.read_bytes(), split_path.name)
    skel_members = _members_by_stem(roles["skeleton"], ".txt")
    label_members = _members_by_stem(roles["label"], ".txt")
    split_of = {**dict.fromkeys(train_ids, "train"), **dict.fromkeys(test_ids, "test")}
    keep_video = dataset == "pku1"
    tasks, video_splits = [], []
    for vid in sorted(skel_members):
        if vid not in split_of:
            log.info("%s is in neither split list; ignored", vid)
            continue
        if vid not in label_members:
            raise DataError(_source(*skel_members[vid]), "no label file with the same name")
        tasks.append((*skel_members[vid], *label_members[vid], cfg, keep_video))
        video_splits.append(split_of[vid])
    if not tasks:
        raise DataError(str(raw_dir), "no PKU-MMD video is listed in the split file")
    (split_name,) = DATASETS[dataset].splits  # cross-subject, from the distributed split file
    writer = SampleWriter(h5, (3, cfg.pku["max_frames"], 25, cfg.bodies_out), PKU_META)
    splits = _Splits((split_name,))
    det_ids = {"train": [], "test": []}
    results = _parallel(_pku_task, tasks, resolve_workers(cfg.workers), f"preprocess {dataset}")
    swapped: list[str] = []
    for (vid, clips, detection, error, swapped_lines), subset in zip(results, video_splits, strict=True):
        swapped += swapped_lines
        if error is not None:
            summary.skipped.append({"sample": vid, "error": error})
            log.warning("skipped %s", error)
            continue
        meta = _pku_meta(vid)
        for clip_name, joint, num_frame, label in clips:
            splits.add(writer.append(clip_name, joint, num_frame, label, meta), label, {split_name: subset})
            check.add(clip_name, joint, num_frame)
        if detection is not None:
            write_detection_video(h5, vid, *detection)
            det_ids[subset].append(vid)
    writer.close()
    splits.write(h5, summary)
    if keep_video:
        write_detection_split(h5, det_ids["train"], det_ids["test"])
        summary.detection_videos = {s: len(v) for s, v in det_ids.items()}
    summary.num_samples = writer.count
    seen = set().union(*splits.labels[split_name].values())
    log.info("%s: %d distinct labels observed (51-way head)", dataset, len(seen))
    report_swapped_labels(dataset, swapped, synthetic)


def report_swapped_labels(dataset: str, lines: list[str], synthetic: bool) -> None:
    """One message for every label row read with start > end (and swapped): INFO for the
    synthetic suite, which writes a fraction of them on purpose (``reversed_label_fraction``),
    a WARNING for real data, whose label files deserve a look."""
    if not lines:
        return
    message = "%s: %d label rows had start > end and were swapped (e.g. %s)"
    if synthetic:
        log.info(message + "; the synthetic suite writes them on purpose", dataset, len(lines), lines[0])
    else:
        log.warning(message, dataset, len(lines), ", ".join(lines[:3]))


def preprocess_generic(dataset: str, raw_dir: Path, out_path: Path, cfg: PreprocessConfig,
                       generic: GenericConfig, *, figure: Path | None = None) -> PreprocessSummary:
    """Build ``out_path`` for a user dataset from its raw folder: one named split per rule of
    ``data.<dataset>.generic.splits``.

    The samples of any split are written once, in sample_id order; the layout, class names and
    column codes go into attributes. The layout check (:mod:`skelrep.data.plausibility`: is the
    data in the layout's joint order?) goes into the summary, and ``figure`` is the PNG of one
    skeleton frame with its joint names.
    """
    raw_dir = Path(raw_dir)
    keep_freed_memory()
    layout = load_layout(raw_dir / LAYOUT_FILE)
    norm = NORMALISATIONS[cfg.normalisation]
    if norm["z_align"] and layout.align_z_pair is None:
        raise ParamsError("preprocess.normalisation", f"{cfg.normalisation!r} z-aligns, but layout "
                          f"{layout.name!r} has no align_z joints (2-D or unaligned); use umurl")
    data_dir = raw_dir / DATASET_DIR
    index = read_generic_index(data_dir)
    subset_of: dict[str, dict[str, str]] = {}  # split -> sample id -> train | test
    for name, rule in generic.splits.items():
        assigned = assign_splits(index, rule, key=f"data.{dataset}.generic.splits.{name}")
        subset_of[name] = {sid: subset for subset in SUBSETS for sid in assigned[subset]}
    if index.num_classes > np.iinfo(np.int16).max:
        raise DataError(index.labels_source, f"{index.num_classes} classes; at most {np.iinfo(np.int16).max}")
    codes, code_names = index.meta_codes()
    order = [sid for sid in index.sample_ids if any(sid in split for split in subset_of.values())]
    # T_max: the longest sequence, at most max_frames (short sequences are not padded to 300)
    t_max = stored_frames(_archive(str(data_dir)), order, min_frames=generic.min_frames,
                          max_frames=generic.max_frames)
    how = _GenericSample(layout, generic.zero_frames, generic.min_frames, t_max,
                         generic.extra_persons, norm["z_align"],
                         # a layout without align_x joints is not x-aligned (docs/custom_data.md)
                         norm["x_align"] and layout.align_x_pair is not None, cfg.on_error)
    attrs = {"dataset": dataset, "splits": _json_list(subset_of),
             "split_rules": json.dumps(generic.splits, sort_keys=True),
             "normalisation": cfg.normalisation, "z_align": how.z_align, "x_align": how.x_align,
             "max_frames": generic.max_frames, "t_max": t_max, "min_frames": how.min_frames,
             "zero_frames": how.zero_frames,
             "extra_persons": how.extra_persons, "bodies_out": layout.persons,
             "num_classes": index.num_classes, "class_names": json.dumps(index.class_names),
             "meta_codes": json.dumps(code_names, sort_keys=True),
             LAYOUT_ATTR: json.dumps(layout.to_dict(), sort_keys=True),
             "source_sha256": _manifest_digest(raw_dir), "skelrep_version": __version__}
    summary = PreprocessSummary(dataset)
    check = LayoutCheck(dataset, layout)
    tasks = [(str(data_dir), sid, how) for sid in order]
    results = _parallel(_generic_task, tasks, resolve_workers(cfg.workers), f"preprocess {dataset}")
    with atomic_path(out_path, suffix=".h5") as tmp:
        with h5py.File(tmp, "w", track_order=True) as h5:
            writer = SampleWriter(h5, (layout.channels, how.max_frames, layout.num_joints, layout.persons),
                                  tuple(codes))
            splits = _Splits(subset_of)
            for sid, joint, num_frame, error in results:
                if error is not None:
                    summary.skipped.append({"sample": sid, "error": error})
                    log.warning("skipped %s", error)
                    continue
                i = index.position(sid)
                sample = writer.append(sid, joint, num_frame, index.labels[i],
                                       {name: int(column[i]) for name, column in codes.items()})
                splits.add(sample, index.labels[i], {name: split.get(sid) for name, split in subset_of.items()})
                check.add(sid, joint, num_frame)
            writer.close()
            splits.write(h5, summary)
            for key, value in sorted(attrs.items()):
                h5.attrs[key] = value
        for name, counts in summary.splits.items():  # inside atomic_path: no output file on this error
            for subset in SUBSETS:
                if not counts[subset]:
                    raise DataError(index.labels_source, f"split {name!r}: no {subset} sample left after "
                                    f"skipping {len(summary.skipped)} (see the warnings above)")
    summary.num_samples = writer.count
    _finish_check(check, summary, figure)
    log.info("%s: %d samples (%s), skipped %d, in no split %d", dataset, summary.num_samples,
             _describe(summary.splits), len(summary.skipped), len(index) - len(order))
    return summary


def _manifest_digest(*raw_dirs: Path) -> str:
    return ",".join(sorted(a["sha256"] for d in raw_dirs for a in read_manifest(d)["archives"]))


def _members_by_stem(archive_paths: Iterable[Path], suffix: str) -> dict[str, tuple[str, str]]:
    out: dict[str, tuple[str, str]] = {}
    for archive_path in archive_paths:
        with open_archive(archive_path) as archive:
            for m in archive.members(suffix=suffix):
                out.setdefault(Path(m).stem, (str(archive_path), m))
    return out


def _pku_meta(vid: str) -> dict[str, int]:
    info = pku.parse_pku_video_name(vid)
    return {"video": info.get("video", info.get("sequence", -1)), "view": _VIEWS[info["view"]],
            "subject": info.get("subject", -1)}


def _assert_published_sizes(dataset: str, summary: PreprocessSummary) -> None:
    for split, counts in summary.splits.items():
        expected = ntu.PUBLISHED_SPLIT_SIZES[(dataset, split)]
        got = (counts["train"], counts["test"])
        if got != expected:
            raise SkelrepError(
                f"{dataset} {split}: split sizes {got[0]:,}/{got[1]:,} differ from the published "
                f"{expected[0]:,}/{expected[1]:,} (train/test). Is an archive incomplete, or were samples "
                f"skipped ({len(summary.skipped)})?")


def write_summary(path: Path, summary: PreprocessSummary) -> None:
    write_json_atomic(path, summary.as_dict())
