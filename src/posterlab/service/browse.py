"""What the dashboard shows beyond ``status``: workers, queues, pages of posters, one poster.

Plain data in, plain data out, like the rest of the application layer; the SQL is in
:mod:`posterlab.storage.browse`.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from posterlab.config import Settings
from posterlab.errors import InputError, StorageError
from posterlab.service.store import Store
from posterlab.stages import QUEUES
from posterlab.storage import browse, queries, runs
from posterlab.storage.blobs import BlobStore
from posterlab.storage.models import utcnow

WORKER_WINDOW = queries.WORKER_WINDOW  # a worker that touched a poster since is listed
BROKER_TIMEOUT = 0.5  # seconds: a page must stay quick when the broker is down
MAX_PAGE = 500  # posters per page of the API
SPEED_WINDOW = timedelta(minutes=10)  # the speed chart's span, up to the run's last poster
SPEED_BUCKETS = 60
SPEED_ROWS = 200_000  # posters read at most for it (33 000 a minute over ten minutes)


def workers(store: Store, run_name: str | None = None, *, now: datetime | None = None
            ) -> list[dict[str, Any]]:
    """Hosts that worked on the run lately, in the shape of ``status``'s heartbeats
    (``name``, ``hostname``, ``queues``, ``posters_last_minute``, ``last_seen``), most
    recent first, for runs whose workers send no heartbeat (the embedded runner).

    Read from the posters' ``worker`` and ``updated_at`` (processes sign their claims
    ``host:pid``) over the last :data:`WORKER_WINDOW` only; ``queues`` is unknown there.
    """
    as_of = utcnow() if now is None else now
    with store.factory() as session:
        run = runs.find_run(session, run_name)
        found = browse.worker_activity(session, run.id, since=as_of - WORKER_WINDOW,
                                       minute_ago=as_of - timedelta(minutes=1))
    hosts: dict[str, dict[str, Any]] = {}
    for row in found:
        host = row["worker"].rsplit(":", 1)[0]
        entry = hosts.setdefault(host, {"name": host, "hostname": host, "queues": [],
                                        "posters_last_minute": 0,
                                        "last_seen": row["last_seen"]})
        entry["posters_last_minute"] += row["finished_last_minute"]
        entry["last_seen"] = max(entry["last_seen"], row["last_seen"])
    return [{**h, "last_seen": h["last_seen"].isoformat()} for h in hosts.values()]


def speed(store: Store, run_name: str | None = None, *, now: datetime | None = None
          ) -> dict[str, Any]:
    """Posters ended per second over the run's last :data:`SPEED_WINDOW` (to now while it
    runs, to its end once finished), in :data:`SPEED_BUCKETS` buckets: ``{"run",
    "bucket_seconds", "points": [{"t": the bucket's end in Unix seconds, "rate"}]}``."""
    as_of = utcnow() if now is None else now
    with store.factory() as session:
        run = runs.find_run(session, run_name)
        until = min(as_of, run.finished_at or as_of)
        since = max(run.created_at, until - SPEED_WINDOW)
        times = browse.ended_times(session, run.id, since=since, until=until,
                                   limit=SPEED_ROWS)
    return {"run": run.name, **speed_buckets(times, since, until, SPEED_BUCKETS)}


def speed_buckets(times: list[datetime], since: datetime, until: datetime, buckets: int
                  ) -> dict[str, Any]:
    """``times`` counted into ``buckets`` equal spans of ``since``..``until``, as rates.

    >>> t0 = datetime(2026, 1, 1)
    >>> speed_buckets([t0 + timedelta(seconds=s) for s in (1, 2, 3, 9)], t0,
    ...               t0 + timedelta(seconds=10), 2)["points"][0]["rate"]
    0.6
    """
    span = max((until - since).total_seconds(), 1.0)
    width = span / buckets
    counts = [0] * buckets
    for t in times:
        counts[min(buckets - 1, max(0, int((t - since).total_seconds() / width)))] += 1
    start = since.timestamp()
    return {"bucket_seconds": round(width, 3),
            "points": [{"t": round(start + (i + 1) * width, 3), "rate": round(n / width, 3)}
                       for i, n in enumerate(counts)]}


def queue_depths(settings: Settings) -> dict[str, int] | None:
    """Messages waiting in each posterlab queue of the broker; None when unreachable."""
    import redis

    client = redis.Redis.from_url(settings.broker_url, socket_timeout=BROKER_TIMEOUT,
                                  socket_connect_timeout=BROKER_TIMEOUT)
    try:
        return {name: int(client.llen(name)) for name in QUEUES}
    except (redis.RedisError, OSError, ValueError):
        return None
    finally:
        client.close()


def posters(store: Store, run_name: str | None = None, *, offset: int = 0, limit: int = 50,
            order: str = "id", done_only: bool = False) -> dict[str, Any]:
    """A page of the run's posters: ``{"run", "offset", "limit", "order", "posters"}``.

    Raises
    ------
    InputError
        For a negative offset, a limit outside 1..MAX_PAGE, or an unknown order.
    """
    if offset < 0 or not 1 <= limit <= MAX_PAGE:
        raise InputError(f"offset must be >= 0 and limit within 1..{MAX_PAGE}")
    if order not in browse.POSTER_ORDERS:
        raise InputError(f"order must be one of {', '.join(browse.POSTER_ORDERS)}")
    with store.factory() as session:
        run = runs.find_run(session, run_name)
        page = browse.posters_page(session, run.id, offset=offset, limit=limit, order=order,
                                   done_only=done_only)
    return {"run": run.name, "offset": offset, "limit": limit, "order": order,
            "posters": [_jsonable(p) for p in page]}


def poster(store: Store, run_name: str, movie: str) -> dict[str, Any]:
    """One poster of the run with its features, its face boxes and its image's size.

    Raises
    ------
    StorageError
        When the run has no such poster.
    """
    with store.factory() as session:
        run = runs.find_run(session, run_name)
        found = browse.poster(session, run, movie)
    if found is None:
        raise StorageError(f"run {run_name!r} has no poster {movie!r}; its page of "
                           "posters lists them")
    found["image_size"] = image_size(store, found["sha256"]) if found["sha256"] else None
    return _jsonable(found)


def blob_file(store: Store, sha256: str) -> Path | None:
    """The blob store's file for these bytes, or None (an invalid or unknown sha256).

    Only a name of 64 hex digits is looked up, and only inside the blob folder.
    """
    try:
        path = BlobStore(store.settings.blob_dir).path(sha256)
    except ValueError:
        return None
    return path if path.is_file() else None


def image_size(store: Store, sha256: str) -> tuple[int, int] | None:
    """(width, height) of a stored image, read from its header; None when unreadable."""
    from PIL import Image, UnidentifiedImageError

    path = blob_file(store, sha256)
    if path is None:
        return None
    try:
        with Image.open(path) as image:
            return image.size
    except (OSError, UnidentifiedImageError):
        return None


def _jsonable(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in row.items()}
