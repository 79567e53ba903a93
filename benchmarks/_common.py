"""What only the benchmarks need: their settings, machine facts, load sampling, tables.

Nothing here is imported by posterlab itself; the scripts run the real ``posterlab``
commands as subprocesses (``python -m posterlab``) and measure them from outside. Those
processes, the services and the manifests are :mod:`posterlab.testing`'s, shared with the
tests (``from posterlab import testing as h``).
"""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from posterlab.testing import children_of, cpu_seconds

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
REDIS = os.environ.get("POSTERLAB_BENCH_REDIS", "redis://127.0.0.1:6379")
# The tests run a redis-server of their own (databases 9-14 of the shared one only where
# redis-server is missing); the benchmarks keep to a database of their own.
REDIS_DB = int(os.environ.get("POSTERLAB_BENCH_REDIS_DB", "15"))
PG = os.environ.get("POSTERLAB_BENCH_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


# ---------------------------------------------------------------- machine


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
    except OSError:
        lscpu = ""
    model = next((line.split(":", 1)[1].strip() for line in lscpu.splitlines()
                  if line.startswith("Model name")), platform.processor())
    return {"nproc": os.cpu_count(), "cpu": model, "python": platform.python_version(),
            "platform": platform.platform()}


class LoadSampler:
    """Samples the 1-minute load average in the background while a benchmark runs."""

    def __init__(self, every: float = 5.0) -> None:
        self.samples: list[float] = [os.getloadavg()[0]]
        self._every = every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.wait(self._every):
            self.samples.append(os.getloadavg()[0])

    def __enter__(self) -> LoadSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.samples.append(os.getloadavg()[0])

    def summary(self) -> dict[str, float]:
        return {"min": round(min(self.samples), 2),
                "median": round(statistics.median(self.samples), 2),
                "max": round(max(self.samples), 2)}


# ---------------------------------------------------------------- processes


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS / VmHWM (kB) of a live process from /proc; empty once it is gone."""
    out: dict[str, int] = {}
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith(("VmRSS:", "VmHWM:")):
                    key, value = line.split(":", 1)
                    out[key] = int(value.split()[0])
    except (FileNotFoundError, ProcessLookupError):
        pass
    return out


def tree_cpu_seconds(pid: int) -> float:
    """CPU seconds of a process, its live children, and the children it has reaped (a
    Celery worker replaces its pool children every few hundred tasks)."""
    return cpu_seconds(pid, reaped=True) + sum(cpu_seconds(kid) for kid in children_of(pid))


def children_cpu_seconds() -> float:
    """CPU seconds of every terminated, waited-for descendant of this process so far."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


# ---------------------------------------------------------------- services


def redis_url(db: int = REDIS_DB) -> str:
    return f"{REDIS}/{db}"


# ---------------------------------------------------------------- output


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain text table, first column left-aligned, the others right-aligned."""
    cells = [[str(h) for h in headers]] + [[_fmt(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = []
    for n, row in enumerate(cells):
        lines.append("  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                               for i, (c, w) in enumerate(zip(row, widths, strict=True))))
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.3g}" if abs(value) < 10 else f"{value:,.1f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return "-" if value is None else str(value)
