"""Security headers on every response (docs/security.md): what a browser may do with what jobctl serves.

- `Content-Security-Policy`: scripts, styles, images and requests from jobctl's own origin only; no inline
  script and no `eval`; no plugins; and `frame-ancestors 'none'`, so no other site can frame the monitor (and its
  sign-in form) to trick a user into typing a token or clicking an operation.
- `X-Frame-Options: DENY`: the same refusal, for browsers that predate `frame-ancestors`.
- `X-Content-Type-Options: nosniff`: a response is read as the type it declares, never guessed from its bytes
  (a step log served as text can never run as script).
- `Referrer-Policy: no-referrer`: no jobctl URL (job ids, filters) leaks to the sites the monitor links to.

One exception, `/docs` (the Swagger UI page, `api/routes/docs.py`): it starts Swagger UI with an inline script, so
its policy also allows that one script, by its SHA-256 hash, and no other inline script. Everything else is the
same: Swagger UI's own files come from jobctl's origin too, and no CDN or other host is allowed.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from jobctl.api.routes import docs


def _policy(script_src: str) -> str:
    return (
        f"default-src 'self'; script-src {script_src}; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
        "font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )


_SAME_ORIGIN = _policy("'self'")
_DOCS = _policy(" ".join(("'self'", *docs.SCRIPT_HASHES)))
_COMMON = (
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
)
HEADERS: tuple[tuple[bytes, bytes], ...] = ((b"content-security-policy", _SAME_ORIGIN.encode()), *_COMMON)
DOCS_HEADERS: tuple[tuple[bytes, bytes], ...] = ((b"content-security-policy", _DOCS.encode()), *_COMMON)
DOCS_PATHS = frozenset({docs.PATH})


class SecurityHeaders:
    """ASGI middleware: add `HEADERS` (`DOCS_HEADERS` on the Swagger UI pages) to every HTTP response that passes
    through it, whatever its status or source (a route, the request guard, an error handler)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = DOCS_HEADERS if scope["path"] in DOCS_PATHS else HEADERS

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), *extra]
            await send(message)

        await self.app(scope, receive, send_with_headers)
