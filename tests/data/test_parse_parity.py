"""The vectorised NTU and PKU-MMD readers against the line-by-line readers they fall back to
(``ntu._parse_lines``, ``pku._parse_lines``, the readers before the vectorised pass, tested on their
own in test_ntu.py / test_pku.py): same arrays, bit for bit, for every file the reference accepts;
the same DataError (message and file:line) for every file it rejects; and the vectorised pass, not
its fallback, reads the well-formed files."""

from __future__ import annotations

import numpy as np
import pytest

from skelrep.data import ntu, pku
from skelrep.data.synthetic.ntu_writer import SyntheticNTUConfig, format_skeleton, render_sample
from skelrep.data.synthetic.pku_writer import format_skeleton_txt
from skelrep.errors import DataError
from tests.data.test_ntu import BIG_ID, _bad_cases, body_joints, fixture_name, make_text, one_body_text

ARRAYS = ("body_count", "body_info", "joints")
# the references, bound at import: no_fallback below replaces the modules' attributes
parse_skeleton_reference, parse_pku_skeleton_reference = ntu._parse_lines, pku._parse_lines


def assert_same_skeleton(got: ntu.NTUSkeleton, ref: ntu.NTUSkeleton, xyz_only: bool = False) -> None:
    assert got.num_frames == ref.num_frames
    for name in ARRAYS:
        a, b = getattr(got, name), getattr(ref, name)
        if xyz_only and name == "joints":
            b = b[..., :3]
        assert a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes(), name
    assert got.body_id.dtype == ref.body_id.dtype and got.body_id.tolist() == ref.body_id.tolist()


def outcome(parse, data, source):
    """The parsed value, or the error's (type, text, line)."""
    try:
        return parse(data, source)
    except DataError as exc:
        return ("error", str(exc), exc.line)


def assert_same_outcome(data, source="f.skeleton") -> None:
    ref = outcome(parse_skeleton_reference, data, source)
    for xyz_only in (False, True):
        got = outcome(lambda d, s, x=xyz_only: ntu.parse_skeleton(d, s, xyz_only=x), data, source)
        if isinstance(ref, tuple):
            assert got == ref
        else:
            assert not isinstance(got, tuple), got
            assert_same_skeleton(got, ref, xyz_only)


@pytest.fixture
def no_fallback(monkeypatch):
    """Fail if the line-by-line readers run: the vectorised pass must read these files."""
    def fail(*args, **kwargs):
        raise AssertionError("the line-by-line fallback ran")
    monkeypatch.setattr(ntu, "_parse_lines", fail)
    monkeypatch.setattr(pku, "_parse_lines", fail)


def synthetic_files() -> list[bytes]:
    every_artefact = SyntheticNTUConfig(crlf_fraction=1.0, empty_frame_fraction=1.0, noise_body_fraction=1.0)
    plain = SyntheticNTUConfig()
    samples = [render_sample(3, 1, 2, 1, 1, a, every_artefact) for a in (4, 52)]
    samples += [render_sample(seed, 2, camera, 4, 2, a, plain)
                for seed, camera, a in ((0, 1, 7), (1, 3, 58), (2, 2, 30))]
    return [format_skeleton(s) for s in samples]


# --------------------------------------------------------------------------- same arrays


def test_synthetic_files_equal_reference(no_fallback):
    for data in synthetic_files():
        ref = parse_skeleton_reference(data, "s")
        assert_same_skeleton(ntu.parse_skeleton(data, "s"), ref)
        assert_same_skeleton(ntu.parse_skeleton(data.decode(), "s", xyz_only=True), ref, xyz_only=True)


@pytest.mark.parametrize("action", range(1, 6))
def test_fixture_files_equal_reference(ntu_fixture, no_fallback, action):
    data = ntu_fixture(fixture_name(action)).read_bytes()
    for variant in (data, data.replace(b"\n", b"\r\n"), data + b"\n \n\t\n"):
        ref = parse_skeleton_reference(variant, "f")
        assert_same_skeleton(ntu.parse_skeleton(variant, "f"), ref)
        assert_same_skeleton(ntu.parse_skeleton(variant, "f", xyz_only=True), ref, xyz_only=True)


