from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from coursekit.io import _swap_into_place, atomic_open, write_json


def test_write_json_replaces_atomically_with_normal_permissions(tmp_path):
    path = tmp_path / "m.json"
    write_json(path, {"b": 1, "a": [1.5]})
    assert json.loads(path.read_text()) == {"a": [1.5], "b": 1}
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    path.chmod(0o600)
    write_json(path, {"c": 2})
    assert stat.S_IMODE(path.stat().st_mode) == 0o600  # an existing file keeps its mode
    assert list(tmp_path.iterdir()) == [path]


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "keep.txt"
    path.write_text("old")
    with pytest.raises(RuntimeError), atomic_open(path) as handle:
        handle.write("half")
        raise RuntimeError("disk full")
    assert path.read_text() == "old"
    assert list(tmp_path.iterdir()) == [path]


def test_binary_mode_and_bad_mode(tmp_path):
    with atomic_open(tmp_path / "b.bin", "wb") as handle:
        handle.write(b"\x00\x01")
    assert (tmp_path / "b.bin").read_bytes() == b"\x00\x01"
    with pytest.raises(ValueError, match="mode"), atomic_open(tmp_path / "x", "a"):
        pass


def test_failed_swap_restores_old_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    staging, target = tmp_path / "staging", tmp_path / "target"
    staging.mkdir()
    target.mkdir()
    (target / "keep.txt").write_text("old", encoding="utf-8")
    real_replace = os.replace

    def fail_on_staging(src, dst):
        if Path(src) == staging:
            raise OSError("disk full")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", fail_on_staging)
    with pytest.raises(OSError, match="disk full"):
        _swap_into_place(staging, target)
    assert (target / "keep.txt").read_text(encoding="utf-8") == "old"
