"""jobctl: long, multi-step background jobs on Celery workers, operated like a job monitor.

Everything an application writes against is exported here (authoring job types) and from `jobctl.client`
(calling a jobctl server). The subpackages `jobctl.scheduler`, `jobctl.workers`, `jobctl.api` and
`jobctl.bench` are internal and may change. See docs/authoring.md.
"""

__all__: list[str] = []
