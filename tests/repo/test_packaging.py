"""The distribution installs one import package, `jobctl`; its parts are importable under that name only."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name", ["scheduler", "workers", "api", "bench"])
def test_the_old_top_level_names_are_not_importable_outside_the_checkout(name: str, tmp_path: Path) -> None:
    # -P: the current folder is not put on sys.path; cwd is a fresh folder, so only site-packages is searched
    code = f"import importlib.util, jobctl.{name}; print(importlib.util.find_spec({name!r}))"
    out = subprocess.run([sys.executable, "-P", "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "None"


def test_the_wheel_holds_one_top_level_package(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(ROOT)],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("jobctl-*.whl")
    import zipfile

    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        top_level = next(n for n in names if n.endswith("top_level.txt"))
        assert zf.read(top_level).decode().split() == ["jobctl"]
    roots = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert roots == {"jobctl"}
    assert "jobctl/scheduler/store/transitions.py" in names and "jobctl/api/static/index.html" in names
    assert "jobctl/scheduler/migrations/versions/0001_initial_schema.py" in names
