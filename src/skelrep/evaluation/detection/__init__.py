"""PKU-MMD I action detection (cross-subject): the frozen dense head, window classification (protocol
W), the dense fine-tune (protocol D), proposals, proposal files and metrics."""

from skelrep.evaluation.detection.dense_finetune import (
    DenseFinetuneSettings,
    TrainVideo,
    finetune_dense_detector,
    predict_dense_probs,
)
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
from skelrep.evaluation.detection.window import (
    WindowSettings,
    predict_window_probs,
    train_window_classifier,
)

__all__ = [
    "DenseFinetuneSettings",
    "Proposal",
    "TrainVideo",
    "WindowSettings",
    "ap_2d",
    "evaluate_detection",
    "finetune_dense_detector",
    "map_action",
    "map_video",
    "official_ap",
    "official_overlap",
    "pooled_ap",
    "predict_dense_probs",
    "predict_frame_probs",
    "predict_window_probs",
    "proposals_ssd",
    "proposals_thr",
    "read_proposals",
    "to_file_rows",
    "train_frame_classifier",
    "train_window_classifier",
    "voc_average_precision",
    "voc_map",
    "write_proposals",
]
