"""Where a webhook may point (docs/security.md, "Webhooks"): the guard against making jobctl's servers call
addresses on their own network (server-side request forgery).

Outside development (`JOBCTL_ENV=production`), and unless `JOBCTL_WEBHOOK_ALLOW_PRIVATE` is set, a webhook's host
must resolve only to globally routable addresses: loopback, private, link-local, unspecified, shared (carrier
NAT), multicast and reserved addresses are refused, IPv4 ones also in their IPv6 forms. The API checks a URL
when the webhook is created; the scheduler checks it again before every attempt (the host's DNS may have changed
since) and connects to the very address it checked, so a name cannot resolve to one address for the check and
another for the connection.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from jobctl.scheduler.errors import Invalid
from jobctl.scheduler.settings import Settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class AddressRefused(Invalid):
    """The URL's host is, or resolves to, an address webhooks may not reach (or cannot be resolved)."""


def guarded(settings: Settings) -> bool:
    """True when webhooks may reach public addresses only: in production, unless explicitly allowed."""
    return settings.env == "production" and not settings.webhook_allow_private


def is_public(address: IPAddress) -> bool:
    """True for a globally routable unicast address (an IPv4-mapped or 6to4 IPv6 address is judged by its IPv4)."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is not None:
            return is_public(embedded)
    return address.is_global and not address.is_multicast


def host_and_port(url: str) -> tuple[str, int]:
    """The host (without brackets) and port of an http(s) URL (80 or 443 when it names none)."""
    parts = urlsplit(url)
    host = parts.hostname
    if not host:
        raise AddressRefused(f"the URL {url!r} names no host")
    try:
        port = parts.port
    except ValueError:
        raise AddressRefused(f"the URL {url!r} has an invalid port") from None
    return host, port or (443 if parts.scheme == "https" else 80)


def public_addresses(host: str, port: int) -> list[str]:
    """Every address `host` resolves to, in the resolver's order, if all of them are public; `AddressRefused`
    if any is not (a name with one private address among public ones is refused: the connection could pick it),
    or if the name does not resolve."""
    try:
        literal: IPAddress | None = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        found = [literal]
    else:
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError) as exc:
            raise AddressRefused(f"the host {host!r} cannot be resolved: {exc}") from None
        found = []
        for info in infos:
            address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])  # no IPv6 zone index
            if address not in found:
                found.append(address)
    for address in found:
        if not is_public(address):
            named = "" if literal is not None else f" resolves to {address}, which"
            raise AddressRefused(
                f"the host {host!r}{named} is not a public address (loopback, private, link-local and the like are "
                "refused outside development; see JOBCTL_WEBHOOK_ALLOW_PRIVATE)"
            )
    if not found:
        raise AddressRefused(f"the host {host!r} resolves to no address")
    return [str(address) for address in found]


def check_url(url: str, settings: Settings) -> None:
    """`AddressRefused` if the settings guard webhooks and `url`'s host is not public (resolving it now)."""
    if guarded(settings):
        public_addresses(*host_and_port(url))
