"""The cost of one refresh of a run's dashboard page and of its JSON, on a run of 1M posters.

A run of ``--rows`` posters (default 1,000,000) is written through the storage layer
(``posters.add_posters`` in batches, as ``enqueue`` does), then moved to a mid-run mix by
plain UPDATEs (the triggers of ``run_counts`` see them as any write): 60% done, 2% failed
under three reasons, 10% at extract, 5% at faces, the rest at fetch, with the last
minute's completions spread over four workers (3,000 of them, 50 posters/s) and every
other poster last touched an hour ago. A real ``posterlab dashboard`` then
serves it on a free port, and each URL is fetched ``--repeat`` times over HTTP:

- ``/api/runs/NAME/live``: what a run's page polls every two seconds (status, workers,
  queue depths);
- ``/api/runs/NAME``: the ``status --json`` object;
- ``/runs/NAME``: the whole HTML page (its first load).

Beside them: the counts read from ``run_counts`` against the same counts made by scanning
the run's posters (what ``status`` did before), and the write cost of the triggers
(inserting ``--write-rows`` posters with the triggers on and off).

Target: one refresh (the live JSON) and the page each under 200 ms at 1M posters.

    .venv/bin/python benchmarks/dashboard.py                   # SQLite and PostgreSQL
    .venv/bin/python benchmarks/dashboard.py --db sqlite --rows 200000

Prints a table per database, then one JSON line.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import _common as c
from sqlalchemy import bindparam, text

from posterlab import testing as h
from posterlab.manifest import PosterRef
from posterlab.storage import counts, posters, queries, runs
from posterlab.storage.engine import make_engine, session_factory, transaction
from posterlab.storage.models import Poster, utcnow
from posterlab.storage.schema import ensure_schema

TARGET_MS = 200.0
BATCH = 10_000  # rows per add_posters call (enqueue's own batches are of this order)
RUN = "bench"


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Refresh time of a run's dashboard at 1M posters.")
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--repeat", type=int, default=20, help="fetches of each URL")
    p.add_argument("--write-rows", type=int, default=100_000,
                   help="rows inserted with the triggers on, then off (write cost)")
    p.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="both")
    p.add_argument("--fill", choices=("storage", "sql"), default="storage",
                   help="write the big run through posters.add_posters (default), or with one "
                        "INSERT .. SELECT (much faster on a loaded machine; the triggers "
                        "count it all the same)")
    return p.parse_args(argv)


@contextmanager
def database(kind: str, folder: Path) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{folder / 'dashboard.db'}"
    else:
        with h.pg_schema(c.PG, prefix="bench") as url:
            yield url


def refs(start: int, n: int) -> list[PosterRef]:
    return [PosterRef(row=i, imdb_id=str(10_000_000 + i), title=f"Movie {i}", rating=5.0,
                      genres=("Drama",), source=f"/p/{i}.jpg") for i in range(start, start + n)]


def fill(url: str, rows: int, name: str = RUN) -> float:
    """Insert ``rows`` posters into run ``name`` through the storage layer; seconds taken."""
    engine = make_engine(url)
    ensure_schema(engine)
    factory = session_factory(engine)
    with transaction(factory) as s:
        run, _ = runs.get_or_create_run(s, name=name, manifest="m.csv", mode="distributed",
                                        feature_version="v1", face_key="local", settings={})
    t0 = time.perf_counter()
    for start in range(0, rows, BATCH):
        with transaction(factory) as s:
            posters.add_posters(s, run.id, refs(start, min(BATCH, rows - start)))
    took = time.perf_counter() - t0
    engine.dispose()
    return took


def fill_sql(url: str, rows: int) -> float:
    """The run of :func:`fill` written by one INSERT .. SELECT; seconds taken."""
    engine = make_engine(url)
    ensure_schema(engine)
    factory = session_factory(engine)
    with transaction(factory) as s:
        run, _ = runs.get_or_create_run(s, name=RUN, manifest="m.csv", mode="distributed",
                                        feature_version="v1", face_key="local", settings={})
    seq = ("WITH RECURSIVE seq(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM seq "
           "WHERE i < :n - 1) " if engine.dialect.name == "sqlite" else "")
    source = "seq" if seq else "generate_series(0, :n - 1) AS seq(i)"
    t0 = time.perf_counter()
    with engine.begin() as conn:
        conn.execute(text(
            f"{seq}INSERT INTO posters (run_id, movie_key, imdb_id, row, title, score, genres, "
            "source, status, attempts, api_calls, cache_hits, rate_limited, retries, "
            "created_at, updated_at) "
            f"SELECT :r, CAST(10000000 + i AS TEXT), CAST(10000000 + i AS TEXT), i, "
            f"'Movie ' || i, 5.0, 'Drama', '/p/' || i || '.jpg', 'fetch', 0, 0, 0, 0, 0, "
            f":now, :now FROM {source}").bindparams(
            bindparam("now", type_=Poster.created_at.type)),
            {"r": run.id, "n": rows, "now": utcnow()})
        conn.execute(text("UPDATE runs SET total = :n, pending = :n WHERE id = :r"),
                     {"n": rows, "r": run.id})
    took = time.perf_counter() - t0
    engine.dispose()
    return took


def mid_run(url: str, rows: int) -> None:
    """Move the run to a mid-run mix, the last minute's completions by four workers."""
    engine = make_engine(url)
    now = utcnow()
    recent = now - timedelta(seconds=30)
    cuts = {"done": 0.60, "failed": 0.62, "extract": 0.72, "faces": 0.77}
    with engine.begin() as conn:
        run_id = conn.execute(text("SELECT id FROM runs WHERE name = :n"), {"n": RUN}).scalar()
        base = conn.execute(text("SELECT min(id) FROM posters WHERE run_id = :r"),
                            {"r": run_id}).scalar()
        # a run going for an hour: only the last minutes' posters are in the live windows
        conn.execute(text("UPDATE posters SET updated_at = :t WHERE run_id = :r").bindparams(
            bindparam("t", type_=Poster.updated_at.type)),
            {"t": now - timedelta(hours=1), "r": run_id})
        lo = base
        for status, cut in cuts.items():
            hi = base + int(rows * cut)
            code = "http_404" if status == "failed" else None
            conn.execute(text(
                "UPDATE posters SET status = :s, error_code = :c, error = :e, api_calls = 1 "
                "WHERE run_id = :r AND id >= :lo AND id < :hi"),
                {"s": status, "c": code, "e": f"{code}: not found" if code else None,
                 "r": run_id, "lo": lo, "hi": hi})
            lo = hi
        conn.execute(text(
            "UPDATE posters SET updated_at = :t, worker = 'host' || (id % 4) "
            "WHERE run_id = :r AND id >= :lo AND id < :hi").bindparams(
            bindparam("t", type_=Poster.updated_at.type)),
            {"t": recent, "r": run_id, "lo": base + int(rows * 0.60) - 3000,
             "hi": base + int(rows * 0.60)})
        conn.execute(text(
            "UPDATE runs SET total = :n, pending = :p WHERE id = :r"),
            {"n": rows, "p": rows - int(rows * 0.62), "r": run_id})
    engine.dispose()


