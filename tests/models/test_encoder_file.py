"""Encoder files: a save removes what a killed earlier save left next to the file."""

from __future__ import annotations

import torch

from skelrep.models.encoder_file import load_encoder_file, save_encoder


def test_save_sweeps_stale_temp_folders_of_the_same_file_only(tmp_path):
    stale = tmp_path / ".encoder.pt.k3j9_x2a.tmp"  # a tempfile.mkdtemp name of a killed save
    stale.mkdir()
    (stale / "encoder.pt").write_bytes(b"half a file")
    other = tmp_path / ".encoder_random.pt.k3j9_x2a.tmp"
    other.mkdir()
    save_encoder(tmp_path / "encoder.pt", method="usdrl", arch="dste", config={"hidden": 4},
                 state_dict={"w": torch.ones(2)}, extra={})
    assert not stale.exists() and other.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [".encoder_random.pt.k3j9_x2a.tmp", "encoder.pt"]
    assert torch.equal(load_encoder_file(tmp_path / "encoder.pt")["state_dict"]["w"], torch.ones(2))
