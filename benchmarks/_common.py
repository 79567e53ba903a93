"""Helpers shared by the benchmark scripts: paths, subprocesses, machine facts, tables.

Nothing here is imported by posterlab itself; the scripts run the real ``posterlab``
commands as subprocesses (``python -m posterlab``) and measure them from outside.
"""

from __future__ import annotations

import csv
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
REDIS = os.environ.get("POSTERLAB_BENCH_REDIS", "redis://127.0.0.1:6379")
# The test suite uses Redis databases 9-14; the benchmarks keep to their own.
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


def posterlab_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "posterlab", *args]


def env_for(db_url: str, blob_dir: Path | None = None, broker: str | None = None,
            **extra: str) -> dict[str, str]:
    """The environment of a posterlab subprocess: only these POSTERLAB_* settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("POSTERLAB_")}
    env["POSTERLAB_DATABASE_URL"] = db_url
    if blob_dir is not None:
        env["POSTERLAB_BLOB_DIR"] = str(blob_dir)
    if broker:
        env["POSTERLAB_BROKER_URL"] = broker
    env.update(extra)
    return env


def run_cli(*args: str, env: dict[str, str], timeout: float = 3600
            ) -> subprocess.CompletedProcess[str]:
    """Run ``posterlab ARGS``; raise with its output when it fails."""
    proc = subprocess.run(posterlab_cmd(*args), env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"posterlab {' '.join(args)} exited {proc.returncode}:\n"
                           f"{proc.stdout[-3000:]}{proc.stderr[-3000:]}")
    return proc


class Worker:
    """A real ``posterlab worker`` in its own process group, logging to a file."""

    def __init__(self, args: Sequence[str], env: dict[str, str], log: Path) -> None:
        self.log = log
        self._fh = open(log, "wb")
        self.proc = subprocess.Popen(posterlab_cmd("worker", *args), env=env, stdout=self._fh,
                                     stderr=subprocess.STDOUT, start_new_session=True)

    def wait_ready(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.log.read_text(errors="replace")
            if " ready." in text:
                return
            if self.proc.poll() is not None:
                raise RuntimeError(f"worker exited early:\n{text[-3000:]}")
            time.sleep(0.1)
        raise RuntimeError(f"worker not ready in {timeout}s:\n{self.log.read_text()[-3000:]}")

    def stop(self, timeout: float = 60) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self._fh.close()

    def __enter__(self) -> Worker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


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


def cpu_seconds(pid: int, *, reaped: bool = False) -> float:
    """User + system CPU seconds of a live process (0.0 once it is gone); with ``reaped``,
    also those of the children it has waited for (cutime + cstime)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    ticks = int(fields[11]) + int(fields[12])
    if reaped:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / os.sysconf("SC_CLK_TCK")


def tree_cpu_seconds(pid: int) -> float:
    """CPU seconds of a process, its live children, and the children it has reaped (a
    Celery worker replaces its pool children every few hundred tasks)."""
    return cpu_seconds(pid, reaped=True) + sum(cpu_seconds(kid) for kid in children_of(pid))


def descendants_of(pid: int) -> list[int]:
    found: list[int] = []
    todo = children_of(pid)
    while todo:
        kid = todo.pop()
        found.append(kid)
        todo.extend(children_of(kid))
    return found


def run_cli_cpu(*args: str, env: dict[str, str], every: float = 0.2,
                timeout: float = 3600) -> float:
    """Run ``posterlab ARGS``; the CPU seconds of it and all its descendants.

    The process's own CPU (and that of the children it waited for) comes from wait4;
    processes it did not wait for (the pool children of a forkserver, which are the
    forkserver's children) are sampled from /proc every ``every`` seconds, so each adds
    at most ``every`` seconds of unseen CPU.
    """
    proc = subprocess.Popen(posterlab_cmd(*args), env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    stderr: list[bytes] = []
    reader = threading.Thread(target=lambda: stderr.append(proc.stderr.read()))  # type: ignore
    reader.start()
    seen: dict[int, float] = {}
    deadline = time.monotonic() + timeout
    while True:
        for kid in descendants_of(proc.pid):
            seen[kid] = max(seen.get(kid, 0.0), cpu_seconds(kid))
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"posterlab {' '.join(args)} timed out")
        time.sleep(every)
    proc.returncode = os.waitstatus_to_exitcode(status)
    reader.join()
    if proc.returncode != 0:
        raise RuntimeError(f"posterlab {' '.join(args)} exited {proc.returncode}:\n"
                           f"{b''.join(stderr).decode(errors='replace')[-3000:]}")
    # a forkserver outlives the command and is never waited for by it: no double count
    return usage.ru_utime + usage.ru_stime + sum(seen.values())


