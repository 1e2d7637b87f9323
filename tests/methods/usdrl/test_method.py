"""USDRL as a method: views -> loss terms; encoder file -> the same features downstream."""

from __future__ import annotations

import pytest
import torch

from skelrep.errors import ParamsError
from skelrep.methods import build_encoder, get_method
from skelrep.models.encoder_file import load_encoder_file, save_encoder
from skelrep.training.distributed import DistInfo

from ...training.test_pretrain import TINY_USDRL, tiny_usdrl


def test_training_loss_has_every_mgfd_term_and_backpropagates():
    method = tiny_usdrl()
    model = method.build_model(3, 25, 2)
    x = torch.randn(6, 3, 40, 25, 2)
    terms = method.training_loss(model, x, torch.tensor([40, 30, 20, 40, 16, 35]),
                                 torch.Generator().manual_seed(0), DistInfo())
    assert set(terms) == {"sim", "vac", "xcorr", "total"}
    expected = 5 * terms["sim"] + 1 * terms["vac"] + 0.001 * terms["xcorr"]
    assert torch.allclose(terms["total"], expected)
    terms["total"].backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


@pytest.mark.parametrize("modality", ["joint", "bone", "motion"])
def test_stacked_views_equal_the_per_view_forward(modality):
    """The backbone runs once on all views; the projectors (BatchNorm) per view: the same
    embeddings as one forward per view, in training mode too (DropPath off)."""
    section = {**TINY_USDRL, "encoder": {**TINY_USDRL["encoder"], "drop_path": 0.0},
               "train": {**TINY_USDRL["train"], "modality": modality}}
    method = get_method("usdrl", {"usdrl": section})
    torch.manual_seed(0)
    model = method.build_model(3, 25, 2).train()
    views = [torch.randn(5, 3, method.frames, 25, 2) for _ in range(4)]
    stacked = model(torch.cat(views), n_views=4)
    listed = model(views)
    per_view = [model.net(v) for v in views]
    for d in ("t", "s", "i"):
        for k in range(4):
            torch.testing.assert_close(stacked[d][k], per_view[k][d], rtol=1e-4, atol=1e-5)
            torch.testing.assert_close(listed[d][k], stacked[d][k], rtol=0, atol=0)
    with pytest.raises(ValueError, match="n_views"):
        model(torch.cat(views))


@pytest.mark.parametrize("modality", ["joint", "bone", "motion"])
def test_encoder_file_round_trip_gives_identical_features(tmp_path, modality):
    method = tiny_usdrl(modality=modality)
    model = method.build_model(3, 25, 2).eval()
    save_encoder(tmp_path / "encoder.pt", **method.encoder_payload(model))
    encoder = build_encoder(load_encoder_file(tmp_path / "encoder.pt"))
    clip = torch.randn(3, 3, 16, 25, 2)
    with torch.no_grad():
        from skelrep.models.modalities import make_modality

        direct = model.net.backbone.encode(make_modality(clip, modality))
        assert torch.equal(encoder.features(clip), direct)
        assert encoder.dense_features(clip).shape == (3, 16, encoder.dense_dim)
    assert encoder.frames == 16 and encoder.feature_dim == 32


def test_unknown_method_and_bad_train_key_are_rejected():
    with pytest.raises(ParamsError, match="method"):
        get_method("simclr", {"simclr": {}})
    section = {**TINY_USDRL, "train": {**TINY_USDRL["train"], "warmup": 3}}
    with pytest.raises(ParamsError, match="usdrl.train.warmup"):
        get_method("usdrl", {"usdrl": section})
