"""Atomic outputs: temp files named after their output, stale ones swept by the next write."""

from __future__ import annotations

import os
import stat

import pytest

from skelrep.io import atomic_path, remove_stale_temps, temp_pattern, write_text_atomic


def _names(folder) -> set[str]:
    return {p.name for p in folder.iterdir()}


def test_temp_file_is_named_after_its_output_and_renamed_on_success(tmp_path):
    out = tmp_path / "sub" / "p.h5"
    with atomic_path(out, suffix=".h5") as tmp:
        assert tmp.parent == out.parent and temp_pattern("p.h5", ".h5").fullmatch(tmp.name)
        mode = stat.S_IMODE(tmp.stat().st_mode)
        tmp.write_bytes(b"data")
    assert _names(out.parent) == {"p.h5"} and out.read_bytes() == b"data"
    umask = os.umask(0)
    os.umask(umask)
    assert mode == 0o666 & ~umask  # outputs get normal permissions, not mkstemp's 0600


def test_failed_write_leaves_neither_temp_nor_output(tmp_path):
    with pytest.raises(RuntimeError), atomic_path(tmp_path / "p.h5", suffix=".h5") as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError
    assert _names(tmp_path) == set()


def test_sweep_removes_only_stale_temps_of_the_same_output(tmp_path):
    stale = {".p.h5.0123abcd.h5",   # a killed writer of p.h5
             ".p.h5.a_z9b8c7.h5",   # ... from before, when tempfile.mkstemp named it
             ".p.h5.deadbeef.h5"}   # ... even a folder of that name
    kept = {"p.h5", "q.h5",
            ".q.h5.0123abcd.h5",    # another output's temp file
            ".p.h5.0123abcd.tmp",   # another suffix: not a temp file of this writer
            ".p.h5.0123abc.h5", ".p.h5.0123abcde.h5", ".p.h5.4567ABCD.h5",  # not the pattern
            ".p.h5.0123abcd.h5.bak", "x.p.h5.0123abcd.h5", "p.h5.0123abcd.h5", ".xp.h5.0123abcd.h5"}
    for name in stale | kept:
        (tmp_path / name).write_text(name)
    (tmp_path / ".p.h5.deadbeef.h5").unlink()
    (tmp_path / ".p.h5.deadbeef.h5").mkdir()
    (tmp_path / ".p.h5.deadbeef.h5" / "inner").write_text("x")

    with atomic_path(tmp_path / "p.h5", suffix=".h5") as tmp:
        tmp.write_text("new")
    assert _names(tmp_path) == kept
    assert (tmp_path / "p.h5").read_text() == "new" and (tmp_path / "q.h5").read_text() == "q.h5"
    assert remove_stale_temps(tmp_path / "p.h5", ".h5") == []


def test_concurrent_writers_of_other_outputs_keep_their_temp_files(tmp_path):
    with atomic_path(tmp_path / "q.json") as q_tmp:  # still being written
        q_tmp.write_text("q")
        write_text_atomic(tmp_path / "p.json", "p")
        write_text_atomic(tmp_path / "q.json.x", "x")
        assert q_tmp.exists()
    assert _names(tmp_path) == {"p.json", "q.json", "q.json.x"}
    assert (tmp_path / "q.json").read_text() == "q"


def test_sweep_of_a_missing_folder_is_a_no_op(tmp_path):
    assert remove_stale_temps(tmp_path / "nowhere" / "p.h5") == []
