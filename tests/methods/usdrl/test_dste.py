import pytest
import torch
from torch import nn

from skelrep.methods.usdrl.dste import DSTE, DSTLayer

SMALL = dict(hidden=32, heads=2)


def count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize("shape", [(2, 3, 64, 25, 2), (2, 3, 32, 25, 1), (2, 2, 16, 17, 1)])
def test_shapes(shape):
    n, c, t, v, m = shape
    model = DSTE(frames=t, joints=v, persons=m, channels=c, **SMALL).eval()
    x = torch.randn(shape)
    y_t, y_s = model(x)
    assert y_t.shape == (n, t, 32) and y_s.shape == (n, m * v, 32)
    assert model.encode(x).shape == (n, 64) == (n, model.out_dim)
    assert model.encode_dense(x).shape == (n, t, 64)
    assert model.encode_dense(x, dense_spatial="none").shape == (n, t, 32)


def test_encode_is_max_pool_of_both_streams_and_dense_pools_tokens():
    model = DSTE(frames=16, joints=5, persons=2, **SMALL).eval()
    x = torch.randn(3, 3, 16, 5, 2)
    y_t, y_s = model(x)
    torch.testing.assert_close(model.encode(x), torch.cat([y_t.max(1).values, y_s.max(1).values], 1))
    dense = model.encode_dense(x)
    torch.testing.assert_close(dense[..., :32], y_t)
    # 10 spatial tokens resampled to 16 positions: position 0 averages token 0 only
    torch.testing.assert_close(dense[:, 0, 32:], y_s[:, 0])
    with pytest.raises(ValueError, match="pool_tokens"):
        model.encode_dense(x, dense_spatial="bogus")


def test_paper_size_parameter_counts():
    with torch.device("meta"):
        model = DSTE()
    assert count(model) == 57_137_368
    assert count(model.embed.temporal) == 1_206_272
    assert count(model.embed.spatial) == 1_249_280
    assert count(model.t_layers[0]) == 13_659_264
    assert count(model.s_layers[0]) == 13_656_044
    assert len(model.t_layers) == len(model.s_layers) == 2


def test_attention_is_shared_and_stored_once():
    layer = DSTLayer(seq_len=8, dim=16, heads=1, alpha=0.5, gap=4, kernel_size=1, mlp_hidden=32, drop_path=0.0)
    keys = layer.state_dict().keys()
    assert {k for k in keys if "attn" in k} == {
        "attn.in_proj_weight", "attn.in_proj_bias", "attn.out_proj.weight", "attn.out_proj.bias"}
    # changing the one attention changes both branches
    x = torch.randn(2, 8, 16)
    before_ca, before_dsa = layer.ca(x, layer.attn), layer.dsa(x, layer.attn)
    with torch.no_grad():
        layer.attn.out_proj.weight.mul_(3.0)
    assert not torch.allclose(layer.ca(x, layer.attn), before_ca)
    assert not torch.allclose(layer.dsa(x, layer.attn), before_dsa)


def test_layers_and_other_sizes_configurable():
    model = DSTE(frames=20, joints=25, persons=1, hidden=24, heads=3, layers=3, gap=3, kernel_size=3,
                 mlp_ratio=1.5, t_pe_max_len=20).eval()
    assert len(model.t_layers) == 3 and model.t_layers[0].ca.mlp.fc1.out_features == 36
    assert model.temporal_pe.pe.shape == (1, 20, 24) and model.spatial_pe.shape == (1, 25, 24)
    assert model(torch.randn(2, 3, 20, 25, 1))[0].shape == (2, 20, 24)
    rebuilt = DSTE(**model.config())
    rebuilt.load_state_dict(model.state_dict())


def test_rejects_bad_input_and_sizes():
    model = DSTE(frames=16, joints=5, persons=1, **SMALL)
    with pytest.raises(ValueError, match=r"\(N, 3, 16, 5, 1\)"):
        model(torch.randn(2, 3, 32, 5, 1))
    with pytest.raises(ValueError, match="t_pe_max_len"):
        DSTE(frames=300, **SMALL)


