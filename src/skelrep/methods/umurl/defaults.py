"""UmURL's paper values, kept once: the UmURL code (``script_pretrain.sh``, ``pretrain.py``; SyncBN projectors).

``PAPER`` is the paper recipe for a GPU, nested like the ``umurl`` section of params.yaml:
what ``skelrep profile paper`` sets over the committed CPU values, and the paper size of
``benchmarks/train_step.py``. The model config (``model.UmURLEncoderConfig``,
``model.UmURLProjConfig``) take their code defaults from here; params.yaml must name every key.
"""

PAPER_SOURCE = "UmURL (ACM MM 2023): the paper and the official pretraining scripts"

PAPER = {
    "encoder": {"hidden": 1024, "ffn": 1024, "frames": 64},
    "proj": {"dims": [2048, 2048, 4096], "bn": "sync"},
    "aug": {"min_crop": 64},
    # batch: the active NTU-60 xsub command (512); NTU-60 xview and NTU-120 use 1024
    # (-S umurl.train.batch_size=1024)
    "train": {"lr": 0.0005, "batch_size": 512, "epochs": 451, "milestones": [351], "ckpt_every": 50,
              "workers": 4},
}
