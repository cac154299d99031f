"""Turn the figures a chaos run recorded (JSON lines) into `docs/reliability.md`.

Usage: python -m tests.chaos.report RESULTS.jsonl docs/reliability.md "<command that produced them>" [--merge]

The page is rewritten from the figures, except its hand-written end (from the `KEEP` line on), which is kept as it
is. With `--merge` (a run of some scenarios only), the rows of the scenarios (and backends) this run did not
measure are kept from the page as they were, with their notes and the line saying which run measured them.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

COLUMNS = ["rounds", "jobs", "lost", "stuck", "double_recorded", "double_executed", "self_fence_s", "recover_s"]
KEEP = "<!-- Hand-written from here on: tests/chaos/report.py keeps it as it is. -->"
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
- **self fence s** (several hosts): the longest time from a step attempt's last lease renewal to its code
  stopped by its own worker (self-fencing), on that worker's clock; empty where no step fenced itself.
- **recover s**: seconds from the last fault to everything settled (or the scenario's own definition, in its
  notes).
"""


def render(rows: list[dict[str, Any]], command: str, previous: str = "", merge: bool = False) -> str:
    """The Markdown page for these rows: one table of the common figures, then each scenario's other figures,
    then the hand-written end of `previous` (the page as it was). With `merge`, the rows of `previous` for
    scenarios and backends not in `rows` are kept."""
    measured = {(row["scenario"], row["backend"]) for row in rows}
    old_rows, old_notes, old_runs = _previous(previous) if merge else ([], [], [])
    kept = [row for row in old_rows if (row["scenario"], row["backend"]) not in measured]
    run = (
        f"`{command}` on {time.strftime('%Y-%m-%d')}, {platform.node() or 'this machine'} "
        f"({os.cpu_count()} cores, Python {platform.python_version()})"
    )
    lines = [HEADER]
    if kept:
        scenarios = ", ".join(dict.fromkeys(row["scenario"] for row in rows))
        still = [r for r in old_runs if r.startswith("Run: ") or any(k["scenario"] in r for k in kept)]
        lines += [f"{r}\n" for r in still] + [f"Rows of {scenarios}: {run}.\n"]
    else:
        lines.append(f"Run: {run}.\n")
    lines.append("| scenario | backend | scale | " + " | ".join(c.replace("_", " ") for c in COLUMNS) + " | passed |")
    lines.append("|---" * (len(COLUMNS) + 4) + "|")
    for old in kept:
        cells = [old["scenario"], old["backend"], old["scale"], *(old.get(c.replace("_", " "), "") for c in COLUMNS)]
        lines.append("| " + " | ".join([*cells, old["passed"]]) + " |")
    for row in rows:
        cells = ["" if row.get(c) is None else str(row[c]) for c in COLUMNS]
        lines.append(
            f"| {row['scenario']} | {row['backend']} | {row['scale']} | "
            + " | ".join(cells)
            + f" | {'yes' if row.get('passed', True) else 'NO'} |"
        )
    lines.append("\n## Other figures and notes\n")
    for old in kept:
        prefix = f"- **{old['scenario']}** ({old['backend']}, "
        lines += [note for note in old_notes if note.startswith(prefix)]
    for row in rows:
        other = {k: v for k, v in row.items() if k not in {*COLUMNS, "scenario", "backend", "scale", "at", "passed"}}
        test = other.pop("test", "")
        notes = other.pop("notes", "")
        details = ", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in other.items())
        lines.append(f"- **{row['scenario']}** ({row['backend']}, `{test}`): {details}. {notes}".rstrip())
    tail = previous[previous.index(KEEP) :] if KEEP in previous else ""
    return "\n".join(lines) + "\n" + (f"\n{tail.rstrip()}\n" if tail else "")


def _previous(page: str) -> tuple[list[dict[str, str]], list[str], list[str]]:
    """What a page holds: its table's rows (cells by column name), its notes' lines and its run lines."""
    body = page.split(KEEP)[0].splitlines()
    start = next((i for i, line in enumerate(body) if line.startswith("| scenario | backend |")), None)
    if start is None:
        return [], [], []
    names = [cell.strip() for cell in body[start].strip().strip("|").split("|")]
    rows = []
    for line in body[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append(dict(zip(names, (cell.strip() for cell in line.strip().strip("|").split("|")), strict=False)))
    notes = [line for line in body if line.startswith("- **")]
    runs = [line for line in body[:start] if line.startswith(("Run: ", "Rows of "))]
    return rows, notes, runs


def main(argv: list[str]) -> int:
    merge = "--merge" in argv
    argv = [arg for arg in argv if arg != "--merge"]
    results, output, command = Path(argv[1]), Path(argv[2]), argv[3] if len(argv) > 3 else "make chaos"
    rows = [json.loads(line) for line in results.read_text().splitlines() if line.strip()] if results.exists() else []
    if not rows:
        print(f"no chaos figures in {results}", file=sys.stderr)
        return 1
    previous = output.read_text() if output.exists() else ""
    output.write_text(render(rows, command, previous, merge))
    print(f"wrote {output} ({len(rows)} scenario runs)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
