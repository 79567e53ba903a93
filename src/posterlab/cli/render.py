"""Tables and JSON for run state (status, summary)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from rich.console import Group
from rich.progress_bar import ProgressBar
from rich.table import Table
from sqlalchemy import distinct, func, select
from sqlalchemy.orm import Session

from posterlab.cli.common import Store, console
from posterlab.config import Settings
from posterlab.storage import repository as repo
from posterlab.storage.models import PENDING_STAGES, Poster, Run, utcnow

RATE_WINDOW = 60  # seconds of recent completions used for the speed and the ETA


def run_status(session: Session, run: Run) -> dict[str, Any]:
    """The ``status --json`` object (contract: run, total, counts, face-API figures)."""
    counts = repo.status_counts(session, run.id)
    since = utcnow() - timedelta(seconds=RATE_WINDOW)
    recent, first, last = session.execute(select(
        func.count(), func.min(Poster.updated_at), func.max(Poster.updated_at)).where(
        Poster.run_id == run.id, Poster.status.in_(("done", "failed")),
        Poster.updated_at >= since)).one()
    workers = session.scalar(select(func.count(distinct(Poster.worker))).where(
        Poster.run_id == run.id, Poster.updated_at >= utcnow() - timedelta(minutes=5))) or 0
    pending = sum(counts[s] for s in PENDING_STAGES)
    rate = 0.0
    if recent:  # completions per second over the recent window (ends now, or at the end)
        end = _aware(last) if pending == 0 else utcnow()
        rate = recent / max(1.0, (end - _aware(first)).total_seconds())
    return {
        "run": run.name,
        "mode": run.mode,
        "total": run.total,
        "counts": counts,
        "pending": pending,
        "complete": pending == 0,
        **repo.face_figures(session, run.id),
        "posters_per_second": round(rate, 3),
        "eta_seconds": round(pending / rate, 1) if rate > 0 and pending else None,
        "workers_seen": int(workers),
        "analysis": run.analysis_state,
        "created_at": run.created_at.isoformat() if run.created_at else None,
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
    }


def status_table(status: dict[str, Any]) -> Table:
    table = Table(title=f"run {status['run']} ({status['mode']}, {status['total']} posters)",
                  title_justify="left")
    table.add_column("state")
    table.add_column("posters", justify="right")
    for state, n in status["counts"].items():
        table.add_row(state, str(n))
    table.add_section()
    for key in ("api_calls", "cache_hits", "rate_limited", "retries", "posters_per_second",
                "eta_seconds", "workers_seen", "analysis"):
        value = status[key]
        table.add_row(key.replace("_", " "), "-" if value is None else str(value))
    return table


def watch_view(status: dict[str, Any]) -> Group:
    """The ``status --watch`` screen: a progress bar over the table."""
    finished = status["counts"]["done"] + status["counts"]["failed"]
    eta = status["eta_seconds"]
    line = Table.grid(padding=(0, 1))
    line.add_row(ProgressBar(total=max(1, status["total"]), completed=finished, width=50),
                 f"{finished}/{status['total']}",
                 f"{status['posters_per_second']:.1f}/s",
                 f"ETA {eta:.0f}s" if eta is not None else "")
    return Group(line, status_table(status))


def print_summary(store: Store, run_name: str, settings: Settings) -> None:
    with store.factory() as session:
        run = repo.find_run(session, run_name)
        status = run_status(session, run)
        analysis = run.analysis or {}
    out = console()
    out.print(status_table(status))
    corr = analysis.get("correlations") or []
    if corr:
        table = Table(title="strongest correlations with the rating", title_justify="left")
        for col in ("feature", "n", "pearson_r", "spearman_rho", "p_adjusted"):
            table.add_column(col, justify="left" if col == "feature" else "right")
        ranked = sorted(corr, key=lambda c: -abs(c.get("pearson_r") or 0))[:8]
        for c in ranked:
            table.add_row(c["feature"], str(c["n"]), _f(c.get("pearson_r")),
                          _f(c.get("spearman_rho")), _f(c.get("p_adjusted")))
        out.print(table)
    out.print(f"database: {settings.redacted()['database_url']}")


def _f(value: Any) -> str:
    return "-" if value is None else f"{value:.3f}"


def _aware(value: datetime) -> datetime:
    """SQLite hands timestamps back without their (UTC) zone."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)
