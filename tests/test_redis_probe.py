"""jobctl/redis_probe.py: whether a Redis server answers, as `jobctl up` and the benchmark ask it."""

from __future__ import annotations

import socket

from jobctl.redis_probe import redis_answers
from tests.conftest import REDIS_BASE, missing


def test_nothing_listening_is_false() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # free, and nothing listens on it once closed
    assert redis_answers(f"redis://127.0.0.1:{port}/0") is False


def test_a_running_server_is_true() -> None:
    if not redis_answers(f"{REDIS_BASE}/0"):
        missing(f"Redis at {REDIS_BASE}")
    assert redis_answers(f"{REDIS_BASE}/0") is True