def analyze_tables(url: str) -> None:
    """ANALYZE, as autovacuum does after a bulk change. Without it PostgreSQL plans the
    live window (``recent_finished``) on the statistics of an empty table, by the status
    index: measured ~1 s per refresh at 1M posters instead of tens of ms."""
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(text("ANALYZE"))
    engine.dispose()


def timed_ms(call: Any, repeat: int) -> dict[str, float]:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        call()
        times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    return {"median_ms": round(statistics.median(times), 1),
            "p95_ms": round(times[max(0, int(len(times) * 0.95) - 1)], 1),
            "max_ms": round(times[-1], 1)}


def counts_vs_scan(url: str, repeat: int) -> dict[str, Any]:
    engine = make_engine(url)
    factory = session_factory(engine)
    with factory() as s:
        run_id = runs.find_run(s, RUN).id
    with transaction(factory) as s:
        t0 = time.perf_counter()
        counts.compact(s, run_id)  # the first reader folds the deltas of the inserts
        fold_ms = (time.perf_counter() - t0) * 1000
    with factory() as s:
        table = timed_ms(lambda: counts.read_counts(s, run_id), repeat)
        scan = timed_ms(lambda: queries.count_posters(s, run_id), max(3, repeat // 4))
        same = counts.read_counts(s, run_id).by_status == queries.count_posters(s, run_id)
    engine.dispose()
    return {"first_fold_ms": round(fold_ms, 1), "run_counts": table, "scan": scan,
            "agree": same}


def refreshes(url: str, folder: Path, repeat: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    with h.RedisServer(folder / "redis", durable=False) as redis, \
            h.DashboardServer([], h.env_for(url, folder / "blobs", redis.url()),
                              folder / "dashboard.log") as server:
        for label, path in (("live_json", f"/api/runs/{RUN}/live"),
                            ("status_json", f"/api/runs/{RUN}"),
                            ("run_page", f"/runs/{RUN}")):
            get = lambda p=path: urllib.request.urlopen(server.url + p, timeout=30).read()  # noqa: E731
            get()  # warm: connections, templates
            out[label] = timed_ms(get, repeat)
    return out


def write_cost(url: str, rows: int) -> dict[str, float]:
    """Rows/s of add_posters with the counting triggers, and with them disabled."""
    with_triggers = fill(url, rows, name="write-on")
    engine = make_engine(url)
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            names = [r[0] for r in conn.execute(text(
                "SELECT name FROM sqlite_master WHERE type = 'trigger'"))]
            for name in names:
                conn.execute(text(f"DROP TRIGGER {name}"))
        else:
            conn.execute(text("ALTER TABLE posters DISABLE TRIGGER USER"))
    engine.dispose()
    without = fill(url, rows, name="write-off")
    return {"rows_per_s_with_triggers": round(rows / with_triggers),
            "rows_per_s_without": round(rows / without),
            "slowdown": round(with_triggers / without, 2)}


def bench(kind: str, args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-dashboard-") as tmp, \
            database(kind, Path(tmp)) as url:
        folder = Path(tmp)
        insert_s = fill(url, args.rows) if args.fill == "storage" else fill_sql(url, args.rows)
        mid_run(url, args.rows)
        analyze_tables(url)
        result = {"db": kind, "rows": args.rows, "fill": args.fill,
                  "insert_s": round(insert_s, 1),
                  "counts": counts_vs_scan(url, args.repeat),
                  "http": refreshes(url, folder, args.repeat)}
        result["writes"] = write_cost(url, args.write_rows)
    return result


def show(r: dict[str, Any]) -> None:
    print(f"\n{r['db']}: {r['rows']:,} posters (written by {r['fill']} in {r['insert_s']} s)")
    print(f"  {'what':<34}{'median ms':>10}{'p95 ms':>9}{'max ms':>9}")
    rows = [("counts from run_counts", r["counts"]["run_counts"]),
            ("counts by scanning posters", r["counts"]["scan"]),
            *((f"GET {k}", v) for k, v in r["http"].items())]
    for label, t in rows:
        print(f"  {label:<34}{t['median_ms']:>10}{t['p95_ms']:>9}{t['max_ms']:>9}")
    print(f"  first fold of the insert deltas: {r['counts']['first_fold_ms']} ms; "
          f"counts agree with the scan: {r['counts']['agree']}")
    w = r["writes"]
    print(f"  add_posters: {w['rows_per_s_with_triggers']:,} rows/s with the triggers, "
          f"{w['rows_per_s_without']:,} without (x{w['slowdown']})")
    ok = all(r["http"][k]["median_ms"] < TARGET_MS for k in ("live_json", "run_page"))
    print(f"  target: refresh and page under {TARGET_MS:.0f} ms -> {'met' if ok else 'MISSED'}")


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    kinds = ("sqlite", "postgresql") if args.db == "both" else (args.db,)
    with c.LoadSampler() as load:
        results = [bench(kind, args) for kind in kinds]
    for r in results:
        show(r)
    print(f"\nload average while measuring: {load.summary()}")
    print(json.dumps({"benchmark": "dashboard", "machine": c.machine(), "load": load.summary(),
                      "results": results}))


if __name__ == "__main__":
    main()
