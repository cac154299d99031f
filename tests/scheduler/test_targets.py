"""`file` targets never leave the file root; their version follows size and mtime."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from jobctl.scheduler.errors import Invalid
from jobctl.scheduler.targets import FileResolver, mismatch


def test_paths_inside_the_root_resolve(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "f.txt").write_text("x")
    resolver = FileResolver(tmp_path)
    assert resolver.path("a/f.txt") == (tmp_path / "a" / "f.txt").resolve()
    assert resolver.version(None, 1, "a/f.txt")  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["../x", "/etc/passwd", "a/../../x", "", "a\x00b", "x" * 600])
def test_escaping_or_malformed_paths_are_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(Invalid):
        FileResolver(tmp_path).path(name)


def test_symlinks_out_of_the_root_are_refused(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (tmp_path / "secret").write_text("s")
    os.symlink(tmp_path / "secret", root / "link")
    with pytest.raises(Invalid):
        FileResolver(root).path("link")
    assert FileResolver(root).version(None, 1, "link") is None  # type: ignore[arg-type]


def test_version_changes_with_content_and_vanishes_with_the_file(tmp_path: Path) -> None:
    resolver = FileResolver(tmp_path)
    path = tmp_path / "f"
    path.write_text("one")
    first = resolver.version(None, 1, "f")  # type: ignore[arg-type]
    path.write_text("three")
    second = resolver.version(None, 1, "f")  # type: ignore[arg-type]
    assert first != second
    path.unlink()
    assert resolver.version(None, 1, "f") is None  # type: ignore[arg-type]
    assert mismatch("file", "f", second, None) == "target file 'f' no longer exists"
    assert "changed" in (mismatch("file", "f", first, second) or "")
    assert mismatch("file", "f", first, first) is None
