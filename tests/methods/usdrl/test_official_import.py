import pytest
import torch

from skelrep.cli import main
from skelrep.errors import DataError
from skelrep.io import sha256_file
from skelrep.methods.usdrl.model import load_usdrl_encoder
from skelrep.methods.usdrl.official import import_official_usdrl_checkpoint, map_official_state_dict
from skelrep.methods.usdrl.sttr import STTR
from skelrep.models.encoder_file import ENCODER_FORMAT, load_encoder_file, save_encoder


@pytest.fixture
def reference(reference_file):
    return torch.load(reference_file("usdrl_dste_h64.pt"), weights_only=True)


def assert_reproduces_backbone_out(encoder_path, reference):
    backbone = load_usdrl_encoder(encoder_path).eval()
    with torch.no_grad():
        y_t, y_s = backbone(reference["x"])
    want_t, want_s = reference["backbone_out"]
    assert (y_t - want_t).abs().max() <= 1e-5 * want_t.abs().max()
    assert (y_s - want_s).abs().max() <= 1e-5 * want_s.abs().max()


def test_cli_imports_dataparallel_pretraining_checkpoint(tmp_path, reference, capsys):
    src = tmp_path / "checkpoint_0450.pth.tar"
    state = {f"module.{k}": v for k, v in reference["state_dict"].items()}
    torch.save({"epoch": 451, "state_dict": state, "optimizer": {}}, src)
    dst = tmp_path / "out" / "encoder.pt"
    assert main(["import-checkpoint", str(src), str(dst), "--arch", "dste"]) == 0
    assert "hidden=64" in capsys.readouterr().out

    payload = load_encoder_file(dst)
    assert payload["format"] == ENCODER_FORMAT and payload["method"] == "usdrl" and payload["arch"] == "dste"
    assert payload["config"] == dict(frames=64, joints=25, persons=2, channels=3, hidden=64, heads=1, layers=2,
                                     alpha=0.5, gap=4, kernel_size=1, drop_path=0.1, mlp_ratio=2.0,
                                     t_pe_max_len=200)
    assert payload["extra"]["source_sha256"] == sha256_file(src)
    assert not any(k.startswith(("t_proj", "i_proj", "s_proj")) for k in payload["state_dict"])
    assert sorted(p.name for p in dst.parent.iterdir()) == ["encoder.pt"]  # no temp leftovers
    assert_reproduces_backbone_out(dst, reference)


@pytest.mark.parametrize("wrap", [False, True])
def test_imports_without_prefix(tmp_path, reference, wrap):
    src = tmp_path / "plain.pth.tar"
    torch.save({"state_dict": reference["state_dict"]} if wrap else reference["state_dict"], src)
    assert main(["import-checkpoint", str(src), str(tmp_path / "enc.pt")]) == 0  # arch inferred
    assert_reproduces_backbone_out(tmp_path / "enc.pt", reference)


def test_mismatched_shared_attention_is_rejected(tmp_path, reference, capsys):
    state = dict(reference["state_dict"])
    state["backbone.t_tr1.DSA.attn.in_proj_weight"] = state["backbone.t_tr1.DSA.attn.in_proj_weight"] + 1e-3
    with pytest.raises(ValueError, match="t_tr1.CA.attn.in_proj_weight and backbone.t_tr1.DSA.attn.in_proj_weight"):
        map_official_state_dict(state)
    src = tmp_path / "bad.pth.tar"
    torch.save({"state_dict": state}, src)
    dst = tmp_path / "enc.pt"
    assert main(["import-checkpoint", str(src), str(dst)]) == 1
    assert "shared attention" in capsys.readouterr().err and not dst.exists()


def test_unknown_keys_and_wrong_arch_are_rejected(tmp_path, reference):
    src = tmp_path / "x.pth.tar"
    torch.save({**reference["state_dict"], "backbone.extra.weight": torch.zeros(1)}, src)
    with pytest.raises(DataError, match="backbone.extra.weight"):
        import_official_usdrl_checkpoint(src, tmp_path / "enc.pt")
    torch.save(reference["state_dict"], src)
    with pytest.raises(DataError, match="STTR"):
        import_official_usdrl_checkpoint(src, tmp_path / "enc.pt", arch="sttr")
    with pytest.raises(ValueError, match="config_overrides"):
        import_official_usdrl_checkpoint(src, tmp_path / "enc.pt", config_overrides={"depth": 3})


