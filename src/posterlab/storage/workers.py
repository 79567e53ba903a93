"""The workers aggregate: each ``posterlab worker`` node's heartbeat, and who is about.

Functions receive the session and never commit by themselves.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from posterlab.storage._sql import dialect_insert
from posterlab.storage.models import Poster, WorkerRow


@dataclass(frozen=True)
class Seen:
    """A worker node as ``posterlab status`` lists it."""

    name: str
    hostname: str
    queues: str
    last_seen: datetime
    posters_last_minute: int


def beat(session: Session, *, name: str, hostname: str, queues: str, pid: int,
         processes: Sequence[str], now: datetime, started_at: datetime) -> None:
    """Record that node ``name`` is alive at ``now`` (inserted on its first beat)."""
    values = {"hostname": hostname, "queues": queues, "pid": pid,
              "processes": list(processes), "last_seen": now}
    stmt = dialect_insert(session, WorkerRow).values(name=name, started_at=started_at,
                                                     **values)
    session.execute(stmt.on_conflict_do_update(index_elements=["name"], set_=values))


def seen_since(session: Session, since: datetime, *, run_id: int | None = None,
               recent: datetime | None = None) -> list[Seen]:
    """Nodes seen at or after ``since``, most recent first, with the posters of run
    ``run_id`` their processes touched at or after ``recent``."""
    nodes = session.scalars(select(WorkerRow).where(WorkerRow.last_seen >= since)
                            .order_by(WorkerRow.last_seen.desc(), WorkerRow.name)).all()
    touched: dict[str, int] = {}
    if run_id is not None and recent is not None and nodes:
        rows = session.execute(
            select(Poster.worker, func.count()).where(
                Poster.run_id == run_id, Poster.updated_at >= recent)
            .group_by(Poster.worker)).all()
        touched = {str(w): int(n) for w, n in rows if w}
    return [Seen(n.name, n.hostname, n.queues, n.last_seen,
                 sum(touched.get(p, 0) for p in n.processes or ())) for n in nodes]