def test_empty_frames_and_four_bodies_equal_reference(no_fallback):
    frames = [[], [("11", body_joints(0)), (BIG_ID, body_joints(1))], [], [],
              [(str(i), body_joints(10 + i)) for i in range(4)], []]
    for newline in ("\n", "\r\n"):
        data = make_text(frames, newline=newline).encode()
        skel = ntu.parse_skeleton(data, "e")
        assert skel.body_count.tolist() == [0, 2, 0, 0, 4, 0]
        assert_same_skeleton(skel, parse_skeleton_reference(data, "e"))


def test_other_spellings_take_the_line_reader():
    """Spellings float() accepts but the vectorised pass does not read ('.5', '1.', '1_0', non-ASCII
    digits, other whitespace): same result as the reference, through the fallback."""
    lines = one_body_text(2)
    fields = lines[5].split()
    for spelling in (".5", "1.", "-.25", "1_0", "\u0661\u0662", "1E5"):
        assert_same_outcome("\n".join(lines[:5] + [" ".join([spelling] + fields[1:])] + lines[6:]) + "\n")
    assert_same_outcome("\n".join(_edit(lines, 1, "+1")) + "\n")  # int() reads '+1'
    assert_same_outcome("\n".join(_edit(lines, 0, "0002")) + "\n")
    assert_same_outcome("\n".join(lines).replace(" ", "\x0b") + "\n")
    assert_same_outcome("\n".join(lines).replace(" ", "\u2003") + "\n")


def test_non_finite_beyond_float32_in_unread_fields():
    """xyz_only still rejects a joint field it does not keep when it overflows float32."""
    lines = one_body_text(1)
    fields = lines[5].split()
    for value in ("4e38", "1e39", "-3.5e+38", "1" * 40, "3.4e38"):
        assert_same_outcome("\n".join(lines[:5] + [" ".join(fields[:7] + [value] + fields[8:])] + lines[6:]))
    for value in ("1e300", "1" * 40):  # body info is float64: accepted
        assert_same_outcome("\n".join(lines[:2] + [f"7 0 1 2 0 3 0 {value} -0.25 2"] + lines[3:]))


# --------------------------------------------------------------------------- same errors


@pytest.mark.parametrize("case", sorted(_bad_cases()))
def test_existing_bad_cases_same_error(case):
    text, _ = _bad_cases()[case]
    assert_same_outcome(text.encode(), f"bad/{case}.skeleton")


def _edit(lines: list[str], index: int, text: str | None) -> list[str]:
    lines = list(lines)
    if text is None:
        del lines[index]
    else:
        lines[index] = text
    return lines


def _more_bad_cases() -> dict[str, tuple[str, int]]:
    lines = one_body_text(3)  # 1 + 3 * 28 = 85 lines
    fields = lines[20].split()
    join = "\n".join
    return {
        "bad_token_mid_file": (join(_edit(lines, 40, " ".join(fields[:6] + ["0.5x"] + fields[7:]))) + "\n", 41),
        "bad_token_crlf": ("\r\n".join(_edit(lines, 40, " ".join(fields[:6] + ["--1"] + fields[7:]))), 41),
        "truncated_mid_line": (join(lines)[:-25], 85),
        "truncated_after_body_line": (join(lines[:31]) + "\n", 32),
        "joint_count_24": (join(_edit(_edit(lines, 31, "24"), 32, None)) + "\n", 32),
        "joint_count_26": (join(_edit(lines, 59, "26")) + "\n", 60),
        "missing_joint_line": (join(_edit(lines, 70, None)) + "\n", 85),
        "extra_joint_line": (join(lines[:60] + [lines[60]] + lines[60:]) + "\n", 86),
        "frame_count_too_big": (join(_edit(lines, 0, "4")) + "\n", 86),
        "frame_count_too_small": (join(_edit(lines, 0, "2")) + "\n", 58),
        "body_count_2_for_1": (join(_edit(lines, 29, "2")) + "\n", 58),
        "body_count_word": (join(_edit(lines, 29, "one")) + "\n", 30),
        "two_tokens_count_line": (join(_edit(lines, 29, "1 1")) + "\n", 30),
        "nan_in_x": (join(_edit(lines, 60, " ".join(["nan"] + fields[1:]))) + "\n", 61),
        "inf_orientation": (join(_edit(lines, 61, " ".join(fields[:9] + ["-inf"] + fields[10:]))) + "\n", 62),
        "huge_x": (join(_edit(lines, 62, " ".join(["1e39"] + fields[1:]))) + "\n", 63),
        "blank_line_inside": (join(lines[:45] + [""] + lines[45:]) + "\n", None),
        "body_id_signed": (join(_edit(lines, 30, "+7 0 1 2 0 3 0 0.5 -0.25 2")) + "\n", 31),
        "body_id_decimal": (join(_edit(lines, 30, "7.5 0 1 2 0 3 0 0.5 -0.25 2")) + "\n", 31),
        "frame_count_leading_blank": ("\n" + join(lines) + "\n", 1),
    }


