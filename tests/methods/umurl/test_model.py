"""UmURL model: shapes, paths, official names, encoder files and the ``umurl`` params block."""

import pytest
import torch

from skelrep.errors import DataError, ParamsError
from skelrep.methods.umurl.model import (
    UmURLBackbone,
    UmURLConfig,
    UmURLEncoderConfig,
    UmURLLossConfig,
    UmURLModel,
    UmURLProjConfig,
    load_umurl_encoder,
    validate_umurl_config,
)
from skelrep.methods.umurl.official import map_official_umurl_state_dict
from skelrep.models.encoder_file import save_encoder
from skelrep.models.modalities import MODALITIES

from ...conftest import params_section, without

HIDDEN = 16
CHAIN_17 = [0] + list(range(16))  # a 17-joint chain: joint v hangs from v - 1


def small_backbone(channels=3, frames=64, joints=25, persons=2, **kwargs):
    parents = None if joints == 25 else CHAIN_17[:joints]
    return UmURLBackbone(frames=frames, joints=joints, persons=persons, channels=channels, hidden=HIDDEN,
                         heads=2, parents=parents, **kwargs).eval()


CLIPS = [(2, 3, 64, 25, 2), (2, 3, 32, 25, 1), (2, 2, 16, 17, 1)]


@pytest.mark.parametrize("shape", CLIPS)
@torch.no_grad()
def test_feature_shapes(shape):
    n, c, t, v, m = shape
    backbone = small_backbone(channels=c, frames=t, joints=v, persons=m)
    x = torch.randn(shape)
    for modality in (None, *MODALITIES):
        y_t, y_s = backbone.dense(x, modality)
        assert y_t.shape == (n, t, HIDDEN) and y_s.shape == (n, m * v, HIDDEN)
        assert backbone.encode(x, modality).shape == (n, 2 * HIDDEN) == (n, backbone.out_dim)
        assert backbone.encode_dense(x, modality).shape == (n, t, 2 * HIDDEN)
        assert backbone.encode_dense(x, modality, dense_spatial="none").shape == (n, t, HIDDEN)
    assert torch.equal(backbone.mm_forward(x), backbone.encode(x))
    assert torch.equal(backbone.uni_forward(x, "bone"), backbone.encode(x, "bone"))


@pytest.mark.parametrize("shape", CLIPS)
def test_pretraining_forward_shapes_and_gradients(shape):
    n, c, t, v, m = shape
    model = UmURLModel(UmURLEncoderConfig(hidden=HIDDEN, frames=t), UmURLProjConfig(dims=(24, 24, 40)),
                       joints=v, persons=m, channels=c, parents=None if v == 25 else CHAIN_17)
    out = model(*(torch.randn(shape) for _ in range(4)))
    assert len(out) == 6 and all(z.shape == (n, 40) for z in out)
    assert out.uni == (out.z_j, out.z_b, out.z_m) and out.fused == (out.z_uj, out.z_ub, out.z_um)
    sum(z.sum() for z in out).backward()
    assert all(p.grad is not None for p in model.parameters()), "every parameter takes part in pretraining"


@torch.no_grad()
def test_uni_path_skips_the_fusion_and_fused_path_uses_it():
    backbone = small_backbone()
    x = torch.randn(2, 3, 64, 25, 2)
    uni, fused = backbone.encode(x, "joint"), backbone.encode(x)
    backbone.fusion.temporal.weight.mul_(2.0)
    assert torch.equal(backbone.encode(x, "joint"), uni)
    assert not torch.allclose(backbone.encode(x), fused)


@torch.no_grad()
def test_fusion_is_the_mean_through_bias_free_linears():
    fusion = small_backbone().fusion
    assert fusion.temporal.bias is None and fusion.spatial.bias is None
    parts = [(torch.randn(2, 5, HIDDEN), torch.randn(2, 7, HIDDEN)) for _ in range(3)]
    e_t, e_s = fusion(parts)
    torch.testing.assert_close(e_t, torch.stack([p[0] for p in parts]).mean(0) @ fusion.temporal.weight.T)
    torch.testing.assert_close(e_s, torch.stack([p[1] for p in parts]).mean(0) @ fusion.spatial.weight.T)


