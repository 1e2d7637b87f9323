"""USDRL's paper values, kept once: the AAAI code (its options files, ``pretrain.py``, ``scripts/pretrain.sh``).

``PAPER`` is the paper recipe for a GPU, nested like the ``usdrl`` section of params.yaml:
what ``skelrep profile paper`` sets over the committed CPU values, and the paper size of
``benchmarks/train_step.py``. The model config dataclasses (``model.EncoderConfig``,
``model.ProjConfig``) take their code defaults from here; params.yaml must name every key.
"""

PAPER_SOURCE = "USDRL (AAAI 2025): the paper and the official pretraining scripts"

PAPER = {
    "encoder": {"hidden": 1024, "num_layers": 2, "frames": 64},
    "proj": {"cp": 2048},
    "aug": {"crop_scale": [0.1, 1.0], "min_crop": 64},
    "train": {"lr": 0.0005, "batch_size": 356, "epochs": 451, "milestones": [351], "ckpt_every": 50,
              "workers": 8},
}
