"""A real HTTP receiver for webhook tests: a `ThreadingHTTPServer` on 127.0.0.1 in a thread of the test process.

It records every request it gets (path, headers, body bytes, when), answers with the statuses queued in
`answers` (then `default`), can hang for `hang_s` before answering, and can be stopped and started again on the
same port (a receiver that is down, then back).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Received:
    """One request as the receiver got it."""

    path: str
    headers: dict[str, str]  # names in lower case
    body: bytes
    at: float  # time.time() when it arrived
    answered: int  # the status it was answered with (after `hang_s`: the client may have given up by then)

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def delivery_id(self) -> str:
        return self.headers.get("x-jobctl-delivery", "")

    def signed_with(self, secret: str) -> bool:
        """True if `X-Jobctl-Signature` is the HMAC-SHA256 of the exact body with `secret`."""
        expected = "sha256=" + hmac.new(secret.encode(), self.body, hashlib.sha256).hexdigest()
        return hmac.compare_digest(expected, self.headers.get("x-jobctl-signature", ""))


class Receiver:
    """Started on construction, on `port` (0: a free one)."""

    def __init__(self, port: int = 0) -> None:
        self.port = port
        self.received: list[Received] = []
        self.answers: deque[int] = deque()
        self.default = 200
        self.hang_s = 0.0
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                arrived = time.time()
                with receiver._lock:
                    status = receiver.answers.popleft() if receiver.answers else receiver.default
                    hang = receiver.hang_s
                headers = {k.lower(): v for k, v in self.headers.items()}
                with receiver._lock:
                    receiver.received.append(Received(self.path, headers, body, arrived, status))
                if hang:
                    time.sleep(hang)
                try:
                    self.send_response(status)
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"ok")
                except OSError:  # the client gave up waiting
                    pass

            def log_message(self, format: str, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        server.daemon_threads = True  # a hung handler never holds up the test's end
        self.port = server.server_address[1]
        self._server = server
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def stop(self) -> None:
        """Stop listening: connections to the port are refused until `start`."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def got(self, path: str | None = None) -> list[Received]:
        """What arrived so far (only at `path`, if given), oldest first."""
        with self._lock:
            return [r for r in self.received if path is None or r.path == path]