@torch.no_grad()
def test_only_the_temporal_stream_has_a_positional_encoding():
    backbone = small_backbone()
    x = torch.randn(2, 3, 64, 25, 2)
    y = backbone.encode(x, "joint")
    # reordering the persons' joints only reorders the spatial tokens: the pooled spatial half is unchanged
    perm = torch.randperm(25)
    y_perm = backbone.encode(x[:, :, :, perm], "joint")
    torch.testing.assert_close(y_perm[:, HIDDEN:], y[:, HIDDEN:])
    # reversing time changes the temporal half, because of the PE
    y_rev = backbone.encode(x.flip(2), "joint")
    assert not torch.allclose(y_rev[:, :HIDDEN], y[:, :HIDDEN], atol=1e-4)


def test_layer_structure_and_names():
    backbone = small_backbone(layers=2, ffn=24)
    embed = backbone.embed["motion"].temporal
    assert [type(layer).__name__ for layer in embed] == ["Linear", "LayerNorm", "ReLU", "Linear"]
    layer = backbone.encoder.t_encoder.layers[1]
    assert layer.linear1.out_features == 24 and not layer.norm_first and layer.self_attn.num_heads == 2
    assert len(backbone.encoder.s_encoder.layers) == 2
    assert small_backbone().encoder.t_encoder.layers[0].linear1.out_features == HIDDEN  # ffn = hidden


def test_backbone_errors():
    backbone = small_backbone()
    with pytest.raises(ValueError, match=r"\(N, 3, 64, 25, 2\)"):
        backbone.encode(torch.randn(2, 3, 32, 25, 2))
    with pytest.raises(ValueError, match="unknown modality 'rgb'"):
        backbone.encode(torch.randn(1, 3, 64, 25, 2), "rgb")
    with pytest.raises(ValueError, match="t_pe_max_len"):
        UmURLBackbone(frames=300, hidden=HIDDEN)
    with pytest.raises(ValueError, match="parents must be given"):
        UmURLBackbone(joints=17, hidden=HIDDEN)
    with pytest.raises(ValueError, match="one parent index"):
        UmURLBackbone(joints=17, hidden=HIDDEN, parents=[0] * 16)


def test_encoder_file_round_trip(tmp_path):
    backbone = small_backbone(channels=2, frames=16, joints=17, persons=1)
    path = tmp_path / "encoder.pt"
    save_encoder(path, method="umurl", arch="umurl", config=backbone.config(), state_dict=backbone.state_dict())
    loaded = load_umurl_encoder(path).eval()
    assert loaded.config() == backbone.config() and loaded.config()["parents"] == CHAIN_17
    x = torch.randn(3, 2, 16, 17, 1)
    with torch.no_grad():
        assert torch.equal(loaded.encode(x), backbone.encode(x))
    save_encoder(path, method="usdrl", arch="sttr", config={}, state_dict={})
    with pytest.raises(DataError, match="not 'umurl'"):
        load_umurl_encoder(path)


def test_official_name_mapping():
    sd = {
        "module.backbone.b_emb.s_embedding.3.bias": torch.zeros(1),
        "backbone.mm_fusion.t_fusion.0.weight": torch.zeros(1),
        "backbone.ma_encoder.pe.pe": torch.zeros(1),
        "backbone.ma_encoder.s_tr.layers.0.norm2.weight": torch.zeros(1),
        "m_projector.4.running_var": torch.zeros(1),
        "fc.weight": torch.zeros(1),
    }
    assert list(map_official_umurl_state_dict(sd)) == [
        "backbone.embed.bone.spatial.3.bias",
        "backbone.fusion.temporal.weight",
        "backbone.encoder.temporal_pe.pe",
        "backbone.encoder.s_encoder.layers.0.norm2.weight",
        "projectors.motion.4.running_var",
        "fc.weight",
    ]
    with pytest.raises(ValueError, match="backbone.x_emb.t_embedding.0.weight"):
        map_official_umurl_state_dict({"backbone.x_emb.t_embedding.0.weight": torch.zeros(1)})


# ---------------------------------------------------------------- params


