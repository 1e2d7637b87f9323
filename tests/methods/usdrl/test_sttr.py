import pytest
import torch

from skelrep.methods.usdrl.sttr import STTR
from skelrep.models.modalities import spatial_tokens, temporal_tokens


@pytest.mark.parametrize("shape", [(2, 3, 64, 25, 2), (2, 3, 32, 25, 1), (2, 2, 16, 17, 1)])
def test_shapes(shape):
    n, c, t, v, m = shape
    model = STTR(frames=t, joints=v, persons=m, channels=c, hidden=32, heads=2).eval()
    x = torch.randn(shape)
    y_t, y_s = model(x)
    assert y_t.shape == (n, t, 32) and y_s.shape == (n, m * v, 32)
    assert model.encode(x).shape == (n, 64)
    assert model.encode_dense(x).shape == (n, t, 64)
    assert model.encode_dense(x, dense_spatial="none").shape == (n, t, 32)


def test_paper_size_parameter_count():
    with torch.device("meta"):
        model = STTR()
    assert sum(p.numel() for p in model.parameters()) == 27_713_536
    layer = model.t_encoder.layers[0]
    assert layer.linear1.out_features == 1024 and layer.self_attn.num_heads == 1 and not layer.norm_first


def test_positional_encodings_added_once_before_each_encoder():
    model = STTR(frames=12, joints=5, persons=2, hidden=16, layers=2).eval()
    x = torch.randn(3, 3, 12, 5, 2)
    y_t, y_s = model(x)
    e_t, e_s = model.embed(temporal_tokens(x), spatial_tokens(x))
    h_t = e_t + model.temporal_pe.pe[:, :12]
    h_s = e_s + model.spatial_pe
    for layer_t, layer_s in zip(model.t_encoder.layers, model.s_encoder.layers, strict=True):
        h_t, h_s = layer_t(h_t), layer_s(h_s)  # no PE between layers
    torch.testing.assert_close(y_t, h_t)
    torch.testing.assert_close(y_s, h_s)
