"""Every method on any skeleton: joint count, person count, 2-D or 3-D and the bone tree come
from the data's layout; the encoder file records what the evaluation stages need to rebuild it."""

from __future__ import annotations

import pytest
import torch

from skelrep.data.augment import AugmentConfig, scaled_joint_count
from skelrep.data.layout import load_layout
from skelrep.methods import build_encoder
from skelrep.methods.isc.agcn import agcn_adjacency
from skelrep.models.encoder_file import load_encoder_file, save_encoder
from skelrep.models.modalities import bone
from skelrep.training.distributed import DistInfo

from ..training.test_pretrain import tiny_usdrl
from .isc.test_method import tiny_isc
from .umurl.test_method import tiny_umurl

# 2-D with two persons, 3-D with one, and a 9-joint rig with fewer joints than corrupt_joints (15)
RIG = {"name": "rig9", "channels": 3, "center": "chest", "align_x": ["r_sh", "l_sh"],
       "joints": [{"name": "pelvis", "parent": None}, {"name": "chest", "parent": "pelvis"},
                  {"name": "head", "parent": "chest"}, {"name": "l_sh", "parent": "chest"},
                  {"name": "l_el", "parent": "l_sh"}, {"name": "l_wr", "parent": "l_el"},
                  {"name": "r_sh", "parent": "chest"}, {"name": "r_el", "parent": "r_sh"},
                  {"name": "r_wr", "parent": "r_el"}]}
LAYOUTS = {"coco17x2": {"base": "coco17", "persons": 2}, "kinect_v1_20": "kinect_v1_20", "rig9": RIG}
METHODS = {"usdrl": lambda: tiny_usdrl(modality="bone"), "umurl": tiny_umurl, "isc": tiny_isc}


def _clips(layout, n=8, t_max=24, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, layout.channels, t_max, layout.num_joints, layout.persons, generator=g)
    return x, torch.randint(16, t_max + 1, (n,), generator=g)


@pytest.mark.parametrize("layout_name", sorted(LAYOUTS))
@pytest.mark.parametrize("method_name", sorted(METHODS))
def test_method_trains_and_round_trips_on_any_layout(tmp_path, method_name, layout_name):
    layout = load_layout(LAYOUTS[layout_name])
    method = METHODS[method_name]()
    shape = (layout.channels, layout.num_joints, layout.persons)
    model = method.build_model(*shape, parents=layout.parents)
    x, num_frames = _clips(layout)
    terms = method.training_loss(model, x, num_frames, torch.Generator().manual_seed(0), DistInfo())
    assert torch.isfinite(terms["total"])
    terms["total"].backward()

    save_encoder(tmp_path / "encoder.pt", **method.encoder_payload(model.eval()))
    encoder = build_encoder(load_encoder_file(tmp_path / "encoder.pt"))
    clip = x[:3, :, :16]
    with torch.no_grad():
        features = encoder.features(clip)
    assert features.shape == (3, encoder.feature_dim) and torch.isfinite(features).all()


@pytest.mark.parametrize("method_name", ["usdrl", "umurl"])
def test_encoder_file_records_the_layouts_bone_tree(tmp_path, method_name):
    layout = load_layout("kinect_v1_20")
    method = METHODS[method_name]()
    model = method.build_model(3, 20, 1, parents=layout.parents)
    save_encoder(tmp_path / "encoder.pt", **method.encoder_payload(model))
    encoder = build_encoder(load_encoder_file(tmp_path / "encoder.pt"))
    rebuilt = encoder.parents if method_name == "usdrl" else encoder.backbone.parents
    assert rebuilt == layout.parents


def test_usdrl_bone_stream_uses_the_layouts_tree():
    layout = load_layout("kinect_v1_20")
    model = tiny_usdrl(modality="bone").build_model(3, 20, 1, parents=layout.parents).net.eval()
    x = torch.randn(2, 3, 16, 20, 1)
    inputs = []
    model.backbone.register_forward_hook(lambda module, args, out: inputs.append(args[0]))
    with torch.no_grad():
        model(x)
    assert torch.equal(inputs[0], bone(x, layout.parents))


def test_isc_graph_encoder_uses_the_layouts_bones():
    layout = load_layout("kinect_v1_20")
    model = tiny_isc().build_model(3, 20, 1, parents=layout.parents)
    agcn = model.query_branch("graph").encoder
    assert sorted(map(tuple, agcn.edges)) == sorted(layout.edges)
    assert torch.equal(agcn.l1.gcn1.A, agcn_adjacency(20, layout.edges))


@pytest.mark.parametrize("method_name", sorted(METHODS))
def test_a_non_ntu_skeleton_needs_its_bone_tree(method_name):
    method = METHODS[method_name]()
    with pytest.raises(ValueError, match="parents must be given for a 20-joint skeleton"):
        method.build_model(3, 20, 1)


def test_corrupt_joints_keeps_ntus_share_of_the_body():
    assert [scaled_joint_count(15, v) for v in (25, 20, 17, 33, 9)] == [15, 12, 10, 20, 5]
    assert scaled_joint_count(0, 17) == 0 and scaled_joint_count(25, 9) == 9
    # 9 joints, corrupt_joints 15: 5 joints zeroed (p_zero=1, p_corrupt=1), every frame and person
    aug = AugmentConfig(corrupt_joints=15, p_zero=1.0, p_corrupt=1.0, min_crop=8, views=1)
    x = torch.rand(4, 3, 8, 9, 2) + 1.0
    (view,) = aug.make_views(x, torch.full((4,), 8), 8, generator=torch.Generator().manual_seed(0))
    zeroed = (view == 0).all(dim=(1, 2, 4))  # (N, V)
    assert zeroed.sum(1).tolist() == [5, 5, 5, 5]
