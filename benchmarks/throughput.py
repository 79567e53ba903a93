"""Posters per second: a naive loop, ``posterlab run`` (embedded) and ``posterlab worker``.

On the real posters of ../shared/data/posters, each copied to a temp folder with a few
distinct bytes after the JPEG end (so every file has its own sha256 and nothing is served
from posterlab's feature/face caches; the pixels are unchanged), this measures:

a) naive: the loop a course student writes. For each manifest row: ``skimage.io.imread``,
   ``posterlab.imaging.extract_features`` and ``posterlab.faces.local.detect_faces`` on the
   decoded array, one ``INSERT`` into SQLite (sqlite3) and a commit per row. It runs in
   this process on one core (BLAS/OpenMP pools limited to one thread, as posterlab's
   workers are; ``--naive-threads default`` leaves the libraries' own thread pools).
b) embedded: ``posterlab run MANIFEST --workers N --no-analysis`` with 1 worker and with
   every core, a fresh SQLite database and blob folder each time; the subprocess's wall
   clock, start-up included, nothing subtracted.
c) distributed: one ``posterlab worker -c N`` (every queue) on a real Redis (database
   15, flushed) and SQLite, with N = 1 and N = every core. The worker is started and
   waited for (" ready." in its log) before the clock starts; then ``posterlab enqueue``
   runs and the clock stops when every poster is ``done`` or ``failed``. Completion is
   polled with a direct read of the database every 0.2 s (a ``posterlab status``
   subprocess costs ~1 s of CPU, which would be taken from the workers on two cores);
   ``posterlab status --json`` is run once at the end for the record.

Pure compute is what the pipeline's stages compute per poster, in this process on one
thread: ``analyze_bytes`` and ``LocalDetector.detect`` on the poster's bytes, averaged
over an even sample of posters (``--compute-sample``). The overhead of queue and store
of a mode with N workers is ``wall seconds per poster x N - compute seconds per poster``,
as a share of compute: what the pipeline adds around the pure functions (blob store,
database, messages, process start-up), and also whatever the machine's other load takes
from the workers. Because that last part can dominate on a shared machine, the table also
shows the CPU seconds per poster of every process of the mode (``posterlab run`` from
wait4 plus its forkserver pool children sampled from /proc; the worker and its pool
children from /proc between enqueue and completion, plus ``posterlab enqueue``) and the
CPU overhead
``(CPU per poster - compute CPU per poster) / compute CPU per poster``, which the other
load of the machine barely moves.

Targets on a 2-core machine: embedded on every core >= 1.8x naive, distributed on every
core >= 1.7x naive, overhead < 5 % of compute.

    .venv/bin/python benchmarks/throughput.py                      # 2,000 posters, ~8 min
    .venv/bin/python benchmarks/throughput.py --limit 300 --repeat 3
    .venv/bin/python benchmarks/throughput.py --skip-distributed

Prints a table, then one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import _common as c

from posterlab import testing as h

TARGETS = {"embedded": 1.8, "distributed": 1.7, "overhead": 0.05}


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Posters per second of a naive loop, `posterlab run` and `posterlab "
                    "worker` on the real posters, with ratios and queue/store overhead.",
        epilog="example: benchmarks/throughput.py --limit 500 --repeat 3")
    p.add_argument("--limit", type=int, default=2000, help="posters (default 2000: all)")
    p.add_argument("--repeat", type=int, default=1,
                   help="repetitions of each measurement; medians are reported (default 1)")
    p.add_argument("--skip-distributed", action="store_true",
                   help="do not measure posterlab worker / enqueue (no Redis needed)")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                   help="'all cores' (default: os.cpu_count())")
    p.add_argument("--compute-sample", type=int, default=300,
                   help="posters timed for the pure compute per poster (default 300)")
    p.add_argument("--naive-threads", choices=["1", "default"], default="1",
                   help="thread pools of the naive loop: one thread (default) or the "
                        "libraries' defaults")
    p.add_argument("--data", type=Path, default=c.DATA, help="the shared data folder")
    p.add_argument("--redis-db", type=int, default=c.REDIS_DB,
                   help=f"Redis database for the distributed runs (default {c.REDIS_DB})")
    p.add_argument("--keep", action="store_true", help="keep the temp folder")
    return p.parse_args(argv)


# ---------------------------------------------------------------- pure compute and naive


def pure_compute(paths: list[Path], sample: int) -> dict[str, float]:
    """Mean seconds per poster of the pipeline's pure functions, one thread."""
    from threadpoolctl import threadpool_limits

    from posterlab.faces.local import LocalDetector
    from posterlab.imaging import analyze_bytes

    step = max(1, len(paths) // max(1, sample))
    chosen = paths[::step][:sample]
    detector = LocalDetector()
    with threadpool_limits(1):
        for path in chosen[:3]:  # warm-up: imports, first-call caches
            data = path.read_bytes()
            analyze_bytes(data)
            detector.detect(data)
        features = faces = 0.0
        cpu0 = time.thread_time()
        for path in chosen:
            data = path.read_bytes()
            t0 = time.perf_counter()
            analyze_bytes(data)
            t1 = time.perf_counter()
            detector.detect(data)
            t2 = time.perf_counter()
            features += t1 - t0
            faces += t2 - t1
        cpu = time.thread_time() - cpu0
    n = len(chosen)
    return {"posters": n, "features_s": features / n, "faces_s": faces / n,
            "total_s": (features + faces) / n, "cpu_s": cpu / n}


def naive_loop(manifest: Path, db_path: Path, threads: str) -> dict[str, Any]:
    """The course loop: imread, features, faces, one INSERT and commit per row."""
    import csv
    from contextlib import nullcontext

    import numpy as np
    import skimage.io
    from threadpoolctl import threadpool_limits

    from posterlab.faces.local import LocalParams, detect_faces
    from posterlab.imaging import extract_features

    params = LocalParams()
    limit = threadpool_limits(1) if threads == "1" else nullcontext()
    t0 = time.perf_counter()
    cpu0 = time.process_time()
    with limit:
        conn = sqlite3.connect(db_path)
        conn.execute("create table posters (imdb_id text, title text, score real, "
                     "genres text, face_count integer, features text)")
        conn.commit()
        done = failed = 0
        with open(manifest, newline="", encoding="latin-1") as fh:
            for row in csv.DictReader(fh):
                try:
                    image = skimage.io.imread(manifest.parent / row["poster_file"])
                    if image.ndim == 2:
                        image = np.stack([image] * 3, axis=-1)
                    image = image[:, :, :3]
                    features = extract_features(image)
                    faces = len(detect_faces(image, params))
                except Exception as exc:
                    print(f"naive: {row['imdbId']}: {exc}", file=sys.stderr)
                    failed += 1
                    continue
                conn.execute("insert into posters values (?, ?, ?, ?, ?, ?)",
                             (row["imdbId"], row["Title"], row["IMDB Score"] or None,
                              row["Genre"], faces, json.dumps(features.scalars)))
                conn.commit()
                done += 1
        conn.close()
    return {"seconds": time.perf_counter() - t0, "cpu": time.process_time() - cpu0,
            "done": done, "failed": failed}


# ---------------------------------------------------------------- posterlab modes


def embedded(manifest: Path, work: Path, workers: int, tag: str) -> dict[str, Any]:
    folder = h.fresh_dir(work / tag)
    db = f"sqlite:///{folder / 'posterlab.db'}"
    env = h.env_for(db, folder / "blobs")
    t0 = time.perf_counter()
    cpu = h.run_cli_cpu("run", str(manifest), "--workers", str(workers), "--no-analysis",
                        "--run", "bench", env=env)  # the CLI and its pool, start-up included
    seconds = time.perf_counter() - t0
    counts = h.poster_counts(db, "bench")
    h.dispose_engines()
    return {"seconds": seconds, "cpu": cpu, "done": counts.get("done", 0),
            "failed": counts.get("failed", 0)}


def distributed(manifest: Path, work: Path, workers: int, tag: str, total: int,
                broker: str) -> dict[str, Any]:
    folder = h.fresh_dir(work / tag)
    db = f"sqlite:///{folder / 'posterlab.db'}"
    env = h.env_for(db, folder / "blobs", broker)
    h.flush_redis(broker)
    h.run_cli("db", "upgrade", env=env)
    worker = h.WorkerProcess(["-c", str(workers), "-n", f"bench-{tag}@%h"], env,
                      folder / "worker.log")
    try:
        worker.wait_ready()
        time.sleep(0.5)  # let the pool children finish starting
        worker_cpu0 = c.tree_cpu_seconds(worker.proc.pid)
        cpu0 = c.children_cpu_seconds()
        t0 = time.perf_counter()
        h.run_cli("enqueue", str(manifest), "--run", "bench", env=env)
        enqueued = time.perf_counter() - t0
        enqueue_cpu = c.children_cpu_seconds() - cpu0
        counts: dict[str, int] = {}
        while True:
            counts = h.poster_counts(db, "bench")
            if counts.get("done", 0) + counts.get("failed", 0) >= total:
                break
            if worker.proc.poll() is not None:
                raise RuntimeError(f"worker died:\n{worker.log.read_text()[-3000:]}")
            time.sleep(0.2)
        seconds = time.perf_counter() - t0
        cpu = c.tree_cpu_seconds(worker.proc.pid) - worker_cpu0 + enqueue_cpu
        status = json.loads(h.run_cli("status", "--json", "--run", "bench", env=env).stdout)
    finally:
        worker.stop()
        h.dispose_engines()
        h.flush_redis(broker)
    return {"seconds": seconds, "cpu": cpu, "enqueue_seconds": enqueued,
            "done": counts.get("done", 0), "failed": counts.get("failed", 0),
            "status_counts": status["counts"]}


# ---------------------------------------------------------------- main


def summarise(runs: list[dict[str, Any]], posters: int, workers: int,
              compute: dict[str, float]) -> dict[str, Any]:
    seconds = c.median([r["seconds"] for r in runs])
    cpu = c.median([r["cpu"] for r in runs])
    per_poster = seconds / posters
    return {"workers": workers, "seconds": round(seconds, 2),
            "seconds_all": [round(r["seconds"], 2) for r in runs],
            "posters_per_s": round(posters / seconds, 2),
            "overhead": round((per_poster * workers - compute["total_s"]) / compute["total_s"], 4),
            "cpu_ms_per_poster": round(cpu / posters * 1e3, 2),
            "cpu_overhead": round((cpu / posters - compute["cpu_s"]) / compute["cpu_s"], 4),
            "done": runs[-1]["done"], "failed": runs[-1]["failed"]}


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if not (args.data / "posters" / "index.csv").is_file():
        print(f"no posters at {args.data}/posters; pass --data", file=sys.stderr)
        return 1
    work = Path(tempfile.mkdtemp(prefix="posterlab-throughput-"))
    broker = c.redis_url(args.redis_db)
    load = c.LoadSampler()
    results: dict[str, dict[str, Any]] = {}
    try:
        manifest = h.sample_manifest(args.data, work / "m", args.limit, distinct=True)
        paths = h.manifest_posters(manifest)
        posters = len(paths)
        print(f"{posters} posters copied to {work / 'm'} (distinct sha256 each)",
              file=sys.stderr)
        with load:
            compute = pure_compute(paths, args.compute_sample)
            compute_s = compute["total_s"]
            print(f"pure compute: {compute_s * 1e3:.1f} ms/poster", file=sys.stderr)
            plan: list[tuple[str, int, Any]] = [("naive", 1, None)]
            plan += [(f"embedded-{n}", n, embedded) for n in sorted({1, args.workers})]
            if not args.skip_distributed:
                plan += [(f"distributed-{n}", n, distributed)
                         for n in sorted({1, args.workers})]
            runs: dict[str, list[dict[str, Any]]] = {name: [] for name, _, _ in plan}
            for rep in range(args.repeat):  # interleaved, so drifts of load hit every mode
                for name, n, fn in plan:
                    print(f"[{rep + 1}/{args.repeat}] {name} ...", file=sys.stderr, flush=True)
                    if fn is None:
                        db_path = h.fresh_dir(work / f"naive-{rep}") / "naive.db"
                        r = naive_loop(manifest, db_path, args.naive_threads)
                    elif fn is embedded:
                        r = embedded(manifest, work, n, f"{name}-{rep}")
                    else:
                        r = distributed(manifest, work, n, f"{name}-{rep}", posters, broker)
                    print(f"    {r['seconds']:.1f} s, {r['done']} done, {r['failed']} failed",
                          file=sys.stderr, flush=True)
                    runs[name].append(r)
            for name, n, _ in plan:
                results[name] = summarise(runs[name], posters, n, compute)
    finally:
        if not args.keep:
            import shutil

            shutil.rmtree(work, ignore_errors=True)

    naive_rate = results["naive"]["posters_per_s"]
    for r in results.values():
        r["vs_naive"] = round(r["posters_per_s"] / naive_rate, 3)
    top = args.workers
    checks = {
        "embedded_vs_naive": results[f"embedded-{top}"]["vs_naive"],
        "distributed_vs_naive": (results[f"distributed-{top}"]["vs_naive"]
                                 if f"distributed-{top}" in results else None),
    }
    overheads = {k: v["overhead"] for k, v in results.items() if k != "naive"}
    meets = {
        "embedded": checks["embedded_vs_naive"] >= TARGETS["embedded"],
        "distributed": (None if checks["distributed_vs_naive"] is None
                        else checks["distributed_vs_naive"] >= TARGETS["distributed"]),
        "overhead": {k: v < TARGETS["overhead"] for k, v in overheads.items()},
    }
    info = c.machine()
    print(f"{posters} posters; pure compute {compute_s * 1e3:.1f} ms/poster "
          f"(features {compute['features_s'] * 1e3:.1f} + faces {compute['faces_s'] * 1e3:.1f},"
          f" mean of {compute['posters']}; CPU {compute['cpu_s'] * 1e3:.1f} ms); "
          f"{info['nproc']} cores, {info['cpu']}; "
          f"load average {load.summary()}; repeat {args.repeat}")
    rows = [(name, r["workers"], r["seconds"], r["posters_per_s"], f"{r['vs_naive']:.2f}x",
             "-" if name == "naive" else f"{r['overhead']:+.1%}", r["cpu_ms_per_poster"],
             f"{r['cpu_overhead']:+.1%}", r["done"], r["failed"])
            for name, r in results.items()]
    print(c.table(["mode", "workers", "wall s", "posters/s", "vs naive", "overhead",
                   "CPU ms/poster", "CPU overhead", "done", "failed"], rows))
    print(f"targets: embedded-{top} >= {TARGETS['embedded']}x naive "
          f"({'met' if meets['embedded'] else 'MISSED'}), distributed-{top} >= "
          f"{TARGETS['distributed']}x ({_verdict(meets['distributed'])}), overhead < "
          f"{TARGETS['overhead']:.0%} of compute "
          f"({', '.join(f'{k}: {_verdict(v)}' for k, v in meets['overhead'].items())})")
    print(json.dumps({
        "benchmark": "throughput", "posters": posters, "repeat": args.repeat,
        "compute_ms": {k: round(v * 1e3, 2) for k, v in compute.items() if k != "posters"},
        "modes": results, "ratios": checks, "targets": TARGETS, "meets_targets": meets,
        "naive_threads": args.naive_threads, "load_average": load.summary(), "machine": info,
    }))
    return 0


def _verdict(ok: bool | None) -> str:
    return "skipped" if ok is None else ("met" if ok else "MISSED")


if __name__ == "__main__":
    raise SystemExit(main())
