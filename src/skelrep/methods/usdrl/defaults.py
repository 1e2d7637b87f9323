"""USDRL's paper recipe, kept once: the AAAI code (its options files, ``pretrain.py``,
``scripts/pretrain.sh``, ``action_recognition.py`` and ``scripts/recog.sh``).

``PAPER`` is the method section for a GPU, nested like the ``usdrl`` section of params.yaml
(also the paper size of ``benchmarks/train_step.py``; the model config dataclasses take their
code defaults from here, while params.yaml must name every key). ``PAPER_SECTIONS`` are the
other sections the recipe sets, ``PAPER_PROTOCOLS`` its per-benchmark values: together what
``skelrep profile paper`` sets (:mod:`skelrep.recipes`).
"""

PAPER_SOURCE = "USDRL (AAAI 2025): the paper and the official pretraining scripts"

PAPER = {
    "encoder": {"hidden": 1024, "num_layers": 2, "frames": 64},
    "proj": {"cp": 2048},
    "aug": {"crop_scale": [0.1, 1.0], "min_crop": 64},
    # fp16 autocast + GradScaler, as the official training loop
    "train": {"lr": 0.0005, "batch_size": 356, "epochs": 451, "min_steps": 0, "milestones": [351], "ckpt_every": 50,
              "workers": 8, "precision": "fp16"},
}

# Linear evaluation (action_recognition.py, recog.sh): SGD momentum 0.9, no weight decay, batch
# 512, 10 + 150 = 160 epochs, x0.1 at 120 and 140, test every 5 epochs, raw features; the whole
# valid sequence resampled to the clip length (features.crop: auto). KNN: cosine 1-NN.
PAPER_SECTIONS = {
    "preprocess": {"normalisation": "umurl"},
    "features": {"batch_size": 512},
    "linear": {"epochs": 160, "lr": 0.006, "milestones": [120, 140], "batch_size": 512, "momentum": 0.9,
               "weight_decay": 0.0, "eval_every": 5, "standardize": False},
    "knn": {"k": 1},
}

# recog.sh: linear lr per benchmark (NTU-60 xsub, NTU-120 xsub/xset: 0.006 above); PKU-MMD II
# pretraining runs batch 512 for 1201 epochs, x0.1 at 801 (pretrain.sh); its linear probe trains
# on the fixed centre 50 % of each sequence (l_ratio [0.5, 1.0] takes the deterministic branch,
# the spec's Q11: what produced the published 54.4), tested on the whole sequence
PAPER_PROTOCOLS = {
    "ntu60-xview": {"linear": {"lr": 0.03}},
    "pku2-xsub": {"pretrain": {"train": {"batch_size": 512, "epochs": 1201, "milestones": [801]}},
                  "features": {"train_crop": "center", "train_ratio": 0.5},
                  "linear": {"lr": 0.01}},
}
# STTR on NTU-60 xsub: 0.03 in the executed command (0.006 in a comment; the spec's Q14)
STTR_PROTOCOLS = {"ntu60-xsub": {"linear": {"lr": 0.03}}}
