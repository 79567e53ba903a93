"""Who may act: a token to sign in, a session cookie, and a CSRF token per session.

Actions are refused unless the dashboard was started with ``--allow-actions`` and the
request carries the token of ``POSTERLAB_DASHBOARD_TOKEN``, either

- from a browser: signed in once (``POST /login`` with the token) -> an HttpOnly,
  SameSite=Strict session cookie, and every action form carries ``csrf``, an HMAC of
  that session under a per-process secret (double protection against cross-site posts,
  with the ``Origin`` check below); or
- from a script: ``Authorization: Bearer <token>`` (no cookie, so no CSRF to fear).

A POST whose ``Origin`` is another site is refused whatever it carries.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Any
from urllib.parse import urlsplit

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from posterlab.dashboard.state import state_of

COOKIE = "posterlab_session"


def session_of(request: Request) -> str | None:
    """The signed-in session of this browser, or None."""
    sid = request.cookies.get(COOKIE)
    return sid if sid and sid in state_of(request).sessions else None


def csrf_token(request: Request) -> str:
    """The CSRF token action forms of this session carry (empty when signed out)."""
    sid = session_of(request)
    if sid is None:
        return ""
    return hmac.new(state_of(request).secret, sid.encode(), hashlib.sha256).hexdigest()


def _same_origin(request: Request) -> bool:
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return origin is None
    return urlsplit(origin).netloc == request.headers.get("host", "")


def _bearer_ok(request: Request, token: str) -> bool:
    header = request.headers.get("authorization", "")
    scheme, _, given = header.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip(), token)


async def authorize_action(request: Request) -> dict[str, Any]:
    """The action's form fields, once the request may act; else HTTP 403 saying why."""
    state = state_of(request)
    if not state.allow_actions:
        raise HTTPException(403, "actions are off: start the dashboard with --allow-actions")
    if not state.token:
        raise HTTPException(403, "actions need POSTERLAB_DASHBOARD_TOKEN to be set")
    if not _same_origin(request):
        raise HTTPException(403, "refused: the request came from another site")
    form = dict(await request.form())
    if _bearer_ok(request, state.token):
        return form
    if session_of(request) is None:
        raise HTTPException(403, "sign in with the dashboard token first (/login)")
    if not hmac.compare_digest(str(form.get("csrf", "")), csrf_token(request)):
        raise HTTPException(403, "refused: the form's CSRF token is missing or stale; "
                                 "reload the page and try again")
    return form


def login_page(request: Request) -> Response:
    view: Response = request.app.state.templates.TemplateResponse(
        request, "login.html", {"state": state_of(request), "error": None,
                                "signed_in": session_of(request) is not None})
    return view


async def login(request: Request) -> Response:
    """Sign in with the token: a session cookie for this browser."""
    state = state_of(request)
    form = await request.form()
    given = str(form.get("token", ""))
    if not (state.actions_ready and _same_origin(request) and state.token
            and hmac.compare_digest(given, state.token)):
        view: Response = request.app.state.templates.TemplateResponse(
            request, "login.html", {"state": state, "signed_in": False,
                                    "error": "wrong token, or actions are off"},
            status_code=403)
        return view
    sid = secrets.token_urlsafe(32)
    state.sessions.add(sid)
    response = RedirectResponse(_local(str(form.get("next", "/"))), status_code=303)
    response.set_cookie(COOKIE, sid, httponly=True, samesite="strict", path="/")
    return response


async def logout(request: Request) -> Response:
    sid = request.cookies.get(COOKIE)
    state_of(request).sessions.discard(sid or "")
    response = RedirectResponse("/", status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response


def _local(target: str) -> str:
    """Only redirect within this site (``/...``, never ``//host`` or a full URL)."""
    return target if target.startswith("/") and not target.startswith("//") else "/"


def routes() -> list[Route]:
    return [Route("/login", login_page, methods=["GET"]),
            Route("/login", login, methods=["POST"]),
            Route("/logout", logout, methods=["POST"])]
