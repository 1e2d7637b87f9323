"""Equivalence with the official UmURL code through ../shared/reference/umurl_h64.pt."""

import pytest
import torch

from skelrep.losses.umurl_consistency import umurl_loss
from skelrep.methods.umurl.model import UmURLEncoderConfig, UmURLModel, UmURLProjConfig
from skelrep.methods.umurl.official import map_official_umurl_state_dict
from skelrep.models.modalities import MODALITIES

from ...conftest import assert_close_to_scale


@pytest.fixture
def reference(reference_file):
    return torch.load(reference_file("umurl_h64.pt"), weights_only=True)


@pytest.fixture
def model(reference):
    cfg = reference["config"]
    hidden = cfg["hidden_size"]
    model = UmURLModel(
        UmURLEncoderConfig(hidden=hidden, heads=cfg["num_head"], num_layers=cfg["num_layer"]),
        UmURLProjConfig(dims=(2 * hidden, 2 * hidden, 4096)),
    )
    # strict: every official tensor has a home and every tensor of ours is filled
    model.load_state_dict(map_official_umurl_state_dict(reference["state_dict"]), strict=True)
    return model.eval()


def test_token_sizes_match_the_official_config(reference, model):
    embed = model.backbone.embed["joint"]
    assert embed.temporal[0].in_features == reference["config"]["t_input_size"]
    assert embed.spatial[0].in_features == reference["config"]["s_input_size"]


@torch.no_grad()
def test_fused_feature(reference, model):
    y_u = model.backbone.mm_forward(reference["x"])
    assert y_u.shape == reference["mm_feature"].shape == (4, 128)
    assert_close_to_scale(y_u, reference["mm_feature"])


@torch.no_grad()
def test_uni_modal_features(reference, model):
    for modality, expected in zip(MODALITIES, reference["uni_features"], strict=True):
        assert_close_to_scale(model.backbone.uni_forward(reference["x"], modality), expected)


@torch.no_grad()
def test_pretraining_forward_reproduces_the_six_projections(reference, model):
    out = model(*reference["loss_views"])
    assert len(out) == len(reference["loss_z"]) == 6
    for got, expected in zip(out, reference["loss_z"], strict=True):
        assert_close_to_scale(got, expected)


def test_loss_terms(reference):
    z = reference["loss_z"]
    got = umurl_loss(z[:3], z[3:])
    for term in ("intra", "inter", "reg", "total"):
        torch.testing.assert_close(got[term], reference["loss"][term], rtol=1e-5, atol=1e-12)


@torch.no_grad()
def test_loss_from_our_forward(reference, model):
    out = model(*reference["loss_views"])
    got = umurl_loss(out.uni, out.fused)
    torch.testing.assert_close(got["total"], reference["loss"]["total"], rtol=1e-5, atol=1e-12)


def test_paper_size_parameter_counts():
    def count(module):
        return sum(p.numel() for p in module.parameters())

    with torch.device("meta"):
        model = UmURLModel()
    backbone = model.backbone
    assert count(backbone.embed["joint"]) == 2_455_552
    assert count(backbone.fusion) == 2_097_152
    assert count(backbone.encoder) == 12_603_392
    assert count(model.projectors["joint"]) == 16_793_600
    assert count(backbone) == 22_067_200
    assert count(model) == 72_448_000
