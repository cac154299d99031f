"""Sending deliveries: signed JSON POSTs, retried with backoff (docs/contract.md §4.11).

Promises:

- **Signed**: each POST carries `X-Jobctl-Signature: sha256=<hex HMAC-SHA256 of the body's exact bytes, keyed
  with the webhook's secret>`, `X-Jobctl-Delivery: <delivery id>` and `Content-Type: application/json`. Every
  attempt of a delivery sends the same bytes.
- **Delivered on a 2xx**; anything else - another status (redirects are not followed), no connection, no answer
  within `JOBCTL_WEBHOOK_TIMEOUT_S` for a phase of the exchange, an address the guard refuses - fails the attempt,
  and the delivery is due again after `backoff`, until the next attempt would come later than
  `JOBCTL_WEBHOOK_GIVE_UP_S` after its event: then it is failed, for good.
- **At least once, each attempt from one process**: a delivery is claimed before it is sent - the claim counts
  the attempt and leases the delivery for three timeouts and 10 s (a claim takes only deliveries not leased,
  with `FOR UPDATE SKIP LOCKED` on PostgreSQL) - and its outcome is recorded only under that lease. A sender
  that dies mid-attempt leaves the delivery to be claimed again when the lease ends: the receiver may get it
  twice, and tells by the delivery id.
- **A slow receiver delays only itself**: at most `JOBCTL_WEBHOOK_SENDERS` attempts are out at once, each on a
  thread of its own, and at most one per webhook, so a receiver that hangs holds one thread, a timeout per phase;
  other webhooks' deliveries go on, and the scheduler's dispatching never waits for any of it (the deliverer has
  threads and database connections of its own: `webhooks.Deliverer.open`).
- **Public addresses only, when guarded** (`scheduler.addresses`): the host is resolved before every attempt and
  the POST goes to an address just checked (with the host's name in `Host` and in TLS).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import queue
import random
import threading
from collections.abc import Callable
from datetime import timedelta

import httpx

from jobctl.scheduler.addresses import AddressRefused, host_and_port
from jobctl.scheduler.settings import Settings
from jobctl.scheduler.store import webhooks as store
from jobctl.scheduler.store.common import new_id, utcnow
from jobctl.scheduler.store.db import Database
from jobctl.scheduler.store.webhooks import Claimed

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Jobctl-Signature"
DELIVERY_HEADER = "X-Jobctl-Delivery"
MAX_BACKOFF_S = 900.0  # retries are at least this frequent, however many failed before

#: `(host, port) -> the addresses to connect to`, or raise `AddressRefused` (`addresses.public_addresses`).
Resolve = Callable[[str, int], list[str]]


def sign(secret: str, body: bytes) -> str:
    """The `X-Jobctl-Signature` of `body`: `sha256=` and the hex HMAC-SHA256 of its bytes with `secret`."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def backoff(failed: int, base_s: float, jitter: float | None = None) -> float:
    """Seconds to wait after the `failed`-th failed attempt: `base_s` doubled for each failure before it (at most
    `MAX_BACKOFF_S`), plus up to a quarter more at random, so retries of many deliveries spread out."""
    delay = min(base_s * 2 ** min(failed - 1, 32), MAX_BACKOFF_S)
    return delay * (1 + 0.25 * (random.random() if jitter is None else jitter))


