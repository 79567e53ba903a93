"""Checks before work starts: is everything a run needs there, before any poster moves?

``run``, ``enqueue``, ``worker`` and ``retry`` call :func:`preflight` first. Each check is
cheap (a connection, a ping, one authenticated call, the manifest's first rows) and a
problem is reported with the variable or option that fixes it, as one
:class:`~posterlab.errors.CheckFailed` listing every problem found.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import islice
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError

from posterlab.config import Settings, redact_url
from posterlab.errors import CheckFailed, PosterlabError

TIMEOUT = 5.0  # seconds per check: a service that does not answer in this is down
MANIFEST_ROWS = 5  # rows read to know the manifest is one


@dataclass(frozen=True)
class Needs:
    """What a command is about to use."""

    database: bool = True
    create: bool = False  # an empty database is fine: the command creates its schema
    broker: bool = False
    faces: bool = False
    manifest: Path | None = None
    poster_dir: Path | None = None


def preflight(settings: Settings, needs: Needs) -> None:
    """Run the checks ``needs`` asks for; raise :class:`CheckFailed` naming every problem."""
    problems = [problem for problem in (
        check_manifest(needs.manifest, needs.poster_dir) if needs.manifest else None,
        check_database(settings, create=needs.create) if needs.database else None,
        check_broker(settings) if needs.broker else None,
        check_faces(settings) if needs.faces else None,
    ) if problem]
    if problems:
        raise CheckFailed("; ".join(problems) + " (nothing was started; --skip-checks "
                          "skips these checks)")


def check_manifest(manifest: Path, poster_dir: Path | None) -> str | None:
    """Whether the manifest's header and first rows can be read."""
    from posterlab.manifest import read_manifest

    if not manifest.is_file():
        return f"manifest {manifest} does not exist or is not a file (the MANIFEST argument)"
    try:
        with read_manifest(manifest, poster_dir=poster_dir) as refs:
            first = list(islice(refs, MANIFEST_ROWS))
    except PosterlabError as exc:
        return f"manifest {manifest}: {exc}"
    except OSError as exc:
        return f"manifest {manifest} cannot be read: {exc.strerror}"
    if not first:
        return f"manifest {manifest} has no data rows (empty file or header only)"
    return None


def check_database(settings: Settings, *, create: bool) -> str | None:
    """Whether the database answers and its schema is this version's (or, with
    ``create``, empty: the command then creates it). Creates nothing."""
    from posterlab.service.store import sqlite_path
    from posterlab.storage.engine import make_engine
    from posterlab.storage.schema import current_revision, head_revision

    url, fix = redact_url(settings.database_url), "POSTERLAB_DATABASE_URL or --db"
    path = sqlite_path(settings.database_url)
    if path is not None and not path.is_file():
        return None if create else _missing(settings.database_url)
    try:
        engine = make_engine(settings.database_url, readonly=True)
        try:
            current = current_revision(engine)
            empty = current is None and not _has_tables(engine)
        finally:
            engine.dispose()
    except PosterlabError as exc:
        return f"{exc} ({fix})"
    except (SQLAlchemyError, OSError) as exc:  # server down, bad credentials, no such db
        return f"cannot open the database {url} ({type(exc).__name__}); check {fix}"
    if current == head_revision() or (empty and create):
        return None
    return (f"the database {url} is at schema revision {current or 'none (empty)'}, not "
            f"{head_revision()}: run `posterlab db upgrade --db URL` ({fix})")


def _missing(url: str) -> str:
    from posterlab.service.store import require_database

    try:
        require_database(url)
    except PosterlabError as exc:
        return f"{exc}; or create it with `posterlab db upgrade`"
    return ""


def _has_tables(engine: object) -> bool:
    from sqlalchemy import inspect

    return bool(inspect(engine).get_table_names())


def check_broker(settings: Settings) -> str | None:
    """Whether the Redis broker answers a PING."""
    import redis

    try:
        client = redis.Redis.from_url(settings.broker_url, socket_timeout=TIMEOUT,
                                      socket_connect_timeout=TIMEOUT)
        try:
            client.ping()
        finally:
            client.close()
    except (redis.RedisError, ValueError, OSError) as exc:
        return (f"cannot reach the broker at {redact_url(settings.broker_url)} "
                f"({type(exc).__name__}); start Redis or fix POSTERLAB_BROKER_URL or --broker")
    return None


def check_faces(settings: Settings) -> str | None:
    """Whether the face API answers and takes the key: one detect call with no image.

    The API checks the key before the body, so a wrong key answers 401/403 and a good one
    400 (no image: nothing detected, nothing billed) or 429.
    """
    if settings.face_provider == "local" or not settings.face_api_url:
        return None
    import requests

    from posterlab.faces.azure import detect_url

    url = redact_url(settings.face_api_url)
    headers = {"Content-Type": "application/octet-stream"}
    if settings.face_api_key:
        headers["Ocp-Apim-Subscription-Key"] = settings.face_api_key
    try:
        answer = requests.post(detect_url(settings.face_api_url), data=b"", headers=headers,
                               timeout=TIMEOUT, allow_redirects=False)
    except (requests.RequestException, ValueError) as exc:
        return (f"cannot reach the face API at {url} ({type(exc).__name__}); check "
                "POSTERLAB_FACE_API_URL (or use --face-provider local)")
    if answer.status_code in (401, 403):
        which = "is not accepted" if settings.face_api_key else "is missing"
        return (f"the face API at {url} refused the call ({answer.status_code}): the key "
                f"{which}; set POSTERLAB_FACE_API_KEY")
    if answer.status_code == 404:
        return (f"the face API at {url} has no detect endpoint (404); check "
                "POSTERLAB_FACE_API_URL")
    return None
