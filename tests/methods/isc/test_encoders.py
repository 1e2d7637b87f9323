"""ISC encoders: the causal GRU against the official frame-by-frame loop, causality,
paper-size parameter counts (of the official modules), the AGCN adjacency, configurable sizes, encoder files."""

import pytest
import torch
from torch import nn

from skelrep.methods.isc.agcn import IscAGCN, agcn_adjacency
from skelrep.methods.isc.gru import IscGRU, map_official_gru
from skelrep.methods.isc.hcn import IscHCN
from skelrep.methods.isc.heads import ProjectionHead
from skelrep.methods.isc.moco import InterSkeletonMoCo, load_isc_encoder, seq_tokens
from skelrep.models.encoder_file import save_encoder
from skelrep.skeleton import NTU_EDGES


def _count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _official_stepwise(gru: nn.GRU, x: torch.Tensor) -> torch.Tensor:
    """The official BIGRU forward: one length-1 call per frame, carrying the hidden state."""
    outputs, hidden = [], None
    for t in range(x.shape[1]):
        out, hidden = gru(x[:, t:t + 1], hidden)
        outputs.append(out)
    return torch.cat(outputs, dim=1)


@torch.no_grad()
def test_stacked_gru_equals_official_frame_loop():
    torch.manual_seed(0)
    official = nn.GRU(12, 6, num_layers=3, bidirectional=True, batch_first=True)
    ours = IscGRU(12, 6, 3, "causal_official")
    ours.load_state_dict(map_official_gru({f"encoder.gru.{k}": v for k, v in official.state_dict().items()}))
    x = torch.randn(3, 10, 12)
    want = _official_stepwise(official, x)
    assert torch.allclose(ours.frame_features(x), want, atol=1e-6)
    assert torch.allclose(ours(x), want[:, -1], atol=1e-6)


@torch.no_grad()
@pytest.mark.parametrize("mode, causal", [("causal_official", True), ("bidirectional", False)])
def test_gru_causality(mode, causal):
    torch.manual_seed(0)
    gru = IscGRU(12, 6, 2, mode)
    x = torch.randn(2, 10, 12)
    changed = x.clone()
    changed[:, 5:] = torch.randn(2, 5, 12)
    a, b = gru.frame_features(x), gru.frame_features(changed)
    assert a.shape == (2, 10, 12)
    assert torch.equal(a[:, :5], b[:, :5]) == causal


def test_gru_xavier_init_on_2d_weights():
    torch.manual_seed(0)
    gru = IscGRU(150, 64, 2)
    w = gru.layers[1].reverse_gru.weight_ih_l0  # (3*64, 128): Xavier bound sqrt(6 / (128 + 192))
    bound = (6 / (128 + 192)) ** 0.5
    assert w.abs().max() <= bound and w.abs().max() > 0.9 * bound
    assert gru.layers[0].forward_gru.bias_ih_l0.abs().max() <= 64 ** -0.5  # PyTorch default kept


def test_paper_size_parameter_counts():
    with torch.device("meta"):
        gru, agcn, hcn = IscGRU(), IscAGCN(), IscHCN()
        heads = {"gru_fc": ProjectionHead(2048, 128, mlp=False), "gru_mlp": ProjectionHead(2048, 128, mlp=True),
                 "agcn_fc": ProjectionHead(256, 128, mlp=False, kind="graph"),
                 "hcn_fc": ProjectionHead(4096, 128, mlp=False, kind="image")}
        moco = InterSkeletonMoCo("seq_graph", IscGRU(), IscAGCN(), mlp=True)
    assert _count(gru) == 44_998_656
    assert _count(heads["gru_fc"]) == 262_272 and _count(heads["gru_mlp"]) == 4_458_624
    assert _count(agcn) == 3_454_090 and _count(agcn) + _count(heads["agcn_fc"]) == 3_486_986
    assert _count(hcn) == 519_424 and _count(hcn) + _count(heads["hcn_fc"]) == 1_043_840
    assert (gru.feature_dim, agcn.feature_dim, hcn.feature_dim) == (2048, 256, 4096)
    # seq+graph with MLP heads: 106.0 M in total, 53.0 M trainable (the query side); queues 2 x 16384 x 128
    trainable = sum(p.numel() for p in moco.parameters() if p.requires_grad)
    assert round(trainable / 1e6, 1) == 53.0 and round(_count(moco) / 1e6, 1) == 106.0
    assert moco.queue_s1.shape == moco.queue_s2.shape == (16384, 128)


