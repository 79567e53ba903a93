"""``--profile course`` against the course's own loop, on the same posters, in one sitting.

The course loop is the case study as a student writes it, in one process: for each
manifest row ``skimage.io.imread``, the YuNet face count (posterlab's own local detector
at its default parameters, so both sides count faces the same way), mean R, G, B and
mean H, S, V (``skimage.color.rgb2hsv``), and one ``INSERT`` and commit per row into
SQLite. Its BLAS/OpenMP pools are limited to one thread, as posterlab's workers are.

Against it: ``posterlab run MANIFEST --profile course --workers N --no-analysis`` (N = 1
and every core), a fresh SQLite database and blob folder each time, the subprocess's
wall clock with start-up included. The posters are the shared ones, each copied with a
few distinct bytes after the JPEG end so that nothing comes from posterlab's caches.
Runs are interleaved over ``--repeat`` rounds so drifts of the machine's load hit both.

Target (2 cores): ``--profile course`` on every core at least 1.8x the loop's posters/s.

    .venv/bin/python benchmarks/course.py                 # 1,000 posters
    .venv/bin/python benchmarks/course.py --limit 300 --repeat 2

Prints a table, then one JSON line.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import sqlite3
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import _common as c

import posterlab.testing as h

TARGET = 1.8


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=c.DATA)
    p.add_argument("--limit", type=int, default=1000)
    p.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    p.add_argument("--repeat", type=int, default=1)
    return p.parse_args(argv)


def course_loop(manifest: Path, db_path: Path) -> dict[str, Any]:
    """The course's loop: imread, YuNet count, mean RGB and HSV, INSERT + commit a row."""
    import numpy as np
    import skimage.color
    import skimage.io
    from threadpoolctl import threadpool_limits

    from posterlab.faces.local import LocalParams, detect_faces

    params = LocalParams()
    t0, cpu0 = time.perf_counter(), time.process_time()
    done = failed = 0
    with threadpool_limits(1):
        conn = sqlite3.connect(db_path)
        conn.execute("create table posters (imdb_id text, title text, score real, "
                     "faces integer, r real, g real, b real, h real, s real, v real)")
        conn.commit()
        with open(manifest, newline="", encoding="latin-1") as fh:
            for row in csv.DictReader(fh):
                try:
                    image = skimage.io.imread(manifest.parent / row["poster_file"])
                    if image.ndim == 2:
                        image = np.stack([image] * 3, axis=-1)
                    image = image[:, :, :3]
                    faces = len(detect_faces(image, params))
                    rgb = image.reshape(-1, 3).mean(axis=0) / 255.0
                    hsv = skimage.color.rgb2hsv(image).reshape(-1, 3).mean(axis=0)
                except Exception as exc:
                    print(f"course loop: {row['imdbId']}: {exc}", file=sys.stderr)
                    failed += 1
                    continue
                conn.execute("insert into posters values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                             (row["imdbId"], row["Title"], row["IMDB Score"] or None, faces,
                              *map(float, rgb), *map(float, hsv)))
                conn.commit()
                done += 1
        conn.close()
    return {"seconds": time.perf_counter() - t0, "cpu": time.process_time() - cpu0,
            "done": done, "failed": failed}


def course_profile(manifest: Path, work: Path, workers: int, tag: str) -> dict[str, Any]:
    folder = h.fresh_dir(work / tag)
    db = f"sqlite:///{folder / 'posterlab.db'}"
    env = h.env_for(db, folder / "blobs")
    t0 = time.perf_counter()
    cpu = h.run_cli_cpu("run", str(manifest), "--profile", "course", "--workers",
                        str(workers), "--no-analysis", "--run", "bench", env=env)
    seconds = time.perf_counter() - t0
    counts = h.poster_counts(db, "bench")
    h.dispose_engines()
    return {"seconds": seconds, "cpu": cpu, "done": counts.get("done", 0),
            "failed": counts.get("failed", 0)}


def summarise(runs: list[dict[str, Any]], posters: int, workers: int) -> dict[str, Any]:
    seconds = sorted(r["seconds"] for r in runs)[len(runs) // 2]
    cpu = sorted(r["cpu"] for r in runs)[len(runs) // 2]
    return {"workers": workers, "seconds": round(seconds, 2),
            "posters_per_s": round(posters / seconds, 2),
            "cpu_ms_per_poster": round(1e3 * cpu / posters, 1),
            "done": runs[-1]["done"], "failed": runs[-1]["failed"]}


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if not (args.data / "posters" / "index.csv").is_file():
        print(f"no posters at {args.data}/posters; pass --data", file=sys.stderr)
        return 1
    work = Path(tempfile.mkdtemp(prefix="posterlab-course-"))
    load = c.LoadSampler()
    plan = [("course loop", 1), *[(f"--profile course, {n} workers", n)
                                  for n in sorted({1, args.workers})]]
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name, _ in plan}
    try:
        manifest = h.sample_manifest(args.data, work / "m", args.limit, distinct=True)
        posters = len(h.manifest_posters(manifest))
        with load:
            for rep in range(args.repeat):
                for name, n in plan:
                    print(f"[{rep + 1}/{args.repeat}] {name} ...", file=sys.stderr, flush=True)
                    r = (course_loop(manifest, h.fresh_dir(work / f"loop-{rep}") / "c.db")
                         if n == 1 and name == "course loop"
                         else course_profile(manifest, work, n, f"p{n}-{rep}"))
                    print(f"    {r['seconds']:.1f} s", file=sys.stderr, flush=True)
                    runs[name].append(r)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    results = {name: summarise(runs[name], posters, n) for name, n in plan}
    loop_rate = results["course loop"]["posters_per_s"]
    for r in results.values():
        r["vs_loop"] = round(r["posters_per_s"] / loop_rate, 3)
    top = results[plan[-1][0]]
    info = c.machine()
    print(f"{posters} posters; {info['nproc']} cores, {info['cpu']}; load average "
          f"{load.summary()}")
    print(c.table(["mode", "workers", "wall s", "posters/s", "vs loop", "CPU ms/poster",
                   "done", "failed"],
                  [(name, r["workers"], r["seconds"], r["posters_per_s"],
                    f"{r['vs_loop']:.2f}x", r["cpu_ms_per_poster"], r["done"], r["failed"])
                   for name, r in results.items()]))
    print(f"target: --profile course on every core >= {TARGET}x the loop: "
          f"{'met' if top['vs_loop'] >= TARGET else 'NOT met'} ({top['vs_loop']:.2f}x)")
    print(json.dumps({"benchmark": "course", "posters": posters, "results": results,
                      "target": TARGET, "meets_target": top["vs_loop"] >= TARGET,
                      "load_average": load.summary()}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
