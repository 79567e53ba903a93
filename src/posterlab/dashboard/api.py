"""The JSON API under ``/api/``: the same objects as ``posterlab ... --json``.

``/api/runs`` (``runs --json``), ``/api/runs/{name}`` (``status --json``),
``/api/runs/{name}/live`` (status, workers and queue depths: what a run's page polls),
``/api/runs/{name}/speed`` (posters per second over the run's last ten minutes),
``/api/runs/{name}/failures`` (``failures --json``), ``/api/runs/{name}/posters``
(``?offset=&limit=&order=id|rating|face_count``) and ``/api/runs/{name}/posters/{movie}``.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from posterlab import service
from posterlab.dashboard.state import state_of
from posterlab.errors import InputError
from posterlab.service import browse


def query_int(request: Request, name: str, default: int) -> int:
    """An integer query parameter; a clean 400 when it is not one."""
    text = request.query_params.get(name)
    if text is None or text == "":
        return default
    try:
        return int(text)
    except ValueError:
        raise InputError(f"{name} must be an integer, got {text[:40]!r}") from None


def live(request: Request, name: str) -> dict[str, Any]:
    """What a run's page refreshes: its status, its workers, the broker's queues."""
    state = state_of(request)
    status = service.status(state.store, name, sweep_first=False)
    queues = state.queue_depths() if status["mode"] == "distributed" else None
    # heartbeats of `posterlab worker` nodes, else who signed the run's recent posters
    found = status.get("workers") or browse.workers(state.store, name)
    return {"status": status, "workers": found, "queues": queues}


def runs(request: Request) -> JSONResponse:
    return JSONResponse(service.list_runs(state_of(request).store))


def run(request: Request) -> JSONResponse:
    return JSONResponse(service.status(state_of(request).store, request.path_params["name"],
                                       sweep_first=False))


def run_live(request: Request) -> JSONResponse:
    return JSONResponse(live(request, request.path_params["name"]))


def run_speed(request: Request) -> JSONResponse:
    return JSONResponse(browse.speed(state_of(request).store, request.path_params["name"]))


def failures(request: Request) -> JSONResponse:
    examples = query_int(request, "examples", 5)
    if not 0 <= examples <= 100:
        raise InputError("examples must be within 0..100")
    return JSONResponse(service.failures(state_of(request).store, request.path_params["name"],
                                         examples=examples))


def posters(request: Request) -> JSONResponse:
    return JSONResponse(browse.posters(
        state_of(request).store, request.path_params["name"],
        offset=query_int(request, "offset", 0), limit=query_int(request, "limit", 50),
        order=request.query_params.get("order", "id")))


def poster(request: Request) -> JSONResponse:
    return JSONResponse(browse.poster(state_of(request).store, request.path_params["name"],
                                      request.path_params["movie"]))


def routes() -> list[Route]:
    return [Route("/api/runs", runs), Route("/api/runs/{name}", run),
            Route("/api/runs/{name}/live", run_live),
            Route("/api/runs/{name}/speed", run_speed),
            Route("/api/runs/{name}/failures", failures),
            Route("/api/runs/{name}/posters", posters),
            Route("/api/runs/{name}/posters/{movie}", poster)]
