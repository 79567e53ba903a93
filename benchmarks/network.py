"""Posters per second from URLs against the same posters as local files, both modes.

A server on 127.0.0.1 plays a far-away CDN (threaded, keep-alive HTTP/1.1, TCP_NODELAY;
the handler of benchmarks/fetch_many.py): every answer comes after a latency of
150 ms ± 50 ms, every 50th poster answers 503 once, and optionally every Mth poster
answers 429 once with ``Retry-After`` and every Kth poster's body trickles out over a
set time. It serves the shared posters, each copied with a few distinct bytes after the
JPEG end (every file has its own sha256, as in throughput.py). Two manifests list the
same N posters: one by local file, one by URL on that server. In one invocation:

- embedded: ``posterlab run MANIFEST --workers <all cores> --no-analysis``, a fresh
  SQLite database and blob folder each, on files and on URLs;
- distributed: the default ``posterlab worker`` on a private ``redis-server`` (a free
  port, started and stopped by this script, one per run) and SQLite, then
  ``posterlab enqueue``; completion is polled by a direct read of the database every
  0.5 s (a ``posterlab status`` process per poll would take a core's CPU from the
  workers); the LLEN of every queue and Redis ``used_memory`` are sampled every 0.2 s.

URL runs get ``POSTERLAB_FETCH_ALLOW=127.0.0.1`` (the SSRF guard refuses loopback
otherwise). Prints posters/s per run, the URL/file ratio per mode, the peak messages
waiting per queue and the peak ``used_memory``, then one JSON line.

    .venv/bin/python benchmarks/network.py                      # 600 posters
    .venv/bin/python benchmarks/network.py --limit 60 --skip-distributed
    .venv/bin/python benchmarks/network.py --latency-ms 500 --rate-limit-every 40
    .venv/bin/python benchmarks/network.py --limit 10000 --only distributed-urls --profile course

Past the 2,000 shared posters the rows start again from the first poster under new ids
(new files, distinct bytes): a 10,000-row run shows whether queues and Redis memory stay
flat as the run grows.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import _common as c
from fetch_many import _handler, _Server

from posterlab import testing as h

QUEUES = ("fetch", "extract", "faces", "analysis")
ALLOW = {"POSTERLAB_FETCH_ALLOW": "127.0.0.1"}
NEVER = 10**9  # a "fail every" that never comes: fetch_many's handler takes no 0


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--limit", type=int, default=600, help="posters (default 600)")
    p.add_argument("--latency-ms", type=float, default=150.0)
    p.add_argument("--jitter-ms", type=float, default=50.0)
    p.add_argument("--fail-every", type=int, default=50,
                   help="every Nth poster answers 503 once (0: never; default 50)")
    p.add_argument("--rate-limit-every", type=int, default=0,
                   help="every Mth poster answers 429 once with Retry-After (default 0: never)")
    p.add_argument("--retry-after", type=int, default=1, help="Retry-After seconds of a 429")
    p.add_argument("--slow-every", type=int, default=0,
                   help="every Kth poster's body is sent slowly (default 0: never)")
    p.add_argument("--slow-body-ms", type=float, default=2000.0,
                   help="how long a slow body takes to send, in 10 pieces (default 2000)")
    p.add_argument("--skip-distributed", action="store_true")
    p.add_argument("--only", default="",
                   help="comma-separated runs to do, of embedded-files, embedded-urls, "
                        "distributed-files, distributed-urls (default: all)")
    p.add_argument("--profile", choices=("course", "standard", "full"), default=None,
                   help="POSTERLAB_PROFILE of every run (default: posterlab's default)")
    p.add_argument("--max-queued", type=int, default=None,
                   help="POSTERLAB_MAX_QUEUED of every run (default: posterlab's, 1000)")
    p.add_argument("--per-host", type=int, default=None,
                   help="POSTERLAB_FETCH_PER_HOST of every run (default: posterlab's, 8); "
                        "the server is one host, so 8 downloads of 500 ms cap it at 16/s")
    p.add_argument("--data", type=Path, default=c.DATA, help="the shared data folder")
    p.add_argument("--keep", action="store_true", help="keep the temp folder")
    return p.parse_args(argv)


# ---------------------------------------------------------------- the server


def make_handler(folder: Path, args: argparse.Namespace, stats: dict[str, int]) -> type:
    """fetch_many's latency/503-once handler plus 429-once and slow bodies, counting answers.

    A new class has an empty memory of which posters already failed once.
    """
    base: Any = _handler(folder, args.latency_ms / 1e3, args.jitter_ms / 1e3,
                         args.fail_every or NEVER)
    limited: set[str] = set()
    lock = threading.Lock()

    def every(n: int, index: int) -> bool:
        return n > 0 and index % n == n - 1

    class Handler(base):  # type: ignore[misc, valid-type]
        def do_GET(self) -> None:
            self._index = int(self.path.strip("/").partition("/")[0] or 0)
            with lock:
                first = self.path not in limited
                limited.add(self.path)
            if every(args.rate_limit_every, self._index) and first:
                time.sleep(max(0.0, args.latency_ms / 1e3))
                self.send_response(429)
                self.send_header("Retry-After", str(args.retry_after))
                self.send_header("Content-Length", "0")
                self.end_headers()
                self._count(429)
                return
            super().do_GET()

        def _send(self, status: int, body: bytes) -> None:
            self._count(status)
            if status != 200 or not every(args.slow_every, self._index):
                super()._send(status, body)
                return
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Content-Type", "image/jpeg")
            self.end_headers()
            step = max(1, len(body) // 10)
            for start in range(0, len(body), step):
                self.wfile.write(body[start:start + step])
                self.wfile.flush()
                time.sleep(args.slow_body_ms / 1e3 / 10)

        def _count(self, status: int) -> None:
            with lock:
                stats[str(status)] = stats.get(str(status), 0) + 1

    return Handler


@contextmanager
def serving(folder: Path, args: argparse.Namespace) -> Iterator[tuple[_Server, str]]:
    """The latency server on a free port of 127.0.0.1; yields it and its base URL."""
    httpd = _Server(("127.0.0.1", 0), make_handler(folder, args, {}))
    threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True).start()
    try:
        yield httpd, f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def url_manifest(manifest: Path, base: str) -> Path:
    """The manifest's rows with the poster as a URL on the server (no poster_file column:
    a local file wins over a URL)."""
    target = manifest.with_name("urls.csv")
    with open(manifest, newline="", encoding="latin-1") as fin, \
            open(target, "w", newline="", encoding="latin-1") as fout:
        reader = csv.DictReader(fin)
        fields = [f for f in reader.fieldnames or [] if f != "poster_file"]
        writer = csv.DictWriter(fout, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        for i, row in enumerate(reader):
            row["Poster"] = f"{base}/{i}/{Path(row['poster_file']).name}"
            writer.writerow(row)
    return target


# ---------------------------------------------------------------- private Redis


@contextmanager
def private_redis(folder: Path) -> Iterator[str]:
    """A redis-server of this run alone (no persistence); yields its URL."""
    server = h.RedisServer(folder / "redis", durable=False)
    try:
        yield server.url(0)
    finally:
        server.stop()


class QueueSampler:
    """LLEN of every queue and ``used_memory`` every ``every`` seconds; keeps the peaks."""

    def __init__(self, url: str, every: float = 0.2) -> None:
        import redis

        self.peaks = dict.fromkeys(QUEUES, 0)
        self.memory_peak = 0
        self._client = redis.Redis.from_url(url)
        self._every = every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while True:
            pipe = self._client.pipeline()
            for name in QUEUES:
                pipe.llen(name)
            pipe.info("memory")
            *lengths, memory = pipe.execute()
            for name, n in zip(QUEUES, lengths, strict=True):
                self.peaks[name] = max(self.peaks[name], int(n))
            self.memory_peak = max(self.memory_peak, int(memory["used_memory"]))
            if self._stop.wait(self._every):
                return

    def __enter__(self) -> QueueSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._client.close()


# ---------------------------------------------------------------- the modes


def embedded(manifest: Path, work: Path, tag: str, extra: dict[str, str]) -> dict[str, Any]:
    """``posterlab run --no-analysis`` on every core, fresh SQLite and blobs; wall clock."""
    folder = h.fresh_dir(work / tag)
    db = f"sqlite:///{folder / 'posterlab.db'}"
    env = h.env_for(db, folder / "blobs", **extra)
    t0 = time.perf_counter()
    h.run_cli("run", str(manifest), "--workers", str(os.cpu_count() or 1), "--no-analysis",
              "--run", "bench", env=env)
    seconds = time.perf_counter() - t0
    counts = h.poster_counts(db, "bench")
    h.dispose_engines()
    return {"seconds": round(seconds, 2), "done": counts.get("done", 0),
            "failed": counts.get("failed", 0)}


def wait_settled(worker: h.WorkerProcess, quiet: float = 3.0, timeout: float = 60) -> None:
    """Wait until every process of the worker has said " ready." (the default command
    may start a fetch worker beside the pool): no new one for ``quiet`` seconds."""
    worker.wait_ready()
    seen, since, deadline = 0, time.monotonic(), time.monotonic() + timeout
    while time.monotonic() - since < quiet and time.monotonic() < deadline:
        now = worker.log.read_text(errors="replace").count(" ready.")
        if now != seen:
            seen, since = now, time.monotonic()
        time.sleep(0.1)


def distributed(manifest: Path, work: Path, tag: str, total: int,
                extra: dict[str, str]) -> dict[str, Any]:
    """The default ``posterlab worker`` on a private Redis, then ``posterlab enqueue``."""
    folder = h.fresh_dir(work / tag)
    db = f"sqlite:///{folder / 'posterlab.db'}"
    with private_redis(folder) as broker:
        env = h.env_for(db, folder / "blobs", broker, **extra)
        h.run_cli("db", "upgrade", env=env)
        with h.WorkerProcess([], env, folder / "worker.log") as worker:
            wait_settled(worker)
            with QueueSampler(broker) as sampler:
                t0 = time.perf_counter()
                h.run_cli("enqueue", str(manifest), "--run", "bench", env=env)
                counts = poll_until_done(db, total, worker)
                seconds = time.perf_counter() - t0
        h.dispose_engines()
    return {"seconds": round(seconds, 2), "done": counts.get("done", 0),
            "failed": counts.get("failed", 0), "queue_peaks": sampler.peaks,
            "redis_used_memory_peak_mb": round(sampler.memory_peak / 2**20, 2)}


def poll_until_done(db: str, total: int, worker: h.WorkerProcess,
                    every: float = 0.5) -> dict[str, int]:
    """Posters per status, read directly from the database until all have ended."""
    while True:
        counts = h.poster_counts(db, "bench")
        if counts.get("done", 0) + counts.get("failed", 0) >= total:
            return counts
        if worker.proc.poll() is not None:
            raise RuntimeError(f"worker died:\n{worker.log.read_text()[-3000:]}")
        time.sleep(every)


# ---------------------------------------------------------------- main


def run_all(args: argparse.Namespace, work: Path) -> tuple[int, dict[str, Any], dict]:
    """Every run, one after the other; the server's answers counted over the URL runs."""
    files = h.sample_manifest(args.data, work / "m", args.limit, distinct=True, cycle=True)
    total = h.count_csv_rows(files)
    stats: dict[str, int] = {}
    results: dict[str, Any] = {}
    modes = ["embedded"] + ([] if args.skip_distributed else ["distributed"])
    with serving(files.parent / "posters", args) as (httpd, base):
        urls = url_manifest(files, base)
        for mode in modes:
            for source, manifest in (("files", files), ("urls", urls)):
                name = f"{mode}-{source}"
                if args.only and name not in args.only.split(","):
                    continue
                print(f"{name} ...", file=sys.stderr, flush=True)
                # a fresh handler per run: every run meets its own 503s and 429s
                httpd.RequestHandlerClass = make_handler(files.parent / "posters", args,
                                                         stats)
                extra = {**(ALLOW if source == "urls" else {}), **settings_of(args)}
                if mode == "embedded":
                    r = embedded(manifest, work, name, extra)
                else:
                    r = distributed(manifest, work, name, total, extra)
                r["posters_per_s"] = round(total / r["seconds"], 2)
                print(f"    {r['seconds']} s, {r['done']} done, {r['failed']} failed",
                      file=sys.stderr, flush=True)
                results[name] = r
    return total, results, stats


