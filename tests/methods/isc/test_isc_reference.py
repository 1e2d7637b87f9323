"""Equivalence with the official ISC encoders through ../shared/reference/isc_encoders.pt."""

import pytest
import torch

from skelrep.methods.isc.agcn import IscAGCN
from skelrep.methods.isc.gru import IscGRU, map_official_gru
from skelrep.methods.isc.hcn import IscHCN
from skelrep.methods.isc.heads import ProjectionHead, map_official_head
from skelrep.methods.isc.moco import seq_tokens

from ...conftest import REFERENCE, assert_close_to_scale


@pytest.fixture(scope="module")
def reference():
    path = REFERENCE / "isc_encoders.pt"
    if not path.exists():
        pytest.skip("isc_encoders.pt not available (expected under ../shared/reference)")
    return torch.load(path, weights_only=True)


def _encoder_weights(state_dict):
    return {k: v for k, v in state_dict.items() if not k.startswith("fc.")}


@torch.no_grad()
def _check(reference, name, encoder, encoder_weights, kind, x):
    ref = reference[name]
    head = ProjectionHead(encoder.feature_dim, 128, mlp=False, kind=kind)
    encoder.load_state_dict(encoder_weights, strict=True)
    head.load_state_dict(map_official_head(ref["state_dict"], mlp=False), strict=True)
    encoder.eval()
    feature = encoder(x)
    assert_close_to_scale(feature, ref["feature"])
    assert_close_to_scale(head(feature), ref["logits"])


def test_sequence_representation(reference):
    assert torch.equal(seq_tokens(reference["x"]), reference["seq_input"])


def test_gru_causal_official(reference):
    cfg = reference["gru"]["config"]
    gru = IscGRU(cfg["en_input_size"], cfg["en_hidden_size"], cfg["en_num_layers"], "causal_official")
    weights = map_official_gru(_encoder_weights(reference["gru"]["state_dict"]))
    _check(reference, "gru", gru, weights, "seq", seq_tokens(reference["x"]))


@torch.no_grad()
def test_gru_bidirectional_is_a_different_model(reference):
    """The official weights load into a true BiGRU, whose output differs (the official GRU is causal)."""
    cfg = reference["gru"]["config"]
    gru = IscGRU(cfg["en_input_size"], cfg["en_hidden_size"], cfg["en_num_layers"], "bidirectional")
    gru.load_state_dict(map_official_gru(_encoder_weights(reference["gru"]["state_dict"]), "bidirectional"))
    assert not torch.allclose(gru(reference["seq_input"]), reference["gru"]["feature"], atol=1e-3)


def test_agcn(reference):
    _check(reference, "agcn", IscAGCN(), _encoder_weights(reference["agcn"]["state_dict"]), "graph",
           reference["x"])


def test_hcn(reference):
    _check(reference, "hcn", IscHCN(), _encoder_weights(reference["hcn"]["state_dict"]), "image",
           reference["x"])