def test_drop_path_only_in_training():
    torch.manual_seed(0)
    model = DSTE(frames=8, joints=4, persons=1, hidden=16, drop_path=0.5)
    x = torch.randn(4, 3, 8, 4, 1)
    model.eval()
    torch.testing.assert_close(model(x)[0], model(x)[0])
    model.train()
    assert not torch.allclose(model(x)[0], model(x)[0])
    no_drop = DSTE(frames=8, joints=4, persons=1, hidden=16, drop_path=0.0)
    torch.testing.assert_close(no_drop.train()(x)[0], no_drop.eval()(x)[0])


def test_official_initialisation():
    torch.manual_seed(0)
    model = DSTE(frames=16, joints=25, persons=2, hidden=128)
    linear = model.t_layers[0].ca.mlp.fc1
    assert abs(linear.weight.std().item() - 0.02) < 0.002 and linear.bias.abs().max() == 0
    out_proj = model.t_layers[0].attn.out_proj
    assert abs(out_proj.weight.std().item() - 0.02) < 0.002 and out_proj.bias.abs().max() == 0
    norm = model.s_layers[1].dsa.norm2
    assert torch.all(norm.weight == 1) and torch.all(norm.bias == 0)
    assert abs(model.spatial_pe.std().item() - 0.02) < 0.002
    # the packed in_proj keeps PyTorch's xavier-uniform default (std ~ sqrt(2 / (d + 3d)) = 0.0625)
    assert model.t_layers[0].attn.in_proj_weight.std().item() > 0.05


def test_backward_reaches_every_parameter():
    model = DSTE(frames=8, joints=4, persons=2, hidden=16).train()
    model.encode(torch.randn(3, 3, 8, 4, 2)).sum().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert missing == []


@pytest.mark.parametrize("heads", [1, 2])
def test_self_attention_equals_multihead_attention(heads):
    """The layers' own self-attention path is nn.MultiheadAttention's math, forward and backward."""
    from skelrep.methods.usdrl.dste import _self_attention

    torch.manual_seed(0)
    attn = nn.MultiheadAttention(16, heads, dropout=0.0, batch_first=True)
    nn.init.normal_(attn.in_proj_bias)
    x = torch.randn(3, 7, 16, requires_grad=True)
    ours = _self_attention(attn, x)
    grads = torch.autograd.grad(ours.square().sum(), [x, *attn.parameters()])
    want = attn(x, x, x, need_weights=False)[0]
    want_grads = torch.autograd.grad(want.square().sum(), [x, *attn.parameters()])
    torch.testing.assert_close(ours, want, rtol=1e-5, atol=1e-6)
    for got, expected in zip(grads, want_grads, strict=True):
        torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("kernel_size", [1, 3])
def test_convolutional_attention_conv_is_the_conv1d(kernel_size):
    """Kernel 1 runs as a per-token linear map on the Conv1d's weights: the same as the Conv1d."""
    from skelrep.methods.usdrl.dste import ConvolutionalAttention

    torch.manual_seed(0)
    ca = ConvolutionalAttention(16, 32, kernel_size, 0.0)
    x = torch.randn(2, 9, 16)
    torch.testing.assert_close(ca._conv(x), ca.conv(x.transpose(1, 2)).transpose(1, 2), rtol=1e-5, atol=1e-6)


def test_drop_path_add_is_residual_plus_drop_path():
    from skelrep.methods.usdrl.backbone import DropPath

    drop = DropPath(0.5).train()
    residual, x = torch.randn(8, 3, 4), torch.randn(8, 3, 4)
    torch.manual_seed(1)
    got = drop.add(residual, x)
    torch.manual_seed(1)
    torch.testing.assert_close(got, residual + drop(x))  # the same mask draw
    torch.testing.assert_close(drop.eval().add(residual, x), residual + x, rtol=0, atol=0)