def test_config_overrides_apply(tmp_path, reference):
    src = tmp_path / "x.pth.tar"
    torch.save(reference["state_dict"], src)
    config = import_official_usdrl_checkpoint(src, tmp_path / "enc.pt", config_overrides={"heads": 4})
    assert config["heads"] == 4 and load_encoder_file(tmp_path / "enc.pt")["config"]["heads"] == 4


def test_sttr_checkpoint_round_trip(tmp_path):
    """Official STTR names (backbone.{t,s}_tr.layers.*) import into our STTR."""
    torch.manual_seed(0)
    ours = STTR(frames=16, joints=25, persons=2, hidden=32).eval()
    rename = {"embed.temporal.": "ske_emb.t_embedding.", "embed.spatial.": "ske_emb.s_embedding.",
              "temporal_pe.pe": "tpe.pe", "spatial_pe": "spe", "t_encoder.": "t_tr.", "s_encoder.": "s_tr."}
    official = {}
    for key, value in ours.state_dict().items():
        for new, old in rename.items():
            if key.startswith(new):
                key = old + key[len(new):]
                break
        official[f"module.backbone.{key}"] = value
    src = tmp_path / "sttr.pth.tar"
    torch.save({"state_dict": official}, src)
    assert main(["import-checkpoint", str(src), str(tmp_path / "enc.pt")]) == 0
    loaded = load_usdrl_encoder(tmp_path / "enc.pt").eval()
    assert isinstance(loaded, STTR) and loaded.config() == ours.config()
    x = torch.randn(2, 3, 16, 25, 2)
    torch.testing.assert_close(loaded(x), ours(x))


def test_encoder_file_is_deterministic_and_checked(tmp_path):
    state = {"w": torch.arange(6.0).reshape(2, 3)}
    for name in ("a.pt", "b.pt"):
        save_encoder(tmp_path / name, method="usdrl", arch="dste", config={"hidden": 2}, state_dict=state)
    again = tmp_path / "again"
    save_encoder(again / "a.pt", method="usdrl", arch="dste", config={"hidden": 2}, state_dict=state)
    assert sha256_file(tmp_path / "a.pt") == sha256_file(again / "a.pt")
    payload = load_encoder_file(tmp_path / "a.pt")
    assert payload["extra"] == {} and torch.equal(payload["state_dict"]["w"], state["w"])

    torch.save({"state_dict": state}, tmp_path / "raw.pt")
    with pytest.raises(DataError, match="skelrep-encoder/1"):
        load_encoder_file(tmp_path / "raw.pt")
    (tmp_path / "text.pt").write_text("hello")
    with pytest.raises(DataError, match="text.pt"):
        load_encoder_file(tmp_path / "text.pt")
    with pytest.raises(TypeError, match="config.fn"):
        save_encoder(tmp_path / "c.pt", method="m", arch="a", config={"fn": print}, state_dict=state)


def test_cli_help(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0 and "import-checkpoint" in capsys.readouterr().out
    with pytest.raises(SystemExit) as info:
        main(["import-checkpoint", "--help"])
    assert info.value.code == 0 and "--arch" in capsys.readouterr().out


def test_imports_downstream_checkpoint_with_fc_head(tmp_path, reference):
    state = {k: v for k, v in reference["state_dict"].items() if k.startswith("backbone.")}
    state.update({"fc.weight": torch.zeros(60, 128), "fc.bias": torch.zeros(60)})
    src = tmp_path / "linear.pth.tar"
    torch.save({"state_dict": {f"module.{k}": v for k, v in state.items()}}, src)
    import_official_usdrl_checkpoint(src, tmp_path / "enc.pt")
    assert not any(k.startswith("fc.") for k in load_encoder_file(tmp_path / "enc.pt")["state_dict"])
    assert_reproduces_backbone_out(tmp_path / "enc.pt", reference)