def settings_of(args: argparse.Namespace) -> dict[str, str]:
    """The posterlab settings every run of this invocation gets."""
    out = {}
    if args.profile:
        out["POSTERLAB_PROFILE"] = args.profile
    if args.max_queued:
        out["POSTERLAB_MAX_QUEUED"] = str(args.max_queued)
    if args.per_host:
        out["POSTERLAB_FETCH_PER_HOST"] = str(args.per_host)
    return out


def report(args: argparse.Namespace, total: int, results: dict[str, Any],
           stats: dict[str, int], load: dict[str, float]) -> None:
    """The table, the ratios, the queue peaks, then one JSON line."""
    ratios = {mode: round(results[f"{mode}-urls"]["posters_per_s"]
                          / results[f"{mode}-files"]["posters_per_s"], 3)
              for mode in ("embedded", "distributed")
              if f"{mode}-files" in results and f"{mode}-urls" in results}
    info = c.machine()
    print(f"{total} posters; server {args.latency_ms:.0f} ms ± {args.jitter_ms:.0f} ms, "
          f"503 once every {args.fail_every or '-'}, 429 once every "
          f"{args.rate_limit_every or '-'}, slow body every {args.slow_every or '-'}; "
          f"answers {dict(sorted(stats.items()))}; {info['nproc']} cores, {info['cpu']}; "
          f"load average {load}")
    rows = [(name, r["seconds"], r["posters_per_s"], r["done"], r["failed"],
             *(r.get("queue_peaks", {}).get(q) for q in QUEUES),
             r.get("redis_used_memory_peak_mb"))
            for name, r in results.items()]
    print(c.table(["run", "wall s", "posters/s", "done", "failed",
                   *(f"peak {q}" for q in QUEUES), "redis MB"], rows))
    print("URL / file: " + ", ".join(f"{m} {v:.2f}x" for m, v in ratios.items()))
    print(json.dumps({
        "benchmark": "network", "posters": total, "latency_ms": args.latency_ms,
        "jitter_ms": args.jitter_ms, "fail_every": args.fail_every,
        "rate_limit_every": args.rate_limit_every, "retry_after": args.retry_after,
        "slow_every": args.slow_every, "slow_body_ms": args.slow_body_ms,
        "runs": results, "ratios": ratios, "server_answers": stats,
        "load_average": load, "machine": info}))


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if not (args.data / "posters" / "index.csv").is_file():
        print(f"no posters at {args.data}/posters; pass --data", file=sys.stderr)
        return 1
    if not args.skip_distributed and shutil.which("redis-server") is None:
        print("redis-server not found; pass --skip-distributed", file=sys.stderr)
        return 1
    work = Path(tempfile.mkdtemp(prefix="posterlab-network-"))
    try:
        with c.LoadSampler() as load:
            total, results, stats = run_all(args, work)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    report(args, total, results, stats, load.summary())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
