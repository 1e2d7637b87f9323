"""UmURL's paper recipe, kept once: the UmURL code (``script_pretrain.sh``, ``pretrain.py``;
SyncBN projectors; ``action_recognition.py``, ``script_action_recognition.sh``).

``PAPER`` is the method section for a GPU, nested like the ``umurl`` section of params.yaml
(also the paper size of ``benchmarks/train_step.py``; the model configs take their code
defaults from here, while params.yaml must name every key). ``PAPER_SECTIONS`` are the other
sections the recipe sets, ``PAPER_PROTOCOLS`` its per-benchmark values: together what
``skelrep profile paper`` sets (:mod:`skelrep.recipes`).
"""

PAPER_SOURCE = "UmURL (ACM MM 2023): the paper and the official pretraining scripts"

PAPER = {
    "encoder": {"hidden": 1024, "ffn": 1024, "frames": 64},
    "proj": {"dims": [2048, 2048, 4096], "bn": "sync"},
    "aug": {"min_crop": 64},
    # batch: the active NTU-60 xsub command (512); NTU-60 xview and NTU-120: PAPER_PROTOCOLS.
    # fp16 autocast + GradScaler, as the official training loop
    "train": {"lr": 0.0005, "batch_size": 512, "epochs": 451, "min_steps": 0, "milestones": [351], "ckpt_every": 50,
              "workers": 4, "precision": "fp16"},
}

# Linear evaluation (script_action_recognition.sh): SGD momentum 0.9, no weight decay, lr 0.03
# (the code's default 30 is not what ran), batch 512, 150 epochs, x0.1 at 120 and 140, raw
# features; the whole valid sequence, fused streams. KNN: cosine 1-NN.
PAPER_SECTIONS = {
    "preprocess": {"normalisation": "umurl"},
    "features": {"batch_size": 512},
    "linear": {"epochs": 150, "lr": 0.03, "milestones": [120, 140], "batch_size": 512, "momentum": 0.9,
               "weight_decay": 0.0, "eval_every": 5, "standardize": False},
    "knn": {"k": 1},
}

# batch 1024 in the NTU-60 xview, NTU-120 xsub and NTU-120 xset commands (the spec's U3)
PAPER_PROTOCOLS = {
    protocol: {"pretrain": {"train": {"batch_size": 1024}}}
    for protocol in ("ntu60-xview", "ntu120-xsub", "ntu120-xset")
}
