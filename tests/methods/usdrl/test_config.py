import pytest
import torch

from skelrep.errors import ParamsError
from skelrep.methods.usdrl.model import EncoderConfig, ProjConfig, USDRLModel, backbone_kwargs, validate_usdrl_config


def test_defaults_are_the_paper_configuration():
    cfg = validate_usdrl_config({})
    assert cfg.encoder == EncoderConfig(arch="dste", hidden=1024, heads=1, num_layers=2, alpha=0.5, gap=4,
                                        kernel_size=1, drop_path=0.1, mlp_ratio=2, t_pe_max_len=200, frames=64)
    assert cfg.proj == ProjConfig(cp=2048, bn="local")
    loss = cfg.loss
    assert (loss.w_sim, loss.w_vac, loss.w_xcorr) == (5, 1, 0.001)
    assert (loss.vac_var_weight, loss.vac_cov_weight, loss.var_eps, loss.xcorr_offdiag) == (5, 1, 1e-4, 0.005)
    assert loss.domain_mix == {"i": 1.0, "t": 0.5, "s": 0.5} and loss.fp32 is True


def test_partial_sections_override_defaults_and_pass_aug_train_through():
    cfg = validate_usdrl_config({
        "encoder": {"arch": "sttr", "hidden": 64},
        "loss": {"w_xcorr": 0, "domain_mix": {"t": 0.25}},
        "aug": {"views": 4}, "train": {"lr": 5.0e-4},
    })
    assert cfg.encoder.arch == "sttr" and cfg.encoder.hidden == 64 and cfg.encoder.heads == 1
    assert cfg.loss.w_xcorr == 0 and cfg.loss.domain_mix == {"i": 1.0, "t": 0.25, "s": 0.5}
    assert cfg.aug == {"views": 4} and cfg.train == {"lr": 5.0e-4}


@pytest.mark.parametrize("section, key, allowed", [
    ({"encoder": {"hiden": 64}}, "usdrl.encoder.hiden", "hidden"),
    ({"proj": {"size": 1}}, "usdrl.proj.size", "cp"),
    ({"loss": {"w_foo": 1}}, "usdrl.loss.w_foo", "w_sim"),
    ({"loss": {"domain_mix": {"x": 1}}}, "usdrl.loss.domain_mix.x", "i, s, t"),
    ({"model": {}}, "usdrl.model", "encoder"),
])
def test_unknown_keys(section, key, allowed):
    with pytest.raises(ParamsError, match=allowed) as info:
        validate_usdrl_config(section)
    assert info.value.key == key and key in str(info.value)


@pytest.mark.parametrize("section, key, allowed", [
    ({"encoder": {"arch": "vit"}}, "usdrl.encoder.arch", "dste, sttr"),
    ({"encoder": {"hidden": 0}}, "usdrl.encoder.hidden", "integer >= 1"),
    ({"encoder": {"hidden": 64.0}}, "usdrl.encoder.hidden", "integer"),
    ({"encoder": {"hidden": True}}, "usdrl.encoder.hidden", "integer"),
    ({"encoder": {"hidden": 64, "heads": 3}}, "usdrl.encoder.heads", "divide"),
    ({"encoder": {"alpha": 1.5}}, "usdrl.encoder.alpha", r"\[0.0, 1.0\]"),
    ({"encoder": {"drop_path": 1.0}}, "usdrl.encoder.drop_path", r"\[0.0, 1.0\)"),
    ({"encoder": {"frames": 300}}, "usdrl.encoder.t_pe_max_len", "frames=300"),
    ({"proj": {"bn": "global"}}, "usdrl.proj.bn", "local, sync"),
    ({"loss": {"var_eps": "1e-4"}}, "usdrl.loss.var_eps", "1.0e-4"),
    ({"loss": {"var_eps": 0}}, "usdrl.loss.var_eps", r"\(0.0"),
    ({"loss": {"w_sim": -1}}, "usdrl.loss.w_sim", "number"),
    ({"loss": {"domain_mix": {"i": "one"}}}, "usdrl.loss.domain_mix.i", "number"),
    ({"loss": {"fp32": "yes"}}, "usdrl.loss.fp32", "true or false"),
    ({"aug": [1, 2]}, "usdrl.aug", "mapping"),
])
def test_bad_values(section, key, allowed):
    with pytest.raises(ParamsError, match=allowed) as info:
        validate_usdrl_config(section)
    assert info.value.key == key


def test_model_from_config_small():
    cfg = validate_usdrl_config({"encoder": {"hidden": 32, "frames": 16}, "proj": {"cp": 48}})
    model = USDRLModel(cfg.encoder, cfg.proj, modality="motion", joints=25, persons=1).eval()
    z = model(torch.randn(3, 3, 16, 25, 1))
    assert {k: tuple(v.shape) for k, v in z.items()} == {"t": (3, 48), "s": (3, 48), "i": (3, 96)}
    sttr = validate_usdrl_config({"encoder": {"arch": "sttr", "hidden": 32, "frames": 16}}).encoder
    assert "alpha" not in backbone_kwargs(sttr)
    with pytest.raises(ValueError, match="modality"):
        USDRLModel(cfg.encoder, cfg.proj, modality="rgb")