class Sender:
    """A fixed set of daemon threads that send claimed deliveries; `claim_due` hands them work."""

    def __init__(self, db: Database, settings: Settings, *, resolve: Resolve | None = None) -> None:
        self.db = db
        self.slots = settings.webhook_senders
        self.timeout_s = settings.webhook_timeout_s
        self.backoff_s = settings.webhook_backoff_s
        self.give_up = timedelta(seconds=settings.webhook_give_up_s)
        # Each phase of a POST (connect, send, read) waits at most the timeout; the lease outlasts the three.
        self.lease = timedelta(seconds=3 * settings.webhook_timeout_s + 10)
        self.resolve = resolve
        self.freed = threading.Event()  # set when an attempt ends: a slot is free
        self._busy: set[str] = set()  # webhooks with an attempt out from this process
        self._lock = threading.Lock()
        self._work: queue.SimpleQueue[Claimed | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        for number in range(self.slots):
            thread = threading.Thread(target=self._serve, name=f"jobctl-webhook-{number}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        """Let the threads end after their current attempt; returns at once (an attempt cut short by the process
        exiting is claimed again when its lease ends)."""
        for _ in self._threads:
            self._work.put(None)

    def claim_due(self) -> int:
        """Claim a due delivery for each free thread - at most one per webhook, none of a webhook with an attempt
        out already - and hand them over. Returns how many."""
        with self._lock:
            free = self.slots - len(self._busy)
            busy = set(self._busy)
        if free <= 0:
            return 0
        now = utcnow()
        webhooks = self.db.query(lambda conn: store.due_webhooks(conn, now, busy, free))
        if not webhooks:
            return 0
        until = now + self.lease
        claimed = self.db.transact(
            lambda conn: [c for w in webhooks if (c := store.claim(conn, w, now, new_id(), until)) is not None]
        )
        with self._lock:
            self._busy.update(c.webhook_id for c in claimed)
        for one in claimed:
            self._work.put(one)
        return len(claimed)

    def _serve(self) -> None:
        with httpx.Client(
            timeout=self.timeout_s,
            follow_redirects=False,
            trust_env=False,  # straight to the receiver: no proxy from the environment
            limits=httpx.Limits(max_keepalive_connections=0),  # a connection per attempt, never another host's
        ) as client:
            while (claimed := self._work.get()) is not None:
                try:
                    self.attempt(client, claimed)
                except Exception:  # the lease runs out and the delivery is claimed again
                    log.exception("webhook delivery %s: the attempt could not be completed", claimed.id)
                finally:
                    with self._lock:
                        self._busy.discard(claimed.webhook_id)
                    self.freed.set()

    def attempt(self, client: httpx.Client, claimed: Claimed) -> None:
        """POST the claimed delivery once and record how it went."""
        body = claimed.body.encode("utf-8")
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: sign(claimed.secret, body),
            DELIVERY_HEADER: claimed.id,
            "User-Agent": "jobctl-webhooks/1",
        }
        http_status, error = self._post(client, claimed.url, body, headers)
        now = utcnow()
        retry_at = None
        if error is not None:
            retry_at = now + timedelta(seconds=backoff(claimed.attempts, self.backoff_s))
            if retry_at > claimed.event_at + self.give_up:
                retry_at = None
        self.db.transact(
            lambda conn: store.record_attempt(
                conn, claimed, now=now, http_status=http_status, error=error, retry_at=retry_at
            )
        )
        if error is None:
            log.info("webhook delivery %s delivered (attempt %d)", claimed.id, claimed.attempts)
        else:
            outcome = "retrying" if retry_at is not None else "giving up"
            log.info("webhook delivery %s attempt %d failed: %s; %s", claimed.id, claimed.attempts, error, outcome)

    def _post(
        self, client: httpx.Client, url: str, body: bytes, headers: dict[str, str]
    ) -> tuple[int | None, str | None]:
        """(the answer's status, why the attempt failed or None)."""
        targets: list[tuple[httpx.URL, dict[str, str], dict[str, str]]] = [(httpx.URL(url), {}, {})]
        if self.resolve is not None:
            try:
                host, port = host_and_port(url)
                addresses = self.resolve(host, port)
            except AddressRefused as exc:
                return None, f"refused: {exc.message}"
            targets = [_pinned(httpx.URL(url), host, address) for address in addresses]
        failure = "no address to connect to"
        for target, extra, extensions in targets:
            try:
                with client.stream(
                    "POST", target, content=body, headers={**headers, **extra}, extensions=extensions
                ) as answer:
                    code = answer.status_code
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                failure = f"could not connect: {exc or type(exc).__name__}"
                continue  # the host's next address, if it has one
            except httpx.TimeoutException as exc:
                return None, f"no answer within {self.timeout_s:g}s ({type(exc).__name__})"
            except httpx.HTTPError as exc:
                return None, f"{type(exc).__name__}: {exc}"
            return (code, None) if 200 <= code < 300 else (code, f"answered HTTP {code}")
        return None, failure


def _pinned(url: httpx.URL, host: str, address: str) -> tuple[httpx.URL, dict[str, str], dict[str, str]]:
    """`url` sent to `address` for `host`: the host's name in `Host`, and in TLS (SNI, certificate check)."""
    netloc = f"[{host}]" if ":" in host else host
    if url.port is not None:
        netloc = f"{netloc}:{url.port}"
    extensions = {"sni_hostname": host} if url.scheme == "https" else {}
    return url.copy_with(host=address), {"Host": netloc}, extensions
