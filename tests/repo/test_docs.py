"""Every Python example in docs/authoring.md runs as it is written.

Each ```python block runs alone in a fresh interpreter (`sys.executable -c`), so an example can rely on nothing
but its own imports. A block whose fence is preceded by `<!-- not run: needs a server -->` is only compiled.
The code is padded with blank lines to its place in the file, so a traceback's `<string>` line numbers are the
document's own.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "authoring.md"
NOT_RUN = "<!-- not run: needs a server -->"
TIMEOUT_S = 60


@dataclass(frozen=True)
class Block:
    """One ```python block: the line its code starts on (from 1), the code, and whether it is to be run."""

    line: int
    code: str
    run: bool

    def padded(self) -> str:
        """The code preceded by blank lines, so that its line numbers are the document's."""
        return "\n" * (self.line - 1) + self.code


def python_blocks(text: str) -> list[Block]:
    """The document's ```python blocks, in order. Other fenced blocks are skipped whole."""
    blocks: list[Block] = []
    lines = text.splitlines()
    previous = ""  # the last non-blank line outside a fence
    index = 0
    while index < len(lines):
        fence = lines[index].strip()
        if not fence.startswith("```"):
            if fence:
                previous = fence
            index += 1
            continue
        start = index + 1
        end = next((i for i in range(start, len(lines)) if lines[i].strip() == "```"), None)
        if end is None:
            raise AssertionError(f"{DOC.name}:{index + 1}: a code fence is never closed")
        if fence == "```python":
            code = "\n".join(lines[start:end]) + "\n"
            blocks.append(Block(line=start + 1, code=code, run=previous != NOT_RUN))
        previous = ""
        index = end + 1
    return blocks


BLOCKS = python_blocks(DOC.read_text(encoding="utf-8"))


def test_the_document_has_examples_to_run() -> None:
    assert sum(b.run for b in BLOCKS) >= 10, [b.line for b in BLOCKS]


def test_blocks_are_found_with_their_line_numbers() -> None:
    text = "intro\n\n```sh\n```python\n```\n\n```python\nx = 1\n```\n" + NOT_RUN + "\n```python\ny = 2\n```\n"
    assert python_blocks(text) == [Block(8, "x = 1\n", True), Block(12, "y = 2\n", False)]
    assert python_blocks(text)[0].padded().splitlines()[7] == "x = 1"


@pytest.mark.parametrize("block", BLOCKS, ids=[f"line-{b.line}" for b in BLOCKS])
def test_example_runs(block: Block, tmp_path: Path) -> None:
    where = f"docs/authoring.md, the block starting at line {block.line}"
    if not block.run:
        try:
            compile(block.padded(), str(DOC), "exec")
        except SyntaxError as exc:
            pytest.fail(f"{where} does not compile: {exc}")
        return
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    try:
        done = subprocess.run(
            [sys.executable, "-c", block.padded()],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"{where} ran for more than {TIMEOUT_S}s")
    if done.returncode != 0:
        pytest.fail(f"{where} failed (exit status {done.returncode}):\n{done.stderr}", pytrace=False)
