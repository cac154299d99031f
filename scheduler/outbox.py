"""Notifications sent without waiting for Redis: a batch's commands are written to the socket at once and their
replies read only before the next batch goes out (by then they have arrived).

A pool process runs a job's steps one after another; waiting for Redis's replies after each one (to announce
the step and count it) cost a short job a third of its time. Redis holds only notifications and metrics (never
the truth), so a batch that cannot be sent, or an error reply, is logged and dropped - as the synchronous send
did.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

import redis
from redis.client import Pipeline

log = logging.getLogger(__name__)


class Outbox:
    """Sends posted Redis pipelines on a connection of its own, in posting order, one write each; a post reads
    the replies of the previous one first, so at most one batch is ever unacknowledged."""

    def __init__(self, client: redis.Redis) -> None:
        self._client = client
        self._lock = threading.Lock()
        self._connection: Any = None
        self._pid = 0
        self._unread = 0  # replies of the last batch sent, not read yet

    def post(self, batch: Pipeline) -> None:
        """Send `batch`'s commands; returns without waiting for their replies. Never raises."""
        commands = [args for args, _options in batch.command_stack]
        if not commands:
            return
        with self._lock:
            try:
                connection = self._ready()
                connection.send_packed_command(connection.pack_commands(commands))
                self._unread = len(commands)
            except redis.RedisError as exc:
                self._reset(f"could not send notifications: {exc}")

    def settle(self) -> bool:
        """Wait for the replies of what was sent (Redis has carried it out); False if they were lost."""
        with self._lock:
            if self._connection is None or self._pid != os.getpid():
                return True
            try:
                self._read_replies()
            except redis.RedisError as exc:
                self._reset(f"notifications may be lost: {exc}")
                return False
            return True

    def _ready(self) -> Any:
        """This process's connection, with nothing left to read on it. If the previous batch's replies cannot be
        read, or the server closed the connection since (Redis restarted), it is dropped and the send connects
        again: the batch being posted is not lost with it (the previous one may be)."""
        if self._pid != os.getpid():  # a fork's copy of another process's socket is not ours to use
            self._pid = os.getpid()
            self._connection = self._client.connection_pool.make_connection()
            self._unread = 0
        try:
            self._read_replies()
            if self._connection.can_read(timeout=0):  # nothing is due: unasked-for bytes are not ours to send after
                self._reset("unexpected data from Redis; reconnecting")
        except redis.RedisError as exc:  # the server's end of the connection is gone
            self._reset(f"the previous notifications may be lost: {exc}")
        return self._connection

    def _read_replies(self) -> None:
        while self._unread:
            self._unread -= 1
            try:
                self._connection.read_response()
            except redis.ResponseError as exc:  # one command refused; the others were carried out
                log.warning("a notification was refused: %s", exc)

    def _reset(self, message: str) -> None:
        log.warning(message)
        self._unread = 0
        if self._connection is not None:
            self._connection.disconnect()  # the next post connects again
