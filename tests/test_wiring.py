"""jobctl/wiring.py, the composition root: it registers the built-in job types and builds every service, and it is
the only place that does (the HTTP API gets them from its caller and never loads Celery)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from jobctl.scheduler.settings import Settings
from jobctl.wiring import build, job_types
from jobctl.workers.executor import CeleryExecutor
from jobctl.workers.services import Services


def test_the_built_in_job_types_come_with_the_wiring() -> None:
    names = job_types(Settings()).names()
    assert {"sleep", "file_digest"} <= set(names)


def test_build_wires_the_operations_to_the_celery_executor(tmp_path: Path) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'jobctl.db'}", redis_url="redis://127.0.0.1:1/0")
    services = build(settings)  # connects to nothing yet
    try:
        assert isinstance(services, Services)
        assert services.registry.get("sleep").name == "sleep"
        assert isinstance(services.ops.executor, CeleryExecutor)
    finally:
        services.close()


def test_the_api_loads_neither_celery_nor_the_worker_runtime() -> None:
    code = (
        "import sys, jobctl.api.app\n"
        "loaded = [m for m in sys.modules if m.split('.')[0] in ('celery', 'kombu')"
        " or m.startswith(('jobctl.workers.runtime', 'jobctl.workers.celery_app', 'jobctl.wiring'))]\n"
        "print(loaded)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
