"""The hub's live dashboard at ``/hub``: one HTML page, its script and its style sheet.

The three files are package data (``scanner/hub/static/``), read once when the routes are
made. They hold nothing of the venue, so they are served without a key: the page asks
``GET /hub/status`` itself, with the key the operator gives it in the address's fragment
(``/hub#key=pqr_live_...``: a fragment never reaches the server or its logs) or types
into its form.

Every answer carries a strict Content-Security-Policy: only these files' own script and
style run, the page talks only to its own origin, and it cannot be framed. The script
puts every text of the hub into the page as text, never as markup (gate names and
upstream messages are not to be trusted).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from importlib import resources

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

#: The one policy of the dashboard's files: nothing inline, nothing from elsewhere.
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "connect-src 'self'",
        "img-src 'self' data:",
        "base-uri 'none'",
        "frame-ancestors 'none'",
        "form-action 'none'",
    )
)

SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}

#: path -> (file in static/, media type)
FILES = {
    "/hub": ("dashboard.html", "text/html; charset=utf-8"),
    "/hub/dashboard.js": ("dashboard.js", "text/javascript; charset=utf-8"),
    "/hub/dashboard.css": ("dashboard.css", "text/css; charset=utf-8"),
}


def static_file(name: str) -> bytes:
    """The bytes of ``scanner/hub/static/<name>``, wherever the package is installed."""
    return resources.files("scanner.hub").joinpath("static", name).read_bytes()


def _endpoint(body: bytes, media_type: str) -> Callable[[Request], Awaitable[Response]]:
    async def serve(request: Request) -> Response:
        return Response(body, media_type=media_type, headers=SECURITY_HEADERS)

    return serve


def dashboard_routes() -> list[Route]:
    """``GET /hub``, ``/hub/dashboard.js`` and ``/hub/dashboard.css`` (no HEAD, no key).

    Raises:
        OSError: a file of the dashboard is missing from the installed package.
    """
    routes = [
        Route(path, _endpoint(static_file(name), media_type), methods=["GET"])
        for path, (name, media_type) in FILES.items()
    ]
    for route in routes:
        # Starlette adds HEAD to every GET route; the hub offers GET only (405), as the API.
        assert route.methods is not None
        route.methods.discard("HEAD")
    return routes
