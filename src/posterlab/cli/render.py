"""Tables and screens for the terminal: formatting only, over what the service returns.

Every text that comes from a manifest or an error is escaped: a title like ``[/bold]``
is shown as it is, never read as markup.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.console import Group
from rich.markup import escape
from rich.progress_bar import ProgressBar
from rich.table import Table

from posterlab.cli.common import console
from posterlab.stages import TERMINAL

if TYPE_CHECKING:
    from posterlab.service.store import Store

STATUS_FIGURES = ("api_calls", "cache_hits", "rate_limited", "retries", "posters_per_second",
                  "eta_seconds", "workers_seen")


def number(value: Any) -> str:
    return "-" if value is None else f"{value:.3f}"


def status_table(status: dict[str, Any]) -> Table:
    table = Table(title=f"run {escape(status['run'])} ({status['mode']}, "
                        f"{status['total']} posters)", title_justify="left")
    table.add_column("state")
    table.add_column("posters", justify="right")
    for state, n in status["counts"].items():
        table.add_row(state, str(n))
    table.add_section()
    for key in STATUS_FIGURES:
        value = status[key]
        table.add_row(key.replace("_", " "), "-" if value is None else str(value))
    table.add_row("analysis state", str(status["analysis"]))
    return table


def workers_table(status: dict[str, Any]) -> Table:
    """The worker nodes seen lately: host, queues, posters of this run in the last minute."""
    table = Table(title="workers", title_justify="left")
    table.add_column("worker", overflow="fold")
    table.add_column("host", overflow="fold")
    table.add_column("queues", overflow="fold")
    table.add_column("posters (last minute)", justify="right")
    table.add_column("last seen", no_wrap=True)
    for w in status.get("workers", []):
        table.add_row(escape(w["name"]), escape(w["hostname"]), ",".join(w["queues"]),
                      str(w["posters_last_minute"]), w["last_seen"][11:19] + " UTC")
    return table


def status_view(status: dict[str, Any]) -> Group:
    """``posterlab status``: the counts, and the workers when any were seen."""
    parts: list[Any] = [status_table(status)]
    if status.get("workers"):
        parts.append(workers_table(status))
    return Group(*parts)


def watch_view(status: dict[str, Any]) -> Group:
    """The ``status --watch`` screen: a progress bar over the table."""
    finished = sum(status["counts"].get(end, 0) for end in TERMINAL)
    eta = status["eta_seconds"]
    line = Table.grid(padding=(0, 1))
    line.add_row(ProgressBar(total=max(1, status["total"]), completed=finished, width=50),
                 f"{finished}/{status['total']}",
                 f"{status['posters_per_second']:.1f}/s",
                 f"ETA {eta:.0f}s" if eta is not None else "")
    return Group(line, status_view(status))


def failures_table(found: dict[str, Any]) -> Table:
    table = Table(title=f"failures of run {escape(found['run'])}", title_justify="left")
    table.add_column("reason", overflow="fold")
    table.add_column("posters", justify="right")
    table.add_column("examples (movie, row: error)", overflow="fold")
    for g in found["groups"]:
        ex = "\n".join(escape(f"{e['movie']}, row {e['row']}: {e['error']}")
                       for e in g["examples"])
        table.add_row(escape(g["code"] or "?"), str(g["count"]), ex)
    return table


def runs_table(found: list[dict[str, Any]]) -> Table:
    table = Table(title="runs", title_justify="left")
    for col in ("run", "mode", "total", "done", "failed", "pending", "created",
                "analysis state"):
        table.add_column(col, overflow="fold")
    for r in found:
        table.add_row(escape(r["run"]), r["mode"], str(r["total"]), str(r["counts"]["done"]),
                      str(r["counts"]["failed"]), str(r["pending"]),
                      r["created_at"][:16].replace("T", " "), r["analysis"])
    return table


def print_summary(store: Store, run_name: str) -> None:
    """What ``posterlab run`` prints at its end: the status and the strongest correlations."""
    from posterlab.service.inspect import status

    out = console()
    out.print(status_table(status(store, run_name, sweep_first=False)))
    analysis = store.find_run(run_name).analysis or {}
    corr = analysis.get("correlations") or []
    if corr:
        out.print(correlations_table(corr))
    out.print(f"database: {store.settings.redacted()['database_url']}")


def correlations_table(corr: list[dict[str, Any]], top: int = 8) -> Table:
    table = Table(title="strongest correlations with the rating", title_justify="left")
    for col in ("feature", "n", "pearson_r", "spearman_rho", "p_adjusted"):
        table.add_column(col, justify="left" if col == "feature" else "right")
    for c in sorted(corr, key=lambda c: -abs(c.get("pearson_r") or 0))[:top]:
        table.add_row(escape(str(c["feature"])), str(c["n"]), number(c.get("pearson_r")),
                      number(c.get("spearman_rho")), number(c.get("p_adjusted")))
    return table
