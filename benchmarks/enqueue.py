"""Rows per second and peak memory of ``posterlab enqueue``, beside a plain apply_async loop.

The 40,108 rows of ../shared/data/movie_genre/MovieGenre.csv are repeated to ``--rows``
rows (default 1,000,000) with synthesised distinct ids (1, 2, 3, ...), written streaming
to a temp CSV (latin-1, like the original). ``posterlab enqueue`` then reads it into a
fresh database (SQLite file, or a fresh PostgreSQL schema with ``--db postgresql``):
every row is inserted into the database and every queued poster published to Redis
(database 15, flushed before and after) in messages of 64 ids. No worker runs, so the
messages just wait in Redis. Measured from outside: the subprocess's wall clock
(start-up included) and its peak RSS (VmHWM, which the kernel reports for the child
through wait4's ru_maxrss; /proc/<pid>/status is also polled as a cross-check).

Also measured: the real MovieGenre.csv as it is (40,108 rows: 725 without a poster URL are
refused at reading, 593 repeated ids are stored once), and, for comparison, the plain
loop a course student writes: one ``app.tasks['posterlab.extract'].apply_async(args=[i])``
per row on the same Redis and the same Celery app (``create_app(settings)``), timed on
``--sample`` rows (default 20,000) and extrapolated; it touches no database.

Targets: enqueue at least 10x the plain loop's rows/s; peak RSS under 200 MB for 1M rows
and flat (about the same at 40k and 1M rows).

    .venv/bin/python benchmarks/enqueue.py                    # 1M rows into SQLite
    .venv/bin/python benchmarks/enqueue.py --db postgresql    # into PostgreSQL
    .venv/bin/python benchmarks/enqueue.py --rows 200000 --repeat 3

Prints a table, then one JSON line.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import _common as c

from posterlab import testing as h

TARGET_RATIO = 10.0
TARGET_PEAK_MB = 200.0


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Rows/s and peak RSS of `posterlab enqueue` on MovieGenre.csv repeated "
                    "to N rows, beside a plain one-apply_async-per-row loop.",
        epilog="example: benchmarks/enqueue.py --rows 200000 --db postgresql")
    p.add_argument("--rows", type=int, default=1_000_000,
                   help="rows of the synthetic manifest (default 1,000,000)")
    p.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite",
                   help="the store enqueue writes to (default sqlite)")
    p.add_argument("--sample", type=int, default=20_000,
                   help="rows of the plain apply_async loop (default 20,000)")
    p.add_argument("--repeat", type=int, default=1,
                   help="repetitions of each measurement; medians reported (default 1)")
    p.add_argument("--data", type=Path, default=c.DATA, help="the shared data folder")
    p.add_argument("--redis-db", type=int, default=c.REDIS_DB,
                   help=f"Redis database to use and flush (default {c.REDIS_DB})")
    p.add_argument("--pg", default=c.PG, help="PostgreSQL base URL (a schema is created)")
    return p.parse_args(argv)


def synthesise(source: Path, out: Path, rows: int) -> int:
    """``source`` repeated to ``rows`` rows with ids 1..rows, written streaming."""
    written = 0
    with open(out, "w", newline="", encoding="latin-1") as fout:
        writer = None
        while written < rows:
            with open(source, newline="", encoding="latin-1") as fin:
                reader = csv.reader(fin)
                header = next(reader)
                if writer is None:
                    writer = csv.writer(fout)
                    writer.writerow(header)
                id_col = header.index("imdbId")
                for row in reader:
                    if written >= rows:
                        break
                    written += 1
                    row[id_col] = str(written)
                    writer.writerow(row)
    return written


@contextmanager
def database(kind: str, folder: Path, pg_base: str) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{h.fresh_dir(folder) / 'posterlab.db'}"
    else:
        with h.pg_schema(pg_base, prefix="bench") as url:
            yield url


def enqueue(manifest: Path, db_url: str, broker: str, folder: Path) -> dict[str, Any]:
    """Run ``posterlab enqueue``; wall seconds, peak RSS, posters stored, messages queued."""
    import redis

    h.flush_redis(broker)
    env = h.env_for(db_url, folder / "blobs", broker)
    peak_polled = 0
    t0 = time.perf_counter()
    proc = subprocess.Popen(h.posterlab_cmd("enqueue", str(manifest), "--run", "bench"),
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out: dict[str, bytes] = {}
    readers = [threading.Thread(target=lambda name=name, fh=fh: out.__setitem__(name, fh.read()))
               for name, fh in (("stdout", proc.stdout), ("stderr", proc.stderr))]
    for t in readers:
        t.start()
    status = None
    while status is None:
        peak_polled = max(peak_polled, c.proc_status(proc.pid).get("VmHWM", 0))
        pid, wait_status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            status = wait_status
            break
        time.sleep(0.05)
    seconds = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    for t in readers:
        t.join()
    if proc.returncode != 0:
        raise RuntimeError(f"posterlab enqueue exited {proc.returncode}:\n"
                           f"{out['stderr'].decode(errors='replace')[-3000:]}")
    client = redis.Redis.from_url(broker)
    messages = int(client.llen("fetch"))
    client.close()
    stored = sum(h.poster_counts(db_url, "bench").values())
    h.dispose_engines()
    h.flush_redis(broker)
    text = out["stderr"].decode(errors="replace")
    summary = text[text.rfind("run "):].split() if "run " in text else []
    return {"seconds": seconds, "peak_mb": usage.ru_maxrss / 1024,
            "peak_polled_mb": peak_polled / 1024, "posters": stored, "messages": messages,
            "summary": " ".join(summary)}


def plain_loop(broker: str, sample: int) -> dict[str, Any]:
    """One apply_async per row on posterlab's own Celery app and the same Redis."""
    from posterlab.config import Settings
    from posterlab.workers.app import create_app

    h.flush_redis(broker)
    app = create_app(Settings(broker_url=broker))
    task = app.tasks["posterlab.extract"]
    task.apply_async(args=[0])  # connect before the clock starts
    t0 = time.perf_counter()
    for i in range(1, sample + 1):
        task.apply_async(args=[i])
    seconds = time.perf_counter() - t0
    app.close()
    h.flush_redis(broker)
    return {"seconds": seconds, "rows": sample, "rows_per_s": sample / seconds}


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    source = args.data / "movie_genre" / "MovieGenre.csv"
    if not source.is_file():
        print(f"no {source}; pass --data", file=sys.stderr)
        return 1
    broker = c.redis_url(args.redis_db)
    work = Path(tempfile.mkdtemp(prefix="posterlab-enqueue-"))
    big = work / f"movies-{args.rows}.csv"
    load = c.LoadSampler()
    runs: dict[str, list[dict[str, Any]]] = {"real": [], "big": []}
    plains: list[dict[str, Any]] = []
    try:
        t0 = time.perf_counter()
        rows = synthesise(source, big, args.rows)
        print(f"wrote {rows:,} rows to {big} ({big.stat().st_size / 1e6:.0f} MB) in "
              f"{time.perf_counter() - t0:.1f} s", file=sys.stderr)
        real_rows = h.count_csv_rows(source)
        with load:
            for rep in range(args.repeat):
                for name, manifest in (("real", source), ("big", big)):
                    print(f"[{rep + 1}/{args.repeat}] enqueue {name} ({args.db}) ...",
                          file=sys.stderr, flush=True)
                    folder = work / f"{name}-{rep}"
                    with database(args.db, folder, args.pg) as db_url:
                        r = enqueue(manifest, db_url, broker, folder)
                    print(f"    {r['seconds']:.1f} s, peak {r['peak_mb']:.0f} MB; {r['summary']}",
                          file=sys.stderr, flush=True)
                    runs[name].append(r)
                print(f"[{rep + 1}/{args.repeat}] plain apply_async loop ...", file=sys.stderr,
                      flush=True)
                plains.append(plain_loop(broker, args.sample))
    finally:
        shutil.rmtree(work, ignore_errors=True)

    plain_rate = c.median([p["rows_per_s"] for p in plains])
    results: dict[str, dict[str, Any]] = {}
    for name, n in (("real", real_rows), ("big", rows)):
        seconds = c.median([r["seconds"] for r in runs[name]])
        results[name] = {
            "rows": n, "seconds": round(seconds, 2),
            "seconds_all": [round(r["seconds"], 2) for r in runs[name]],
            "rows_per_s": round(n / seconds, 1),
            "vs_plain": round(n / seconds / plain_rate, 2),
            "peak_mb": round(max(r["peak_mb"] for r in runs[name]), 1),
            "peak_polled_mb": round(max(r["peak_polled_mb"] for r in runs[name]), 1),
            "posters_stored": runs[name][-1]["posters"],
            "messages": runs[name][-1]["messages"],
        }
    big_r = results["big"]
    meets = {"ratio": big_r["vs_plain"] >= TARGET_RATIO,
             "peak_mb": big_r["peak_mb"] < TARGET_PEAK_MB}
    info = c.machine()
    print(f"posterlab enqueue into {args.db}, Redis db {args.redis_db}; {info['nproc']} cores, "
          f"{info['cpu']}; load average {load.summary()}; repeat {args.repeat}")
    table_rows: list[tuple[Any, ...]] = [
        (f"enqueue {name} ({args.db})", r["rows"], r["seconds"], r["rows_per_s"],
         f"{r['vs_plain']:.1f}x", r["peak_mb"], r["posters_stored"], r["messages"])
        for name, r in results.items()]
    plain_s = args.sample / plain_rate
    table_rows.append((f"plain apply_async x{args.sample:,}", args.sample, plain_s,
                       round(plain_rate, 1), "1.0x", None, 0, args.sample))
    table_rows.append((f"plain, extrapolated to {rows:,}", rows, rows / plain_rate,
                       round(plain_rate, 1), "1.0x", None, 0, rows))
    print(c.table(["what", "rows", "wall s", "rows/s", "vs plain", "peak MB",
                   "posters in db", "messages"], table_rows))
    print(f"targets: >= {TARGET_RATIO:g}x the plain loop at {rows:,} rows "
          f"({'met' if meets['ratio'] else 'MISSED'}), peak RSS < {TARGET_PEAK_MB:g} MB "
          f"({'met' if meets['peak_mb'] else 'MISSED'}; {results['real']['peak_mb']} MB at "
          f"{real_rows:,} rows)")
    print(json.dumps({
        "benchmark": "enqueue", "db": args.db, "rows": rows, "results": results,
        "plain": {"sample": args.sample, "rows_per_s": round(plain_rate, 1),
                  "extrapolated_seconds": round(rows / plain_rate, 1)},
        "targets": {"ratio": TARGET_RATIO, "peak_mb": TARGET_PEAK_MB}, "meets_targets": meets,
        "load_average": load.summary(), "machine": info,
    }))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
