"""ISC's paper recipe, kept once: the Skeleton-Contrast code (its encoders, ``script_pretrain.sh``,
``main_moco_inter_skeleton.py``, ``action_classification.py`` and its script).

``PAPER`` is the method section for a GPU, nested like the ``isc`` section of params.yaml
(also the paper size of ``benchmarks/train_step.py``; the config defaults of the same keys come
from here). ``PAPER_SECTIONS`` are the other sections the recipe sets, ``PAPER_PROTOCOLS`` its
per-benchmark values: together what ``skelrep profile paper`` sets (:mod:`skelrep.recipes`).
"""

PAPER_SOURCE = "Skeleton-Contrast (ACM MM 2021): script_pretrain.sh, main_moco_inter_skeleton.py"

PAPER = {
    "frames": 64,
    "gru": {"hidden": 1024, "layers": 3},
    "agcn": {"base_channels": 64},
    "hcn": {"width": 64},
    "moco": {"k": 16384, "m": 0.999},
    "aug": {"min_crop": 64},
    # the NTU-60 schedule (NTU-120: PAPER_PROTOCOLS); plain fp32, as the official loop
    "train": {"lr": 0.01, "batch_size": 64, "epochs": 451, "min_steps": 0, "milestones": [351], "ckpt_every": 10,
              "workers": 8, "precision": "fp32"},
}

# ISC normalises with 2s-AGCN's z-alignment too (its data variant). Linear evaluation
# (script_action_classification.sh): SGD lr 0.1 (the code's default 30 is not what ran), momentum
# 0.9, no weight decay, batch 64, 80 epochs, x0.1 at 50 and 70, test every epoch, raw features;
# inputs: the method's official crops (features.crop: auto). KNN: cosine 1-NN.
PAPER_SECTIONS = {
    "preprocess": {"normalisation": "isc"},
    "features": {"batch_size": 512},
    "linear": {"epochs": 80, "lr": 0.1, "milestones": [50, 70], "batch_size": 64, "momentum": 0.9,
               "weight_decay": 0.0, "eval_every": 1, "standardize": False},
    "knn": {"k": 1},
}

# NTU-120 runs 351 epochs (0..350) with the decay at 251 (the spec's I9)
PAPER_PROTOCOLS = {
    protocol: {"pretrain": {"train": {"epochs": 351, "milestones": [251]}}}
    for protocol in ("ntu120-xsub", "ntu120-xset")
}
