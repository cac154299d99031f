"""workers/tasks.py and workers/names.py: a worker's Celery app gets one step task per job type, named as the
executor sends them, and the cleanup task; an app that only sends messages has none of them."""

from __future__ import annotations

from celery import Celery

from jobctl.workers import tasks
from jobctl.workers.names import CLEANUP_TASK, step_task_name
from jobctl.workers.registry import JobType, Registry


def test_step_task_names() -> None:
    assert step_task_name("sleep") == "jobctl.step.sleep"


def test_register_adds_a_step_task_per_job_type_and_the_cleanup_task() -> None:
    reg = Registry()
    for name in ("alpha", "beta"):
        reg.register(JobType(name, register=False))
    app = Celery("test", set_as_current=False)
    tasks.register(app, reg)
    assert {step_task_name("alpha"), step_task_name("beta"), CLEANUP_TASK} <= set(app.tasks)
    assert not any(name.startswith("jobctl.") for name in Celery("bare", set_as_current=False).tasks)
