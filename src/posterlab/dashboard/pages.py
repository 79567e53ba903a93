"""The HTML pages: runs, a run (live), its failures, its results, a poster, its image."""

from __future__ import annotations

from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, Response
from starlette.routing import Route

from posterlab import service
from posterlab.dashboard.api import live, query_int
from posterlab.dashboard.auth import csrf_token, session_of
from posterlab.dashboard.state import state_of
from posterlab.errors import InputError
from posterlab.service import browse
from posterlab.stages import PENDING, TERMINAL, AnalysisState

GRID_PAGE = 48  # posters per page of the results grid
# what an action's redirect says on the run's page (fixed texts: nothing reflected)
DONE_TEXT = {"retried": "{n} failed posters sent back to be processed again",
             "analysis-queued": "the analysis was queued for the workers",
             "analysis-started": "the analysis is running in the dashboard's process",
             "cancelled": "the run was cancelled: {n} waiting posters will not be processed"}
# media types of the image formats posters come in; anything else is not shown inline
IMAGE_TYPES = {b"\xff\xd8\xff": "image/jpeg", b"\x89PNG": "image/png", b"GIF8": "image/gif",
               b"BM": "image/bmp", b"RIFF": "image/webp"}


def render(request: Request, template: str, **context: Any) -> Response:
    """A page: ``context`` plus what every page needs (state, session, CSRF token)."""
    state = state_of(request)
    view: Response = request.app.state.templates.TemplateResponse(request, template, {
        "state": state, "signed_in": session_of(request) is not None,
        "csrf": csrf_token(request), **context})
    return view


def stage_order(counts: dict[str, int]) -> list[str]:
    """Pending stages in order, then the ends, then any other state the run has."""
    known = [*PENDING, *TERMINAL]
    return known + sorted(k for k in counts if k not in known)


def runs_page(request: Request) -> Response:
    return render(request, "runs.html", runs=service.list_runs(state_of(request).store),
                  stage_order=stage_order)


def run_page(request: Request) -> Response:
    name = request.path_params["name"]
    now = live(request, name)
    done = request.query_params.get("done")
    note = DONE_TEXT.get(done or "", "").format(n=query_int(request, "n", 0))
    return render(request, "run.html", run=now["status"], workers=now["workers"],
                  queues=now["queues"], stages=stage_order(now["status"]["counts"]),
                  note=note, finished=AnalysisState.DONE)


def failures_page(request: Request) -> Response:
    found = service.failures(state_of(request).store, request.path_params["name"],
                             examples=query_int(request, "examples", 5))
    return render(request, "failures.html", found=found)


def results_page(request: Request) -> Response:
    name = request.path_params["name"]
    order = request.query_params.get("order", "rating")
    if order not in ("rating", "face_count"):
        raise InputError("order must be rating or face_count")
    offset = max(0, query_int(request, "offset", 0))
    store = state_of(request).store
    status = service.status(store, name, sweep_first=False)
    page = browse.posters(store, name, offset=offset, limit=GRID_PAGE, order=order,
                          done_only=True)
    return render(request, "results.html", run=status, page=page, order=order,
                  offset=offset, step=GRID_PAGE, finished=AnalysisState.DONE)


def report(request: Request) -> Response:
    """The run's report.html (made once per run and analysis, then kept in memory)."""
    state = state_of(request)
    run = state.store.find_run(request.path_params["name"])
    key = (run.name, f"{run.analysis_at}:{run.total}:{run.pending}")
    if key not in state.reports:
        state.reports.clear()  # one report kept: they weigh a few MB each
        state.reports[key] = service.report_page(state.store, run.name)
    # the report styles itself inline; it has no script, so none is allowed
    csp = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; frame-ancestors 'self'"
    return HTMLResponse(state.reports[key], headers={"Content-Security-Policy": csp})


def poster_page(request: Request) -> Response:
    found = browse.poster(state_of(request).store, request.path_params["name"],
                          request.path_params["movie"])
    return render(request, "poster.html", run_name=request.path_params["name"], poster=found)


def blob(request: Request) -> Response:
    """A poster's bytes from the blob store, by sha256 only (nothing else is served)."""
    path = browse.blob_file(state_of(request).store, request.path_params["sha256"])
    if path is None:
        raise HTTPException(404, "no such image in the blob store")
    with path.open("rb") as fh:
        head = fh.read(4)
    media = next((t for magic, t in IMAGE_TYPES.items() if head.startswith(magic)), None)
    if media is None:
        raise HTTPException(415, "these bytes are not an image format shown here")
    return FileResponse(path, media_type=media,
                        headers={"Cache-Control": "private, max-age=86400, immutable"})


def routes() -> list[Route]:
    return [Route("/", runs_page), Route("/runs/{name}", run_page),
            Route("/runs/{name}/failures", failures_page),
            Route("/runs/{name}/results", results_page),
            Route("/runs/{name}/report", report),
            Route("/runs/{name}/posters/{movie}", poster_page),
            Route("/blobs/{sha256}", blob)]
