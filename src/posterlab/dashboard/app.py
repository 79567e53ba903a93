"""The app factory, the state every request shares, and ``serve``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

from posterlab.dashboard import actions, api, auth, pages
from posterlab.dashboard.state import POLL_SECONDS, Dashboard, templates
from posterlab.errors import InputError, PosterlabError, StorageError
from posterlab.service import Store

DEFAULT_HOST = "127.0.0.1"  # only this machine, unless told otherwise
DEFAULT_PORT = 8050
# pages only load what this server sends: no inline script, no third-party origin
CSP = ("default-src 'self'; img-src 'self' data:; script-src 'self'; style-src 'self'; "
       "frame-src 'self'; frame-ancestors 'self'; form-action 'self'; base-uri 'none'")


def create_app(store: Store, *, allow_actions: bool = False, token: str | None = None,
               poll_seconds: float = POLL_SECONDS) -> Starlette:
    """The dashboard over an open ``store``.

    Parameters
    ----------
    store
        The results database (and settings: broker, blob folder).
    allow_actions
        Offer retry, cancel and re-analysis; they still need ``token``.
    token
        The secret a browser signs in with (``POSTERLAB_DASHBOARD_TOKEN``).
    poll_seconds
        How often a run's page refreshes its figures.
    """
    state = Dashboard(store, allow_actions=allow_actions, token=token,
                      poll_seconds=poll_seconds)
    routes = [*pages.routes(), *api.routes(), *auth.routes(), *actions.routes(),
              Mount("/static", StaticFiles(packages=[("posterlab.dashboard", "static")]),
                    name="static")]
    app = Starlette(routes=routes, exception_handlers={
        HTTPException: _http_error, PosterlabError: _posterlab_error},
        middleware=[Middleware(BaseHTTPMiddleware, dispatch=_headers)])
    app.state.dashboard = state
    app.state.templates = templates()
    return app


async def _headers(request: Request, call_next: Callable[[Request], Awaitable[Response]]
                   ) -> Response:
    response = await call_next(request)
    response.headers.setdefault("Content-Security-Policy", CSP)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"  # no-referrer makes Origin "null"
    return response


def _wants_json(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def _error(request: Request, status: int, message: str) -> Response:
    if _wants_json(request):
        return JSONResponse({"error": message}, status_code=status)
    view: Any = request.app.state.templates.TemplateResponse(
        request, "error.html", {"status": status, "message": message,
                                "state": request.app.state.dashboard, "signed_in": False},
        status_code=status)
    return view  # type: ignore[no-any-return]


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return _error(request, exc.status_code, str(exc.detail))


async def _posterlab_error(request: Request, exc: Exception) -> Response:
    # StorageError: no such run or poster; InputError: a bad parameter
    status = 404 if isinstance(exc, StorageError) else 400 if isinstance(exc, InputError) else 500
    return _error(request, status, str(exc))


def serve(store: Store, *, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT,
          allow_actions: bool = False, token: str | None = None) -> None:
    """Run the dashboard with uvicorn until interrupted."""
    import uvicorn

    app = create_app(store, allow_actions=allow_actions, token=token)
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)
