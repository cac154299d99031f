"""The services as the worker runtime sees them: `scheduler.services.Services` with the job types' full
interface (`workers.registry.Registry`: the steps' code, retry policies, cleanup hooks) and the Redis bus (a
running step publishes its progress itself). Built by
`jobctl.wiring.build`; each pool process builds its own after fork (`workers.hooks`)."""

from __future__ import annotations

from dataclasses import dataclass

from jobctl.scheduler import services
from jobctl.scheduler.bus import RedisBus
from jobctl.workers.registry import Registry


@dataclass
class Services(services.Services):
    bus: RedisBus
    registry: Registry
