"""Each fact of the contract is written once (docs/contract.md §2, §7): the job states and the user operations in
`jobctl.states`, the list's sort keys in the store's `SORTS`, the job types in the worker's registry. The API's
enums, the Python client and the web page read them from there; nothing lists them again.

The scans below look for a second list: a Python list/tuple/set literal or enum, or a JavaScript array literal,
that names two or more of the states or operations, or the sort keys (all of them, or two reversed ones: the
bare words `status`, `type`, ... are too common to count), and for the built-in job types' names anywhere in
the page. A map keyed by them (a colour per state, the sort key ordering a table column) is presentation and
is allowed.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import jobctl
import jobctl.client
from jobctl import states
from jobctl.api.schemas import BatchAction, JobSort
from jobctl.scheduler.store.jobs import SORTS
from jobctl.workers import jobtypes

ROOT = Path(__file__).resolve().parents[2]
STATIC = ROOT / "api" / "static"
PYTHON = ["api", "jobctl/client", "jobctl/cli", "jobctl/states.py", "scheduler", "workers"]

STATUSES = {s.value for s in states.JobStatus}
OPERATIONS = {op.value for op in states.OPERATIONS}
SORT_KEYS = set(SORTS)
REVERSED = {f"-{k}" for k in SORT_KEYS}
#: the enums that are the one definition: the states, and the actions (`OPERATIONS` picks the user's from them)
THE_ONE_DEFINITIONS = {("jobctl/states.py", "JobStatus", "states"), ("jobctl/states.py", "Action", "operations")}


def python_files() -> list[Path]:
    found: list[Path] = []
    for place in (ROOT / p for p in PYTHON):
        files = [place] if place.is_file() else sorted(place.rglob("*.py"))  # none if it does not exist
        found += [f for f in files if "migrations" not in f.parts and "__pycache__" not in f.parts]
    return found


def second_lists(names: list[str], elements: list[str] | None = None) -> list[str]:
    """Which facts `names`, the strings of one literal, list again (`elements`: those that are its elements, not
    values of an object's properties; the sort keys are looked for there only)."""
    found = [
        fact for fact, values in (("states", STATUSES), ("operations", OPERATIONS)) if len(values & set(names)) >= 2
    ]
    keys = set(names if elements is None else elements)
    if keys >= SORT_KEYS or len(REVERSED & keys) >= 2:
        found.append("sort keys")
    return found


def test_the_api_enums_and_the_client_are_built_from_the_one_definition() -> None:
    assert [a.value for a in BatchAction] == [op.value for op in states.OPERATIONS]
    assert [s.value for s in JobSort] == [v for k in SORTS for v in (k, f"-{k}")]
    assert JobSort.CREATED_AT_DESC.value == "-created_at"
    assert jobctl.client.JobStatus is states.JobStatus
    assert tuple(op.value for op in states.OPERATIONS) == jobctl.client.OPERATIONS


def python_lists(source: str, where: str) -> list[str]:
    """Each list, tuple or set literal and each class body of `source` that lists a fact again."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source, where)):
        if isinstance(node, ast.List | ast.Tuple | ast.Set):
            names = [e.value for e in node.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)]
            found += [f"{where}:{node.lineno}: a literal list of {fact}" for fact in second_lists(names)]
        elif isinstance(node, ast.ClassDef):
            values = [
                stmt.value.value
                for stmt in node.body
                if isinstance(stmt, ast.Assign)
                and isinstance(stmt.value, ast.Constant)
                and isinstance(stmt.value.value, str)
            ]
            found += [
                f"{where}:{node.lineno}: class {node.name} lists the {fact}"
                for fact in second_lists(values)
                if (where, node.name, fact) not in THE_ONE_DEFINITIONS
            ]
    return found


def test_no_python_module_lists_the_states_operations_or_sort_keys_again() -> None:
    """The one enum of the states (jobctl/states.py) holds them; the operations are `Action` members there."""
    found = [f for path in python_files() for f in python_lists(path.read_text(), str(path.relative_to(ROOT)))]
    assert found == []


ARRAY = re.compile(r"\[([^\[\]]*)\]", re.S)
QUOTED = re.compile(r"""(:\s*)?["'`]([^"'`]*)["'`]""")


def js_lists(text: str) -> list[tuple[str, list[str]]]:
    """Each array literal of `text` and the facts it lists again."""
    found = []
    for body in ARRAY.findall(text):
        strings = QUOTED.findall(body)
        names = [s for _, s in strings]
        elements = [s for colon, s in strings if not colon]
        found += [(body, second_lists(names, elements))]
    return found


@pytest.mark.parametrize("path", sorted(STATIC.glob("*.js")), ids=lambda p: p.name)
def test_the_page_lists_no_states_operations_sort_keys_or_job_types(path: Path) -> None:
    """The page takes them from `/ui/config.json` and `GET /api/v1/types` (tests/api/test_ui_config.py)."""
    text = path.read_text()
    found = [
        f"{path.name}: an array of {fact}: [{body.strip()[:60]}...]" for body, facts in js_lists(text) for fact in facts
    ]
    builtin = [v.name for v in vars(jobtypes).values() if isinstance(v, jobctl.JobType)]
    assert builtin, "the built-in job types are declared in workers/jobtypes.py"
    found += [f"{path.name}: names the job type {name!r}" for name in builtin if f'"{name}"' in text]
    assert found == []


def test_the_scans_would_see_a_second_list() -> None:
    """The checks above are not vacuous: the lists that used to be here are caught."""
    js = (
        'export const STATUSES = ["PENDING", "RUNNING", "PAUSED"];\n'
        'const A = [{ name: "pause" }, { name: "resume" }];\n'
        'const S = ["created_at", "-created_at", "duration", "-duration"];\n'
        'const C = [{ key: "created", sort: "created_at" }, { key: "duration", sort: "duration" }];\n'
    )
    assert [facts for _, facts in js_lists(js)] == [["states"], ["operations"], ["sort keys"], []]
    python = (
        'OPERATIONS = ("pause", "resume", "restart", "discard", "delete")\n'
        'class BatchAction(StrEnum):\n    PAUSE = "pause"\n    RESUME = "resume"\n'
        'class JobSort(StrEnum):\n    CREATED_AT = "created_at"\n    CREATED_AT_DESC = "-created_at"\n'
        '    DURATION_DESC = "-duration"\n'
        'class JobStatus(StrEnum):\n    PENDING = "PENDING"\n    RUNNING = "RUNNING"\n'
    )
    assert sorted(python_lists(python, "api/schemas.py")) == [
        "api/schemas.py:1: a literal list of operations",
        "api/schemas.py:2: class BatchAction lists the operations",
        "api/schemas.py:5: class JobSort lists the sort keys",
        "api/schemas.py:9: class JobStatus lists the states",
    ]
    assert not any("JobStatus" in f for f in python_lists(python, "jobctl/states.py"))  # the one definition
