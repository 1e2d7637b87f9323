"""Equivalence with the official USDRL code through ../shared/reference/usdrl_dste_h64.pt."""

import json

import pytest
import torch

from skelrep.losses.mgfd import mgfd_loss
from skelrep.methods.usdrl.model import EncoderConfig, ProjConfig, USDRLModel
from skelrep.methods.usdrl.official import map_official_state_dict
from skelrep.models.modalities import make_modality, spatial_tokens, temporal_tokens

from ...conftest import assert_close_to_scale


@pytest.fixture
def reference(reference_file):
    return torch.load(reference_file("usdrl_dste_h64.pt"), weights_only=True)


@pytest.fixture
def model(reference):
    cfg = reference["config"]
    hidden = cfg["hidden_size"]
    model = USDRLModel(
        EncoderConfig(hidden=hidden, heads=cfg["num_head"], alpha=cfg["alpha"], gap=cfg["gap"],
                      kernel_size=cfg["kernel_size"]),
        ProjConfig(cp=2 * hidden),
        modality=cfg["modality"],
    )
    model.load_state_dict(map_official_state_dict(reference["state_dict"]), strict=True)
    return model.eval()


def test_modality_tokens(reference):
    for name in ("joint", "bone", "motion"):
        clip = make_modality(reference["x"], name)
        want_t, want_s = reference[f"{name}_tokens"]
        assert torch.equal(temporal_tokens(clip), want_t) and torch.equal(spatial_tokens(clip), want_s)


@torch.no_grad()
def test_backbone_outputs(reference, model):
    y_t, y_s = model.backbone(reference["x"])
    assert_close_to_scale(y_t, reference["backbone_out"][0])
    assert_close_to_scale(y_s, reference["backbone_out"][1])
    # the same from the official token tensors
    y_t, y_s = model.backbone.forward_tokens(*reference["joint_tokens"])
    assert_close_to_scale(y_t, reference["backbone_out"][0])
    assert_close_to_scale(y_s, reference["backbone_out"][1])


@torch.no_grad()
def test_projector_outputs(reference, model):
    z = model(reference["x"])
    for domain in ("t", "s", "i"):
        assert_close_to_scale(z[domain], reference["proj_out"][f"z_{domain}"])


def test_mgfd_terms(reference):
    weights = reference["loss"]["weights"]
    got = mgfd_loss(reference["loss_z"], w_sim=weights["sim"], w_vac=weights["vac"], w_xcorr=weights["xcorr"])
    for term in ("sim", "vac", "xcorr", "total"):
        torch.testing.assert_close(got[term], reference["loss"][term], rtol=1e-5, atol=1e-12)


def test_paper_size_parameter_counts(reference_file):
    shapes = json.loads(reference_file("usdrl_dste_state_dict_shapes.json").read_text())
    with torch.device("meta"):
        model = USDRLModel()
    assert sum(p.numel() for p in model.backbone.parameters()) == shapes["params_backbone_h1024"] == 57_137_368
    assert sum(p.numel() for p in model.parameters()) == shapes["params_total_h1024"] == 94_931_160
    # every official paper-size tensor maps onto a tensor of ours with the same shape
    official = {k: torch.zeros(()).expand(shape) for k, shape in shapes["hidden1024"].items()}
    mapped = map_official_state_dict(official)
    ours = model.state_dict()
    assert mapped.keys() == ours.keys()
    assert all(tuple(mapped[k].shape) == tuple(ours[k].shape) for k in ours)
