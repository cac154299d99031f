"""Turn the figures a chaos run recorded (JSON lines) into `docs/reliability.md`.

Usage: python -m tests.chaos.report RESULTS.jsonl docs/reliability.md "<command that produced them>"
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

COLUMNS = ["rounds", "jobs", "lost", "stuck", "double_recorded", "double_executed", "recover_s"]
HEADER = """# Reliability

What the chaos suite (`tests/chaos/`) measured. Every figure below was written by the run itself (`make chaos`,
which runs the scenarios at full scale and then `tests/chaos/report.py`); nothing is typed in by hand.

- **lost**: jobs that did not reach the state the scenario expects (FINISHED, or a valid final state in the
  storm) by the end of the run.
- **stuck**: samples, taken during the run, of a step still RUNNING more than one scheduler pass after its
  lease ran out (a job left RUNNING by a dead worker).
- **double recorded**: steps whose completion the store committed more than once (counted by a database
  trigger on `steps`, so every code path is seen).
- **double executed**: fencing tokens whose step code started more than once (a redelivered message run
  again), counted in the side table the `record` job type writes.
- **recover s**: seconds from the last fault to everything settled (or the scenario's own definition, in its
  notes).
"""


def render(rows: list[dict[str, Any]], command: str) -> str:
    """The Markdown page for these rows: one table of the common figures, then each scenario's other figures."""
    lines = [HEADER]
    lines.append(
        f"Run: `{command}` on {time.strftime('%Y-%m-%d')}, {platform.node() or 'this machine'} "
        f"({os.cpu_count()} cores, Python {platform.python_version()}).\n"
    )
    lines.append("| scenario | backend | scale | " + " | ".join(c.replace("_", " ") for c in COLUMNS) + " | passed |")
    lines.append("|---" * (len(COLUMNS) + 4) + "|")
    for row in rows:
        cells = [str(row.get(c, "")) for c in COLUMNS]
        lines.append(
            f"| {row['scenario']} | {row['backend']} | {row['scale']} | "
            + " | ".join(cells)
            + f" | {'yes' if row.get('passed', True) else 'NO'} |"
        )
    lines.append("\n## Other figures and notes\n")
    for row in rows:
        other = {k: v for k, v in row.items() if k not in {*COLUMNS, "scenario", "backend", "scale", "at", "passed"}}
        test = other.pop("test", "")
        notes = other.pop("notes", "")
        details = ", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in other.items())
        lines.append(f"- **{row['scenario']}** ({row['backend']}, `{test}`): {details}. {notes}".rstrip())
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    results, output, command = Path(argv[1]), Path(argv[2]), argv[3] if len(argv) > 3 else "make chaos"
    rows = [json.loads(line) for line in results.read_text().splitlines() if line.strip()] if results.exists() else []
    if not rows:
        print(f"no chaos figures in {results}", file=sys.stderr)
        return 1
    output.write_text(render(rows, command))
    print(f"wrote {output} ({len(rows)} scenario runs)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
