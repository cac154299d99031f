"""Cross-origin requests (CORS), only when configured: `JOBCTL_CORS_ORIGINS` (docs/security.md).

The promise: with the setting empty (the default), the API answers no CORS request at all - a preflight gets no
`Access-Control-Allow-*` header and no other response carries one, so a browser lets no page of another origin
read anything from the API. With origins set, the pages of exactly those origins (and of no other) may call it
with the methods GET, POST, PUT, PATCH and DELETE and the headers `Authorization` and `Content-Type`, without
credentials: tokens travel in the `Authorization` header, never in cookies.

The middleware is added when the app is made, but the settings may only be read later (by the lifespan, when
`create_app` is given `build`): `ConfiguredCORS` reads them from the services the app runs with
(`app.state.services.settings`) at its first request, and from then on either passes every request straight
through or hands it to Starlette's `CORSMiddleware`.
"""

from __future__ import annotations

from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
HEADERS = ("Authorization", "Content-Type")


def cors_for(app: ASGIApp, origins: tuple[str, ...]) -> ASGIApp:
    """`app` as it answers with these allowed origins: itself if there are none, else behind `CORSMiddleware`."""
    if not origins:
        return app
    return CORSMiddleware(
        app, allow_origins=origins, allow_methods=METHODS, allow_headers=HEADERS, allow_credentials=False
    )


class ConfiguredCORS:
    """ASGI middleware: CORS for the origins of the settings the app runs with, and none if there are none."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._handler: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self._handler is None:
            services = getattr(scope["app"].state, "services", None)
            if services is None:  # not started: no settings to follow yet, so no CORS (and nothing is remembered)
                await self.app(scope, receive, send)
                return
            self._handler = cors_for(self.app, services.settings.cors_origin_list)
        await self._handler(scope, receive, send)
