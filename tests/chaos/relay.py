"""A TCP relay between the processes under test and a server, for faults the kernel cannot make here.

Listens on an address of its own and forwards every connection to the server, both directions, with:

- a **delay** added to each direction (`delay_s`, one way): every chunk is written `delay_s` after it was read,
  in order, whatever follows it - a link with that latency, not a slower one (this machine's kernel has no
  `sch_netem`, which would do it below TCP);
- a **blackhole** (`blackhole()` ... `heal()`): bytes are held, neither delivered nor refused, and new
  connections are accepted but get no answer - what a partition does to TCP; after `heal` everything held
  is delivered, as TCP's retransmissions would.

The relay runs an asyncio loop in a daemon thread of the test process; its settings may be changed at any time.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Coroutine
from typing import Any


class Relay:
    """A relay from `listen_host` (a free port) to `target_host:target_port`. `start()` before use, `stop()` after."""

    def __init__(self, listen_host: str, target_host: str, target_port: int) -> None:
        self.listen_host = listen_host
        self.target = (target_host, target_port)
        with socket.socket() as sock:
            sock.bind((listen_host, 0))
            self.port = int(sock.getsockname()[1])
        self.delay_s = 0.0
        self.connections = 0
        self._open = threading.Event()
        self._open.set()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=f"relay-{self.port}", daemon=True)
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._healed: asyncio.Event | None = None

    # -- control (any thread) ---------------------------------------------------------------------------------

    def start(self) -> Relay:
        self._thread.start()
        self._call(self._serve())
        return self

    def stop(self) -> None:
        """Close every connection and the listener, and end the loop."""
        if self._thread.is_alive():
            with contextlib.suppress(Exception):
                self._call(self._close())
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
        if not self._thread.is_alive() and not self._loop.is_closed():
            self._loop.close()

    def blackhole(self) -> None:
        """From now on, hold every byte in both directions (a partition)."""
        self._open.clear()
        self._loop.call_soon_threadsafe(self._set_healed, False)

    def heal(self) -> None:
        """Deliver what was held and relay again."""
        self._open.set()
        self._loop.call_soon_threadsafe(self._set_healed, True)

    @property
    def open(self) -> bool:
        return self._open.is_set()

    def _call(self, coro: Coroutine[Any, Any, None]) -> None:
        asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=10)

    # -- the loop's side ---------------------------------------------------------------------------------------

    def _set_healed(self, healed: bool) -> None:
        assert self._healed is not None
        if healed:
            self._healed.set()
        else:
            self._healed.clear()

    async def _serve(self) -> None:
        self._healed = asyncio.Event()
        if self._open.is_set():
            self._healed.set()
        self._server = await asyncio.start_server(self._accept, self.listen_host, self.port)

    async def _close(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in list(self._writers):
            writer.close()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _accept(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        self.connections += 1
        assert self._healed is not None
        await self._healed.wait()  # a connection made during a partition is never answered until the heal
        self._writers.add(client_w)
        try:
            server_r, server_w = await asyncio.open_connection(*self.target)
        except OSError:
            client_w.close()
            return
        self._writers.add(server_w)
        await asyncio.gather(self._pump(client_r, server_w), self._pump(server_r, client_w))

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Copy one direction: each chunk goes out `delay_s` after it came in, in order, once not blackholed."""
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def read() -> None:
            while chunk := await reader.read(65536):
                await queue.put((time.monotonic() + self.delay_s, chunk))
            await queue.put((0.0, b""))

        reading = asyncio.ensure_future(read())
        assert self._healed is not None
        try:
            while True:
                due, chunk = await queue.get()
                if not chunk:
                    break
                wait = due - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                await self._healed.wait()
                writer.write(chunk)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            reading.cancel()
            with contextlib.suppress(Exception):
                writer.close()
