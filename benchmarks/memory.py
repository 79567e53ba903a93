"""RSS of a real ``posterlab worker`` process after 100, 1,000 and 2,000 posters.

A ``posterlab worker -c 1`` (prefork: one pool child, recycled as deployed) consumes
the per-poster queues (fetch, extract, faces; not ``analysis``, the once-per-run task
that trains the model, so that its memory is not mistaken for a per-poster leak) on a real
Redis (database 15, flushed) and a fresh SQLite database. Once it logs " ready.", the
posters of ../shared/data/posters (copied with distinct bytes so that no cache answers)
are enqueued, and the worker's VmRSS is read from /proc every 0.1 s, along with the
number of posters done (a direct read of the database). The table shows the RSS when
each checkpoint was first reached. ``--pool prefork`` measures the one pool child
instead.

Target: no growth beyond 10 % between the first and the last checkpoint.

    .venv/bin/python benchmarks/memory.py                         # 100, 1,000, 2,000
    .venv/bin/python benchmarks/memory.py --checkpoints 50,200,400

Prints a table, then one JSON line.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import _common as c

from posterlab import testing as h

TARGET_GROWTH = 0.10


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="RSS of one posterlab worker process after N posters (no growth "
                    "beyond 10%%).",
        epilog="example: benchmarks/memory.py --checkpoints 100,500,1000")
    p.add_argument("--checkpoints", default="100,1000,2000",
                   help="posters done at which RSS is read; the last one is the number of "
                        "posters processed (default 100,1000,2000)")
    p.add_argument("--pool", choices=["solo", "prefork"], default="prefork",
                   help="worker pool; prefork (the default, as deployed) measures the worker "
                        "and its pool child together, children being recycled every "
                        "worker_max_tasks_per_child tasks")
    p.add_argument("--data", type=Path, default=c.DATA, help="the shared data folder")
    p.add_argument("--redis-db", type=int, default=c.REDIS_DB,
                   help=f"Redis database to use and flush (default {c.REDIS_DB})")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    checkpoints = sorted(int(x) for x in args.checkpoints.split(","))
    total = checkpoints[-1]
    if not (args.data / "posters" / "index.csv").is_file():
        print(f"no posters at {args.data}/posters; pass --data", file=sys.stderr)
        return 1
    work = Path(tempfile.mkdtemp(prefix="posterlab-memory-"))
    broker = c.redis_url(args.redis_db)
    load = c.LoadSampler()
    readings: dict[int, dict[str, Any]] = {}
    series: list[tuple[float, int, int]] = []
    try:
        manifest = h.sample_manifest(args.data, work / "m", total, distinct=True)
        db = f"sqlite:///{work / 'posterlab.db'}"
        env = h.env_for(db, work / "blobs", broker)
        h.flush_redis(broker)
        h.run_cli("db", "upgrade", env=env)
        worker = h.WorkerProcess(["-c", "1", "--pool", args.pool, "-Q", "fetch,extract,faces",
                           "-n", "bench-memory@%h"], env, work / "worker.log")
        with load, worker:
            worker.wait_ready()
            pid = worker.proc.pid

            def group_rss() -> int | None:
                """RSS of the worker and its pool children (recycled ones included)."""
                main_rss = c.proc_status(pid).get("VmRSS")
                if main_rss is None:
                    return None
                kids = h.children_of(pid) if args.pool == "prefork" else []
                return int(main_rss) + sum(int(c.proc_status(k).get("VmRSS") or 0)
                                           for k in kids)

            ready_kb = group_rss()
            assert ready_kb is not None
            t0 = time.perf_counter()
            h.run_cli("enqueue", str(manifest), "--run", "bench", env=env)
            pending = list(checkpoints)
            while pending:
                counts = h.poster_counts(db, "bench")
                finished = counts.get("done", 0) + counts.get("failed", 0)
                rss = group_rss()
                if rss is None:
                    raise RuntimeError(f"worker process {pid} is gone:\n"
                                       f"{worker.log.read_text()[-3000:]}")
                series.append((time.perf_counter() - t0, finished, rss))
                while pending and finished >= pending[0]:
                    readings[pending.pop(0)] = {"finished": finished, "rss_kb": rss,
                                                "seconds": time.perf_counter() - t0,
                                                "failed": counts.get("failed", 0)}
                time.sleep(0.1)
            hwm_kb = c.proc_status(pid).get("VmHWM", 0)
        h.dispose_engines()
        h.flush_redis(broker)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    first = readings[checkpoints[0]]["rss_kb"]
    last = readings[checkpoints[-1]]["rss_kb"]
    growth = (last - first) / first
    after_first = [rss for _, n, rss in series if n >= checkpoints[0]]
    info = c.machine()
    print(f"posterlab worker -c 1 --pool {args.pool}, queues fetch,extract,faces; "
          f"RSS {ready_kb / 1024:.0f} MB when ready; {info['nproc']} cores, {info['cpu']}; "
          f"load average {load.summary()}")
    rows = [(f"after {cp:,}", r["finished"], round(r["seconds"], 1), r["rss_kb"] / 1024,
             f"{(r['rss_kb'] - first) / first:+.1%}") for cp, r in readings.items()]
    print(c.table(["posters", "seen done", "s since enqueue", "RSS MB", "vs first"], rows))
    print(f"min/max RSS after {checkpoints[0]:,}: {min(after_first) / 1024:.1f} / "
          f"{max(after_first) / 1024:.1f} MB; high-water mark {hwm_kb / 1024:.1f} MB; "
          f"growth {growth:+.1%} (target <= {TARGET_GROWTH:.0%}: "
          f"{'met' if growth <= TARGET_GROWTH else 'MISSED'})")
    print(json.dumps({
        "benchmark": "memory", "pool": args.pool, "ready_mb": round(ready_kb / 1024, 1),
        "checkpoints": {str(cp): {"rss_mb": round(r["rss_kb"] / 1024, 1),
                                  "seen_done": r["finished"], "failed": r["failed"],
                                  "seconds": round(r["seconds"], 1)}
                        for cp, r in readings.items()},
        "min_mb_after_first": round(min(after_first) / 1024, 1),
        "max_mb_after_first": round(max(after_first) / 1024, 1),
        "hwm_mb": round(hwm_kb / 1024, 1), "growth": round(growth, 4),
        "target_growth": TARGET_GROWTH, "meets_target": growth <= TARGET_GROWTH,
        "load_average": load.summary(), "machine": info,
    }))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