def children_cpu_seconds() -> float:
    """CPU seconds of every terminated, waited-for descendant of this process so far."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def children_of(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as fh:
            return [int(p) for p in fh.read().split()]
    except FileNotFoundError:
        return []


# ---------------------------------------------------------------- services


def redis_url(db: int = REDIS_DB) -> str:
    return f"{REDIS}/{db}"


def flush_redis(url: str) -> None:
    import redis

    client = redis.Redis.from_url(url)
    client.flushdb()
    client.close()


@contextmanager
def pg_schema(base: str = PG) -> Iterator[str]:
    """A PostgreSQL URL on a fresh schema of its own, dropped afterwards."""
    import sqlalchemy as sa

    schema = f"bench_{uuid.uuid4().hex[:10]}"
    engine = sa.create_engine(base)
    with engine.begin() as conn:
        conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
    try:
        yield f"{base}?options=-csearch_path%3D{schema}"
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
        engine.dispose()


def poster_counts(db_url: str, run: str | None = None) -> dict[str, int]:
    """Posters per status of a run (the latest when ``run`` is None), read directly.

    A cheap read used for polling: a ``posterlab status`` subprocess costs about a
    second of CPU, which on a two-core machine would be taken from the workers.
    """
    import sqlalchemy as sa

    from posterlab.storage.engine import make_engine

    engine = _engines.get(db_url)
    if engine is None:
        engine = _engines[db_url] = make_engine(db_url, readonly=True)
    where = "r.name = :run" if run else "r.id = (select max(id) from runs)"
    sql = sa.text("select p.status, count(*) from posters p join runs r on r.id = p.run_id "
                  f"where {where} group by p.status")
    with engine.connect() as conn:
        return {status: int(n) for status, n in conn.execute(sql, {"run": run})}


_engines: dict[str, Any] = {}


def dispose_engines() -> None:
    for engine in _engines.values():
        engine.dispose()
    _engines.clear()


# ---------------------------------------------------------------- data


def distinct_posters(out: Path, limit: int, data: Path = DATA) -> Path:
    """Copy the first ``limit`` rows of posters/index.csv and their posters to ``out``.

    Every copy gets a few distinct bytes after the JPEG's end, so all files have a
    distinct sha256 (posterlab caches features and faces by sha256, and the shared set
    holds byte-identical duplicates) and decode to the same pixels.
    Returns the manifest (latin-1, as the original).
    """
    src = data / "posters" / "index.csv"
    (out / "posters").mkdir(parents=True, exist_ok=True)
    nonce = uuid.uuid4().hex.encode()
    target = out / "index.csv"
    with open(src, newline="", encoding="latin-1") as fin, \
            open(target, "w", newline="", encoding="latin-1") as fout:
        reader = csv.DictReader(fin)
        writer = csv.DictWriter(fout, fieldnames=reader.fieldnames or [])
        writer.writeheader()
        for i, row in enumerate(reader):
            if i >= limit:
                break
            poster = row["poster_file"]
            body = (data / "posters" / poster).read_bytes()
            (out / poster).write_bytes(body + b"posterlab-bench:" + nonce + b":%d" % i)
            writer.writerow(row)
    return target


def count_csv_rows(path: Path) -> int:
    """Data rows of a latin-1 CSV file (quoted newlines counted correctly)."""
    with open(path, newline="", encoding="latin-1") as fh:
        return sum(1 for _ in csv.reader(fh)) - 1


def manifest_posters(manifest: Path) -> list[Path]:
    with open(manifest, newline="", encoding="latin-1") as fh:
        return [manifest.parent / row["poster_file"] for row in csv.DictReader(fh)]


def fresh_dir(path: Path) -> Path:
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


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