def test_the_params_section_validates():
    cfg = validate_umurl_config(params_section("umurl"))
    assert cfg == UmURLConfig(
        encoder=UmURLEncoderConfig(hidden=64, heads=1, num_layers=1, ffn=64, t_pe_max_len=200, frames=32),
        proj=UmURLProjConfig(dims=(256, 256, 512), bn="local"),
        loss=UmURLLossConfig(w_consistency=5, vac_var_weight=5, vac_cov_weight=1, var_eps=1e-4, gather=True,
                             fp32=True),
        aug=cfg.aug, train=cfg.train, eval_input="fused", init="torch_default",
    )
    assert cfg.aug.views == 4 and "modality" not in cfg.train
    # ffn: null follows hidden, as the official dim_feedforward
    assert validate_umurl_config(params_section("umurl", {"encoder": {"ffn": None}})).encoder.ffn == 64


@pytest.mark.parametrize("dotted", ["encoder.hidden", "encoder.num_layers", "encoder.ffn", "proj.dims",
                                    "loss.vac_var_weight", "aug.crop_scale", "train.seed", "eval_input", "init"])
def test_every_key_is_required(dotted):
    with pytest.raises(ParamsError, match="missing") as info:
        validate_umurl_config(without(params_section("umurl"), dotted))
    assert info.value.key == f"umurl.{dotted}"


@pytest.mark.parametrize("section, key, message", [
    ({"encoder": {"hiden": 64}}, "umurl.encoder.hiden", "hidden"),
    ({"proj": {"cp": 1}}, "umurl.proj.cp", "dims"),
    ({"loss": {"w_sim": 1}}, "umurl.loss.w_sim", "w_consistency"),
    ({"model": {}}, "umurl.model", "encoder"),
    ({"encoder": {"hidden": 0}}, "umurl.encoder.hidden", r"\[1, inf\]"),
    ({"encoder": {"hidden": 64.0}}, "umurl.encoder.hidden", "integer"),
    ({"encoder": {"num_layers": True}}, "umurl.encoder.num_layers", "integer"),
    ({"encoder": {"ffn": 0}}, "umurl.encoder.ffn", r"\[1, inf\]"),
    ({"encoder": {"hidden": 64, "heads": 3}}, "umurl.encoder.heads", "divisor"),
    ({"encoder": {"frames": 300}}, "umurl.encoder.t_pe_max_len", "frames=300"),
    ({"proj": {"dims": [2048, 4096]}}, "umurl.proj.dims", "exactly 3 items"),
    ({"proj": {"dims": [2048, 2048, "x"]}}, "umurl.proj.dims[2]", "integer"),
    ({"proj": {"dims": [2048, 1024, 4096]}}, "umurl.proj.dims", "equal"),
    ({"proj": {"bn": "global"}}, "umurl.proj.bn", "'sync', 'local'"),
    ({"loss": {"var_eps": "1e-4"}}, "umurl.loss.var_eps", "number"),
    ({"loss": {"var_eps": 0}}, "umurl.loss.var_eps", r"\(0.0, inf\]"),
    ({"loss": {"w_consistency": -1}}, "umurl.loss.w_consistency", r"\[0.0, inf\]"),
    ({"loss": {"fp32": "yes"}}, "umurl.loss.fp32", "true or false"),
    ({"loss": [1]}, "umurl.loss", "mapping"),
    ({"aug": [1, 2]}, "umurl.aug", "mapping"),
    ({"eval_input": "joint"}, "umurl.eval_input", "'fused', 'joint_only'"),
    ({"init": "official"}, "umurl.init", "torch_default"),
    ({"encoder": {"layers": 1}}, "umurl.encoder.layers", "num_layers"),  # renamed: the USDRL name
    ({"loss": {"vc_var_weight": 1}}, "umurl.loss.vc_var_weight", "vac_var_weight"),
    ({"aug": {"views": 2}}, "umurl.aug.views", "exactly 4"),
])
def test_config_errors_name_the_dotted_key(section, key, message):
    with pytest.raises(ParamsError, match=message) as info:
        validate_umurl_config(params_section("umurl", section))
    assert info.value.key == key and key in str(info.value)


def test_model_from_validated_config():
    cfg = validate_umurl_config(params_section("umurl", {"encoder": {"hidden": 32, "ffn": None, "frames": 16},
                                                         "proj": {"dims": [48, 48, 80]}}))
    model = UmURLModel(cfg.encoder, cfg.proj, joints=25, persons=1).eval()
    assert model.backbone.config()["ffn"] == 32
    with torch.no_grad():
        out = model(*(torch.randn(3, 3, 16, 25, 1) for _ in range(4)))
    assert [tuple(z.shape) for z in out] == [(3, 80)] * 6
