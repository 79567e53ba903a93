"""A run's lifecycle after it started: cancel it, delete it, rename it; empty the queues.

Each function returns one plain dict (what ``--json`` prints), so the CLI, the Python
API and the dashboard share them as they are.
"""

from __future__ import annotations

import contextlib
from typing import Any

from posterlab.config import check_broker_url, redact_url
from posterlab.errors import InputError, PosterlabError
from posterlab.service.inspect import summary
from posterlab.service.runs import analyze_now
from posterlab.service.store import Store
from posterlab.stages import QUEUES
from posterlab.storage import posters, runs
from posterlab.storage.engine import transaction
from posterlab.storage.models import FaceRow, FeatureRow

CANCEL_REASON = "cancelled: the run was cancelled before this poster finished"
MAX_NAME = 200  # the width of runs.name


def cancel(store: Store, run: str | None, *, analysis: bool = True) -> dict[str, Any]:
    """Cancel a run: every waiting poster ends ``cancelled``, and the run is complete.

    Messages already queued for those posters become no-ops; a worker in the middle of
    one finishes it without moving the poster. The analysis then runs on what is done
    (queued for the workers of a distributed run, here for an embedded one), unless
    ``analysis`` is False: it is then ``skipped`` and only ``posterlab analyze`` runs it.

    Returns
    -------
    dict
        :func:`~posterlab.service.inspect.summary` of the run, with ``cancelled`` (how many
        posters this call cancelled).
    """
    with transaction(store.factory) as session:
        found = runs.find_run(session, run)
        cancelled = posters.cancel_pending(session, found.id, reason=CANCEL_REASON)
        due = bool(cancelled) and analysis and runs.claim_analysis(session, found.id,
                                                                    force=True)
        if cancelled and not analysis:
            runs.skip_analysis(session, found.id)
        run_id, mode = found.id, found.mode
    if due and mode == "distributed":
        _queue_analysis(store, run_id)
    elif due:
        analyze_now(store, run_id)
    return {**summary(store, run_id), "cancelled": cancelled}


def _queue_analysis(store: Store, run_id: int) -> None:
    """Publish the analysis for the workers; with the broker down it stays ``queued`` and
    the sweeper (``posterlab status``) publishes it once the broker is back."""
    from kombu.exceptions import OperationalError

    from posterlab.workers.celery_app import create_app
    from posterlab.workers.queues import publish_analysis

    with contextlib.suppress(OperationalError):  # queued in the database all the same
        publish_analysis(create_app(store.settings), run_id)


def delete(store: Store, run: str | None) -> dict[str, Any]:
    """Delete a run's rows (the run and its posters).

    The content-addressed caches stay: features and faces by image, and the poster bytes
    in the blob folder, shared by every run. Messages still queued for the run find no
    poster and do nothing.
    """
    with transaction(store.factory) as session:
        found = runs.find_run(session, run)
        name = found.name
        deleted = runs.delete_run(session, found.id)
    return {"run": name, "deleted": {"runs": 1, "posters": deleted},
            "kept": [FeatureRow.__tablename__, FaceRow.__tablename__, "blobs"],
            "database": store.settings.redacted()["database_url"]}


def rename(store: Store, old: str, new: str) -> dict[str, Any]:
    """Rename the run ``old`` to ``new`` (an error when ``new`` is taken)."""
    if not new.strip() or len(new) > MAX_NAME or new != new.strip():
        raise InputError(f"run name {new!r} cannot be used: give 1 to {MAX_NAME} characters "
                         "without leading or trailing spaces")
    with transaction(store.factory) as session:
        runs.rename_run(session, old, new)
    return {"run": new, "renamed_from": old}


def purge(broker_url: str) -> dict[str, Any]:
    """Empty posterlab's queues on the broker; how many messages each held.

    Posters whose messages are purged stay waiting in the database: cancel or delete
    their run, or ``posterlab status`` re-queues them once they count as lost
    (``POSTERLAB_STUCK_AFTER``).
    """
    from kombu import Connection
    from kombu.exceptions import OperationalError

    check_broker_url(broker_url)
    purged: dict[str, int] = {}
    try:
        with Connection(broker_url, connect_timeout=5) as conn:
            conn.ensure_connection(max_retries=1)
            channel = conn.default_channel
            for queue in QUEUES:
                purged[queue] = int(channel.queue_purge(queue) or 0)
    except OperationalError as exc:
        raise PosterlabError(f"cannot reach the broker at {redact_url(broker_url)} "
                             f"({type(exc).__name__}); check POSTERLAB_BROKER_URL or --broker",
                             code="broker") from None
    return {"broker": redact_url(broker_url), "purged": purged,
            "messages": sum(purged.values())}
