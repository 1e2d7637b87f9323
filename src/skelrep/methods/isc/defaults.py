"""ISC's paper values, kept once: the Skeleton-Contrast code (its encoders, ``script_pretrain.sh``
and ``main_moco_inter_skeleton.py``).

``PAPER`` is the paper recipe for a GPU, nested like the ``isc`` section of params.yaml:
what ``skelrep profile paper`` sets over the committed CPU values, and the paper size of
``benchmarks/train_step.py``. The config defaults of the same keys come from here
(``moco.GruConfig``, ``moco.MocoConfig`` and the adapter's own ``frames``, ``agcn``, ``hcn``).
"""

PAPER_SOURCE = "Skeleton-Contrast (ACM MM 2021): script_pretrain.sh, main_moco_inter_skeleton.py"

PAPER = {
    "frames": 64,
    "gru": {"hidden": 1024, "layers": 3},
    "agcn": {"base_channels": 64},
    "hcn": {"width": 64},
    "moco": {"k": 16384, "m": 0.999},
    "aug": {"min_crop": 64},
    # the NTU-60 schedule (NTU-120: 351 epochs, milestone 251)
    "train": {"lr": 0.01, "batch_size": 64, "epochs": 451, "milestones": [351], "ckpt_every": 10,
              "workers": 8},
}
