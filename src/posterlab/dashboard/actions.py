"""Actions on a run (POST only, see :mod:`posterlab.dashboard.auth`): retry failed
posters (all, or by reason), cancel the run, run its analysis again."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar
from urllib.parse import quote, urlencode

from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from posterlab import service
from posterlab.dashboard.auth import authorize_action
from posterlab.dashboard.state import state_of

T = TypeVar("T")
MAX_REASON = 200  # characters of a retry reason (an error code or part of a message)


def _back(name: str, done: str, n: int | None = None) -> Response:
    """Back to the run's page, which says what was done (fixed texts, by code)."""
    query = {"done": done, **({"n": str(n)} if n is not None else {})}
    return RedirectResponse(f"/runs/{quote(name, safe='')}?{urlencode(query)}",
                            status_code=303)


async def retry(request: Request) -> Response:
    """Failed posters back to their first stage; published to workers when distributed."""
    form = await authorize_action(request)
    name = request.path_params["name"]
    reason = str(form.get("reason", "")).strip()[:MAX_REASON] or None
    found = await _in_thread(lambda: service.retry(state_of(request).store, name,
                                                   reason=reason, process_here=False))
    return _back(name, "retried", found.posters)


async def analyze(request: Request) -> Response:
    """The run's analysis again: queued for workers, or run here after the answer."""
    await authorize_action(request)
    name = request.path_params["name"]
    store = state_of(request).store
    if await _in_thread(lambda: service.queue_analysis(store, name)):
        return _back(name, "analysis-queued")
    run_id = store.find_run(name).id
    response = _back(name, "analysis-started")
    response.background = BackgroundTask(service.analyze_now, store, run_id)
    return response


async def cancel(request: Request) -> Response:
    """Cancel the run: its waiting posters end cancelled, then its analysis runs on what
    is done (queued for workers; in this process, before the answer, when embedded)."""
    await authorize_action(request)
    name = request.path_params["name"]
    store = state_of(request).store
    found = await _in_thread(lambda: service.cancel(store, name, analysis=True))
    return _back(name, "cancelled", int(found["cancelled"]))


async def _in_thread(call: Callable[[], T]) -> T:
    """Run a blocking service call off the event loop."""
    return await run_in_threadpool(call)


def routes() -> list[Route]:
    return [Route("/runs/{name}/retry", retry, methods=["POST"]),
            Route("/runs/{name}/analyze", analyze, methods=["POST"]),
            Route("/runs/{name}/cancel", cancel, methods=["POST"])]
