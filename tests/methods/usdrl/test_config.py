import pytest
import torch

from skelrep.errors import ParamsError
from skelrep.methods.usdrl.model import (
    BACKBONES,
    EncoderConfig,
    ProjConfig,
    USDRLModel,
    backbone_kwargs,
    validate_usdrl_config,
)
from skelrep.methods.usdrl.schema import ARCHS

from ...conftest import params_section, without


def test_the_params_section_validates():
    cfg = validate_usdrl_config(params_section("usdrl"))
    assert cfg.encoder == EncoderConfig(arch="dste", hidden=64, heads=1, num_layers=1, alpha=0.5, gap=4,
                                        kernel_size=1, drop_path=0.1, mlp_ratio=2, t_pe_max_len=200, frames=32)
    assert cfg.proj == ProjConfig(cp=256, bn="local")
    loss = cfg.loss
    assert (loss.w_sim, loss.w_vac, loss.w_xcorr) == (5, 1, 0.001)
    assert (loss.vac_var_weight, loss.vac_cov_weight, loss.var_eps, loss.xcorr_offdiag) == (5, 1, 1e-4, 0.005)
    assert loss.domain_mix == {"i": 1.0, "t": 0.5, "s": 0.5} and loss.fp32 is True
    assert cfg.aug.views == 4 and cfg.train["modality"] == "joint" and cfg.train["lr"] == 0.003


@pytest.mark.parametrize("dotted", ["encoder.hidden", "encoder.arch", "proj.cp", "loss.w_sim", "loss.domain_mix.t",
                                    "aug.views", "train.lr", "train.modality", "train", "loss"])
def test_every_key_is_required(dotted):
    # no silent defaults: a missing usdrl.encoder.hidden is as much an error as a missing usdrl.train.lr
    with pytest.raises(ParamsError, match="missing") as info:
        validate_usdrl_config(without(params_section("usdrl"), dotted))
    assert info.value.key == f"usdrl.{dotted}"


@pytest.mark.parametrize("section, key, allowed", [
    ({"encoder": {"hiden": 64}}, "usdrl.encoder.hiden", "hidden"),
    ({"proj": {"size": 1}}, "usdrl.proj.size", "cp"),
    ({"loss": {"w_foo": 1}}, "usdrl.loss.w_foo", "w_sim"),
    ({"loss": {"domain_mix": {"x": 1}}}, "usdrl.loss.domain_mix.x", "i, t, s"),
    ({"model": {}}, "usdrl.model", "encoder"),
])
def test_unknown_keys(section, key, allowed):
    with pytest.raises(ParamsError, match=allowed) as info:
        validate_usdrl_config(params_section("usdrl", section))
    assert info.value.key == key and key in str(info.value)


@pytest.mark.parametrize("section, key, allowed", [
    ({"encoder": {"arch": "vit"}}, "usdrl.encoder.arch", "'dste', 'sttr'"),
    ({"encoder": {"hidden": 0}}, "usdrl.encoder.hidden", r"integer in \[1, inf\]"),
    ({"encoder": {"hidden": 64.0}}, "usdrl.encoder.hidden", "integer"),
    ({"encoder": {"hidden": True}}, "usdrl.encoder.hidden", "integer"),
    ({"encoder": {"hidden": 64, "heads": 3}}, "usdrl.encoder.heads", "divisor of hidden=64"),
    ({"encoder": {"alpha": 1.5}}, "usdrl.encoder.alpha", r"\[0.0, 1.0\]"),
    ({"encoder": {"drop_path": 1.0}}, "usdrl.encoder.drop_path", r"\[0.0, 1.0\)"),
    ({"encoder": {"frames": 300}}, "usdrl.encoder.t_pe_max_len", "frames=300"),
    ({"proj": {"bn": "global"}}, "usdrl.proj.bn", "'local', 'sync'"),
    ({"loss": {"var_eps": "1e-4"}}, "usdrl.loss.var_eps", "1.0e-4"),
    ({"loss": {"var_eps": 0}}, "usdrl.loss.var_eps", r"\(0.0"),
    ({"loss": {"w_sim": -1}}, "usdrl.loss.w_sim", "number"),
    ({"loss": {"domain_mix": {"i": "one"}}}, "usdrl.loss.domain_mix.i", "number"),
    ({"loss": {"fp32": "yes"}}, "usdrl.loss.fp32", "true or false"),
    ({"aug": [1, 2]}, "usdrl.aug", "mapping"),
    ({"train": {"modality": "rgb"}}, "usdrl.train.modality", "'joint', 'bone', 'motion'"),
])
def test_bad_values(section, key, allowed):
    with pytest.raises(ParamsError, match=allowed) as info:
        validate_usdrl_config(params_section("usdrl", section))
    assert info.value.key == key


def test_model_from_config_small():
    cfg = validate_usdrl_config(params_section("usdrl", {"encoder": {"hidden": 32, "frames": 16}, "proj": {"cp": 48}}))
    model = USDRLModel(cfg.encoder, cfg.proj, modality="motion", joints=25, persons=1).eval()
    z = model(torch.randn(3, 3, 16, 25, 1))
    assert {k: tuple(v.shape) for k, v in z.items()} == {"t": (3, 48), "s": (3, 48), "i": (3, 96)}
    sttr_section = params_section("usdrl", {"encoder": {"arch": "sttr", "hidden": 32, "frames": 16}})
    sttr = validate_usdrl_config(sttr_section).encoder
    assert "alpha" not in backbone_kwargs(sttr)
    with pytest.raises(ValueError, match="modality"):
        USDRLModel(cfg.encoder, cfg.proj, modality="rgb")


def test_the_schema_allows_exactly_the_backbones():
    assert tuple(BACKBONES) == ARCHS  # schema.py names them without importing the model code
