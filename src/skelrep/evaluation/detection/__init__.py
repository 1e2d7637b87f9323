"""PKU-MMD I action detection (cross-subject): frame-wise head, proposals, proposal files and metrics."""

from skelrep.evaluation.detection.framewise import predict_frame_probs, train_frame_classifier
from skelrep.evaluation.detection.pku_official import (
    ap_2d,
    evaluate_detection,
    map_action,
    map_video,
    official_ap,
    official_overlap,
    pooled_ap,
)
from skelrep.evaluation.detection.proposal_io import read_proposals, to_file_rows, write_proposals
from skelrep.evaluation.detection.proposals import Proposal, proposals_ssd, proposals_thr
from skelrep.evaluation.detection.voc import voc_average_precision, voc_map

__all__ = [
    "Proposal",
    "ap_2d",
    "evaluate_detection",
    "map_action",
    "map_video",
    "official_ap",
    "official_overlap",
    "pooled_ap",
    "predict_frame_probs",
    "proposals_ssd",
    "proposals_thr",
    "read_proposals",
    "to_file_rows",
    "train_frame_classifier",
    "voc_average_precision",
    "voc_map",
    "write_proposals",
]