def test_agcn_adjacency_spatial_partition():
    a = agcn_adjacency(3, [(1, 0), (2, 1)])  # chain 2 -> 1 -> 0 (child, parent)
    assert torch.equal(a[0], torch.eye(3))
    # inward: a 1 at [parent, child], columns normalised
    assert torch.equal(a[1], torch.tensor([[0., 1., 0.], [0., 0., 1.], [0., 0., 0.]]))
    # outward: a 1 at [child, parent]; joint 1 has one child
    assert torch.equal(a[2], torch.tensor([[0., 0., 0.], [1., 0., 0.], [0., 1., 0.]]))
    ntu = agcn_adjacency(25, NTU_EDGES)
    assert ntu.shape == (3, 25, 25)
    for k in (1, 2):  # every non-empty column sums to one
        sums = ntu[k].sum(0)
        assert torch.allclose(sums[sums > 0], torch.ones(int((sums > 0).sum())))
    with pytest.raises(ValueError, match="outside"):
        agcn_adjacency(3, [(3, 0)])


def test_agcn_adjacency_is_a_device_following_buffer():
    agcn = IscAGCN(num_joints=5, num_persons=1, base_channels=8, edges=[(1, 0), (2, 1), (3, 2), (4, 3)])
    assert not any(name.endswith(".A") for name in agcn.state_dict())  # rebuilt from the config
    assert agcn.to("meta").l1.gcn1.A.device.type == "meta"


@torch.no_grad()
def test_configurable_sizes():
    torch.manual_seed(0)
    agcn = IscAGCN(num_joints=5, num_persons=1, in_channels=2, base_channels=8,
                   edges=[(1, 0), (2, 1), (3, 2), (4, 3)]).eval()
    assert agcn(torch.randn(2, 2, 12, 5, 1)).shape == (2, 32) == (2, agcn.feature_dim)
    hcn = IscHCN(in_channels=3, num_joints=10, num_persons=3, width=8, frames=32).eval()
    assert hcn(torch.randn(2, 3, 32, 10, 3)).shape == (2, 4 * 8 * 2 * 2) == (2, hcn.feature_dim)
    with pytest.raises(ValueError, match="16 frames"):
        IscHCN(frames=8)


@torch.no_grad()
def test_encoder_file_round_trip(tmp_path):
    torch.manual_seed(0)
    moco = InterSkeletonMoCo("seq_graph", IscGRU(150, 8, 2), IscAGCN(base_channels=4), k=16, dim=8).eval()
    clip = torch.randn(2, 3, 16, 25, 2)
    for kind in ("seq", "graph"):
        payload = moco.encoder_payload(kind, frames=16)
        save_encoder(tmp_path / f"{kind}.pt", **payload)
        encoder = load_isc_encoder(tmp_path / f"{kind}.pt").eval()
        assert encoder.frames == 16
        assert torch.equal(encoder.features(clip), moco.query_branch(kind).features(clip))
    seq = load_isc_encoder(tmp_path / "seq.pt")
    dense = seq.dense_features(clip)
    assert dense.shape == (2, 16, seq.dense_dim) == (2, 16, 16)
    assert torch.equal(dense[:, -1], seq.features(clip))
    assert torch.equal(dense, moco.encoder_q.encoder.frame_features(seq_tokens(clip)))
    with pytest.raises(ValueError, match="only for the ISC GRU"):
        load_isc_encoder(tmp_path / "graph.pt").dense_features(clip)
