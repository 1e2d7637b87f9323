"""Skeleton layouts: built-ins, loading from YAML / mappings, validation errors, 2-D normalisation."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from skelrep.data.layout import BUILTIN_LAYOUTS, SkeletonLayout, load_layout, pre_normalize_layout
from skelrep.data.normalize import NORMALISATIONS, pre_normalize
from skelrep.errors import DataError, ParamsError
from skelrep.schema import validate
from skelrep.skeleton import (
    NTU_BONE_PAIRS_1BASED,
    NTU_EDGES,
    NTU_JOINT_NAMES,
    NTU_NUM_JOINTS,
    NTU_PARENTS,
    SHOULDER_LEFT,
    SHOULDER_RIGHT,
    SPINE_BASE,
    SPINE_MID,
)


def _chain(parents, **kw) -> SkeletonLayout:
    names = tuple(f"j{i}" for i in range(len(parents)))
    fields = dict(name="t", joint_names=names, parents=tuple(parents), center_joint=0,
                  align_x_pair=(0, 1), align_z_pair=None, persons=1, channels=3)
    fields.update(kw)
    return SkeletonLayout(**fields)


def _spec(**kw) -> dict:
    spec = {"name": "rig", "joints": [{"name": "pelvis", "parent": None},
                                      {"name": "spine", "parent": "pelvis"},
                                      {"name": "l_sh", "parent": "spine"},
                                      {"name": "r_sh", "parent": "spine"}],
            "center": "spine", "align_x": ["r_sh", "l_sh"], "align_z": ["pelvis", "spine"],
            "persons": 2, "channels": 3}
    spec.update(kw)
    return spec


# --------------------------------------------------------------------------- built-ins


@pytest.mark.parametrize("name", BUILTIN_LAYOUTS)
def test_builtin_layouts_validate_and_round_trip(name):
    layout = load_layout(name)
    assert layout.validate() is layout
    assert layout.name == name
    assert len(layout.edges) == layout.num_joints - len(layout.roots)
    assert load_layout(layout.to_dict()) == layout


# NTU's bone list as CTR-GCN, MS-G3D, ISC, UmURL and USDRL write it out (child, parent), 1-based
REFERENCE_NTU_BONES = (
    (1, 2), (2, 21), (3, 21), (4, 3), (5, 21), (6, 5), (7, 6), (8, 7), (9, 21), (10, 9),
    (11, 10), (12, 11), (13, 1), (14, 13), (15, 14), (16, 15), (17, 1), (18, 17), (19, 18),
    (20, 19), (21, 21), (22, 23), (23, 8), (24, 25), (25, 12),
)


def test_the_ntu_skeleton_constants_are_the_reference_bone_list():
    """skelrep.skeleton derives from ntu25.yaml, the one definition: it must give the list the
    reference code bases hard-code, and the normalisation joints 2s-AGCN uses."""
    assert NTU_BONE_PAIRS_1BASED == REFERENCE_NTU_BONES
    assert NTU_NUM_JOINTS == 25 and NTU_JOINT_NAMES[20] == "SpineShoulder"
    assert (SPINE_BASE, SPINE_MID, SHOULDER_LEFT, SHOULDER_RIGHT) == (0, 1, 4, 8)


def test_ntu25_is_exactly_the_skeleton_module():
    layout = load_layout("ntu25")
    assert layout.parents == NTU_PARENTS
    assert layout.joint_names == NTU_JOINT_NAMES
    assert layout.bone_pairs == tuple((c - 1, p - 1) for c, p in NTU_BONE_PAIRS_1BASED)
    assert layout.edges == NTU_EDGES
    assert layout.center_joint == SPINE_MID
    assert layout.align_x_pair == (SHOULDER_RIGHT, SHOULDER_LEFT)
    assert layout.align_z_pair == (SPINE_BASE, SPINE_MID)
    assert (layout.persons, layout.channels) == (2, 3)


def test_kinect_v1_tree():
    layout = load_layout("kinect_v1_20")
    assert layout.num_joints == 20 and layout.channels == 3
    assert layout.joint_names[:4] == ("hip_center", "spine", "shoulder_center", "head")
    assert layout.roots == (0,)
    parent = {layout.joint_names[c]: layout.joint_names[p] for c, p in layout.edges}
    assert parent["shoulder_left"] == parent["shoulder_right"] == parent["head"] == "shoulder_center"
    assert parent["hip_left"] == parent["hip_right"] == "hip_center"
    assert parent["hand_right"] == "wrist_right" and parent["foot_left"] == "ankle_left"
    # the normalisation joints sit at NTU's indices
    assert (layout.center_joint, layout.align_x_pair, layout.align_z_pair) == (1, (8, 4), (0, 1))


def test_coco17_is_2d_tree_without_z_alignment():
    layout = load_layout("coco17")
    assert layout.num_joints == 17 and layout.channels == 2 and layout.align_z_pair is None
    assert layout.roots == (layout.joint_index("nose"),)
    assert layout.joint_names[layout.center_joint] == "left_shoulder"
    assert layout.parents[layout.joint_index("left_ankle")] == layout.joint_index("left_knee")


def test_parents_drive_the_bone_modality():
    torch = pytest.importorskip("torch")
    from skelrep.models.modalities import bone

    layout = load_layout("coco17")
    x = torch.randn(2, 2, 5, layout.num_joints, 1)
    b = bone(x, layout.parents)
    assert b.shape == x.shape
    assert torch.all(b[:, :, :, layout.roots[0]] == 0)


# --------------------------------------------------------------------------- loading


def test_load_from_mapping_by_name_and_index():
    spec = _spec()
    spec["joints"][3]["parent"] = 1  # parents may be 0-based indices too
    layout = load_layout(spec)
    assert layout.parents == (0, 0, 1, 1)
    assert (layout.center_joint, layout.align_x_pair, layout.align_z_pair) == (1, (3, 2), (0, 1))
    assert layout.persons == 2


def test_mapping_defaults_and_base_overrides():
    spec = _spec()
    del spec["persons"], spec["align_x"], spec["align_z"]
    layout = load_layout(spec)
    assert (layout.persons, layout.align_x_pair, layout.align_z_pair) == (1, None, None)

    coco2 = load_layout({"base": "coco17", "persons": 2, "center": "left_hip"})
    assert coco2.persons == 2 and coco2.joint_names[coco2.center_joint] == "left_hip"
    assert coco2.parents == load_layout("coco17").parents
    with pytest.raises(ParamsError, match="cannot be changed on a built-in base") as e:
        load_layout({"base": "coco17", "channels": 3})
    assert e.value.key == "layout.channels"


def test_load_from_yaml_file(tmp_path):
    import yaml

    path = tmp_path / "rig.yaml"
    path.write_text(yaml.safe_dump(_spec()))
    assert load_layout(str(path)) == load_layout(_spec())
    assert load_layout(path).name == "rig"

    bad = _spec()
    bad["joints"][2]["parent"] = "nowhere"
    path.write_text(yaml.safe_dump(bad))
    with pytest.raises(DataError, match=r"rig\.yaml: joints\[2\]\.parent: parent 'nowhere' is not a joint"):
        load_layout(str(path))
    path.write_text("name: [unclosed")
    with pytest.raises(DataError, match="not valid YAML"):
        load_layout(path)
    with pytest.raises(ParamsError, match="not found"):
        load_layout(str(tmp_path / "missing.yaml"))


def test_unknown_layout_name_lists_builtins():
    with pytest.raises(ParamsError, match="unknown layout 'ntu26'.*ntu25, kinect_v1_20, coco17"):
        load_layout("ntu26")


def test_params_validator_names_the_dotted_key():
    from skelrep.data.layout import layout_spec

    bad = _spec()
    bad["joints"][3]["parent"] = "ghost"
    with pytest.raises(ParamsError) as e:
        validate({"layout": bad}, {"layout": layout_spec}, "generic")
    assert e.value.key == "generic.layout.joints[3].parent"
    assert validate({"layout": "coco17"}, {"layout": layout_spec}, "generic")["layout"].name == "coco17"


# --------------------------------------------------------------------------- validation


def test_parent_out_of_range():
    with pytest.raises(ParamsError, match=r"joint 2 \('j2'\) has parent 9, which does not exist") as e:
        _chain([0, 0, 9]).validate()
    assert e.value.key == "layout.parents[2]"


def test_cycle_names_its_joints():
    cycle = r"cycle \(joint -> its parent\): j1 \(1\) -> j3 \(3\) -> j2 \(2\) -> j1 \(1\)"
    with pytest.raises(ParamsError, match=cycle) as e:
        _chain([0, 3, 1, 2]).validate()
    assert e.value.key == "layout.parents[1]"


def test_no_root():
    with pytest.raises(ParamsError, match="no root joint.*cycle") as e:
        _chain([1, 0]).validate()
    assert e.value.key == "layout.parents"


def test_out_of_range_center_and_alignment_joints():
    with pytest.raises(ParamsError, match="center joint 7 does not exist") as e:
        _chain([0, 0], center_joint=7).validate()
    assert e.value.key == "layout.center_joint"
    with pytest.raises(ParamsError, match="alignment joint 5 does not exist") as e:
        _chain([0, 0], align_x_pair=(0, 5)).validate()
    assert e.value.key == "layout.align_x_pair[1]"
    with pytest.raises(ParamsError, match="two different joints") as e:
        _chain([0, 0], align_z_pair=(1, 1)).validate()
    assert e.value.key == "layout.align_z_pair"
    with pytest.raises(ParamsError, match="'hip' is not a joint name") as e:
        load_layout(_spec(center="hip"))
    assert e.value.key == "layout.center"


def test_duplicate_joint_names():
    with pytest.raises(ParamsError, match="duplicate joint name 'j0' \\(also joint 0\\)") as e:
        _chain([0, 0], joint_names=("j0", "j0")).validate()
    assert e.value.key == "layout.joint_names[1]"
    spec = _spec()
    spec["joints"][3]["name"] = "l_sh"
    with pytest.raises(ParamsError, match="duplicate joint name 'l_sh'") as e:
        load_layout(spec, key="generic.layout")
    assert e.value.key == "generic.layout.joints[3].name"


def test_bad_channels_persons_and_2d_z_alignment():
    with pytest.raises(ParamsError, match="allowed: 2 .* or 3") as e:
        _chain([0, 0], channels=4).validate()
    assert e.value.key == "layout.channels"
    with pytest.raises(ParamsError, match="persons|integer in") as e:
        _chain([0, 0], persons=0).validate()
    assert e.value.key == "layout.persons"
    with pytest.raises(ParamsError, match="2-D layout") as e:
        _chain([0, 0], channels=2, align_z_pair=(0, 1)).validate()
    assert e.value.key == "layout.align_z_pair"
    with pytest.raises(ParamsError, match="3 entries for 2 joints"):
        _chain([0, 0, 0], joint_names=("a", "b")).validate()


def test_spec_shape_errors():
    with pytest.raises(ParamsError, match="unknown key") as e:
        load_layout(_spec(colour="red"))
    assert e.value.key == "layout.colour"
    spec = _spec()
    del spec["center"]
    with pytest.raises(ParamsError, match="missing") as e:
        load_layout(spec)
    assert e.value.key == "layout.center"
    with pytest.raises(ParamsError, match="exactly the keys name and parent") as e:
        load_layout(_spec(joints=[{"name": "a"}]))
    assert e.value.key == "layout.joints[0]"


# --------------------------------------------------------------------------- normalisation


def test_pre_normalize_layout_matches_pre_normalize_for_ntu():
    layout = load_layout("ntu25")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 10, 25, 2)).astype(np.float32)
    for flags in NORMALISATIONS.values():
        np.testing.assert_array_equal(pre_normalize_layout(x, layout, **flags), pre_normalize(x, **flags))


def test_pre_normalize_layout_2d_rotates_in_plane():
    layout = load_layout("coco17")
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 6, 17, 1)).astype(np.float32) + 3
    out = pre_normalize_layout(x, layout, z_align=False, x_align=True)
    assert out.shape == x.shape
    left, right = layout.align_x_pair
    vec = out[:, 0, left, 0] - out[:, 0, right, 0]
    assert vec[0] > 0 and abs(vec[1]) < 1e-5
    np.testing.assert_allclose(out[:, :, layout.center_joint, 0], 0, atol=1e-6)
    # rotation and centring keep distances
    d_in = np.linalg.norm(x[:, 2, 3, 0] - x[:, 2, 9, 0])
    np.testing.assert_allclose(np.linalg.norm(out[:, 2, 3, 0] - out[:, 2, 9, 0]), d_in, rtol=1e-5)
    with pytest.raises(ParamsError, match="z-alignment needs align_z"):
        pre_normalize_layout(x, layout, z_align=True)
    no_x = dataclasses.replace(layout, align_x_pair=None)
    with pytest.raises(ParamsError, match="x-alignment needs align_x"):
        pre_normalize_layout(x, no_x, z_align=False, x_align=True)