@pytest.mark.parametrize("case", sorted(_more_bad_cases()))
def test_more_bad_cases_same_error(case):
    text, line = _more_bad_cases()[case]
    source = f"bad/{case}.skeleton"
    ref = outcome(parse_skeleton_reference, text.encode(), source)
    assert isinstance(ref, tuple), "the reference accepts this case"
    if line is not None:
        assert ref[2] == line and ref[1].startswith(f"{source}:{line}: ")
    assert_same_outcome(text.encode(), source)


def test_random_edits_same_outcome():
    """Random token, line and count edits of a small file: the vectorised reader and the
    reference agree on every one (same arrays or the same error)."""
    rng = np.random.default_rng(0)
    frames = [[("5", body_joints(0))], [], [("5", body_joints(1)), ("9", body_joints(2))]]
    lines = make_text(frames).split("\n")[:-1]
    junk = ["x", "1.2.3", "-", ".", "1e", "+5", "-0", "007", "nan", "1e40", "3", "25", "0", "", "  ", "1 2",
            "\t4", "5.", ".5", "1E-3", "99999999999999999999", "\u00e9"]
    for _ in range(400):
        edited = list(lines)
        for _ in range(int(rng.integers(1, 3))):
            i = int(rng.integers(len(edited)))
            kind = rng.integers(4)
            if kind == 0:  # replace one token
                words = edited[i].split(" ")
                words[int(rng.integers(len(words)))] = str(rng.choice(junk))
                edited[i] = " ".join(words)
            elif kind == 1:
                del edited[i]
            elif kind == 2:
                edited.insert(i, str(rng.choice(junk)))
            else:
                edited[i] = str(rng.choice(junk))
        newline = "\r\n" if rng.random() < 0.3 else "\n"
        assert_same_outcome((newline.join(edited) + newline * int(rng.integers(0, 3))).encode(), "r.skeleton")


# --------------------------------------------------------------------------- PKU-MMD


def pku_outcomes(data):
    return (outcome(parse_pku_skeleton_reference, data, "v.txt"), outcome(pku.parse_pku_skeleton, data, "v.txt"))


def assert_same_pku(data) -> None:
    ref, got = pku_outcomes(data)
    if isinstance(ref, tuple):
        assert got == ref
    else:
        assert got.dtype == ref.dtype and got.shape == ref.shape and got.tobytes() == ref.tobytes()


def test_pku_equal_reference(pku_fixture, no_fallback):
    data = pku_fixture("A10N08-L.txt").read_bytes()
    for variant in (data, data.replace(b"\n", b"\r\n"), data + b"\n\n  \n", data.rstrip(b"\n")):
        assert_same_pku(variant)


def test_pku_synthetic_equal_reference(no_fallback):
    video = np.random.default_rng(0).normal(size=(40, 150))
    video[5:9, 75:] = 0
    assert_same_pku(format_skeleton_txt(video))


def test_pku_random_edits_same_outcome():
    rng = np.random.default_rng(1)
    lines = format_skeleton_txt(rng.normal(size=(6, 150))).decode().split("\n")[:-1]
    for _ in range(200):
        edited = list(lines)
        i = int(rng.integers(len(edited)))
        kind = rng.integers(3)
        if kind == 0:
            words = edited[i].split(" ")
            words[int(rng.integers(len(words)))] = str(rng.choice(["x", "nan", "1e39", "-inf", "1.", ".5", "1-2", ""]))
            edited[i] = " ".join(words)
        elif kind == 1:
            edited.insert(i, str(rng.choice(["", "  ", "1 2 3"])))
        else:
            del edited[i]
        assert_same_pku("\n".join(edited).encode())
    assert_same_pku(b"")
    assert_same_pku(b"\n\n")
