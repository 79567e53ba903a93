"""A load test under chaos: posters through 2 workers while workers die and the face API fails.

The fault tests' chaos, at the size of the real data set (issue 7, "Measure"):

- a ``redis-server`` of its own on a free port (append-only, fsync on every write, in a
  temp folder), a fresh SQLite database (or a fresh PostgreSQL schema on
  127.0.0.1:5432, database ``test``), a temp blob folder;
- ``posterlab faceapi serve`` (no quota) behind a fault-injecting HTTP proxy run by this
  script: each POST is answered 429 with probability ``--p429`` (half of them with
  ``Retry-After: 1``, half without, both with Azure's error body "Rate limit is exceeded.
  Try again in 1 seconds."), 500 with probability ``--p500``, and otherwise forwarded to
  the real service, whose answer is relayed; the proxy counts what it did;
- 2 ``posterlab worker -c 1`` processes (``POSTERLAB_FACE_PROVIDER=http`` through the
  proxy, ``POSTERLAB_FACE_API_RATE=50/s``, ``POSTERLAB_STUCK_AFTER=15``), each in its own
  process group; every ``--kill-every`` seconds one worker's whole process group (main
  process and pool child) gets SIGKILL, alternating between the two, and a replacement
  is started at once;
- ``posterlab status --json`` every ~3 s, as an operator watching would (it also runs
  the sweeper that re-queues abandoned work);
- the first ``--posters`` rows of ../shared/data/posters/index.csv with their posters,
  copied byte for byte to a temp folder (the set holds byte-identical duplicates, which
  posterlab serves from its caches), are enqueued with ``posterlab enqueue``.

With ``--poison SHARE`` (default 0.01), that share of the posters is replaced by poison,
half of each kind: decode bombs (a 19 KB PNG of 7000x7000 1-bit pixels, which the memory
budget makes the workers decode reduced) and posters that kill their process each time
(a 208 KB 7000x7000 RGBA PNG that takes a pool child past ``--kill-above-mb``, 450 MB,
where this script SIGKILLs it, as a tight OOM killer would): these must end
``worker-crashed`` after ``POSTERLAB_MAX_CRASHES`` deaths, and everything else done. The
peak RSS (VmHWM) of every worker process and of the face API service is sampled from
/proc all along. ``--compare`` first runs the same posters clean (no kills, no poison)
and reports the chaos run's wall time against it (target: within 1.3x).

The clock runs from the start of ``posterlab enqueue`` until the run is complete (no
poster pending) and its analysis is ``done``; completion is polled by a direct read of
the database every 0.5 s. Then the workers are stopped and the store is checked for
exactness: done + failed == posters, one posters row per movie, one features row and one
faces row per distinct sha256 of the done posters, ``runs.pending == 0``, the analysis
received by a worker under exactly one task id (a redelivery of that same message is
fine). Failed posters are listed by reason, with their messages.

    .venv/bin/python benchmarks/chaos.py                        # 2,000 posters, SQLite
    .venv/bin/python benchmarks/chaos.py --posters 300 --kill-every 10
    .venv/bin/python benchmarks/chaos.py --db postgresql --keep
    .venv/bin/python benchmarks/chaos.py --posters 300 --face-provider local --compare

On this 2-core shared machine the run goes at about 2 posters/s, bound by the face API's
faults: each 429 makes every worker hold back 1 s (the wait goes onto the shared quota),
and 30 % of calls get one. 2,000 posters need ~17 min, so the default run stops at
``--timeout 600`` and says how many fit; 1,000 posters completed in 500 s with every check
passed (``--posters 1000``).

Prints a table, then one JSON line. Exit status 0 when the run completed in time and
every exactness check passed, 1 otherwise.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator, Sequence
from http.client import HTTPConnection
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import _common as c
import _poison

from posterlab import testing as h

RUN = "chaos"
RATE_LIMIT_BODY = json.dumps({"error": {
    "code": "429", "message": "Rate limit is exceeded. Try again in 1 seconds."}}).encode()
SERVER_ERROR_BODY = json.dumps({"error": {
    "code": "InternalServerError", "message": "Injected fault: internal server error."}}).encode()
RECEIVED = re.compile(r"Task (posterlab\.\w+)\[([0-9a-f-]+)\] received")
SUCCEEDED = re.compile(r"Task (posterlab\.\w+)\[([0-9a-f-]+)\] succeeded")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Posters per second and exactness of a distributed run while workers "
                    "are SIGKILLed and the face API answers 429 and 500.",
        epilog="example: benchmarks/chaos.py --posters 300 --kill-every 10 --db postgresql")
    p.add_argument("--posters", type=int, default=2000,
                   help="posters of the real set to run (default 2000: all)")
    p.add_argument("--kill-every", type=float, default=20.0,
                   help="seconds between two worker kills (default 20; 0: no kills)")
    p.add_argument("--p429", type=float, default=0.30,
                   help="share of face-API calls answered 429 (default 0.30)")
    p.add_argument("--p500", type=float, default=0.05,
                   help="share of face-API calls answered 500 (default 0.05)")
    p.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite",
                   help="store (default sqlite; postgresql: 127.0.0.1:5432, database test, "
                        "a fresh schema)")
    p.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    p.add_argument("--status-every", type=float, default=3.0,
                   help="seconds between two `posterlab status --json` (default 3)")
    p.add_argument("--stuck-after", type=int, default=0,
                   help="POSTERLAB_STUCK_AFTER of workers and status (default 0: not set, "
                        "the leases bring a dead worker's posters back)")
    p.add_argument("--poison", type=float, default=0.01,
                   help="share of posters replaced by poison: decode bombs and posters "
                        "that kill their process (default 0.01)")
    p.add_argument("--kill-above-mb", type=float, default=450.0,
                   help="SIGKILL a worker process whose RSS passes this (default 450: "
                        "a Celery child idles at ~200 MB, decodes a 1-bit bomb in "
                        "~+150 MB and the killer poster in ~+370 MB; the analysis of "
                        "2,000 posters peaks at ~400 MB)")
    p.add_argument("--face-provider", choices=["http", "local"], default="http",
                   help="http: the face API behind the fault proxy (default); local: YuNet "
                        "in the workers (CPU-bound, no API faults)")
    p.add_argument("--compare", action="store_true",
                   help="first run the same posters clean (no kills, no poison) and "
                        "compare wall times")
    p.add_argument("--timeout", type=float, default=600.0,
                   help="give up when the run is not complete after this many seconds "
                        "(default 600)")
    p.add_argument("--seed", type=int, default=None, help="seed of the proxy's dice")
    p.add_argument("--keep", action="store_true",
                   help="keep the temp folder (logs, database) and print where it is")
    args = p.parse_args(argv)
    if args.posters < 1 or args.workers < 1:
        p.error("--posters and --workers must be >= 1")
    if not 0 <= args.poison < 0.5:
        p.error("--poison must be a share in [0, 0.5)")
    if not (args.p429 >= 0 and args.p500 >= 0 and args.p429 + args.p500 <= 1):
        p.error("--p429 and --p500 must be shares >= 0 that add up to at most 1")
    return args


# ---------------------------------------------------------------- services


class FaceApi:
    """``posterlab faceapi serve --port P`` (no quota), logging to a file."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.port = h.free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._log = open(log, "wb")
        self.proc = subprocess.Popen(
            h.posterlab_cmd("faceapi", "serve", "--port", str(self.port)), env=env,
            stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + h.READY_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise h.HarnessError(
                    f"posterlab faceapi serve exited:\n{log.read_text()[-3000:]}")
            with contextlib.suppress(OSError), \
                    urllib.request.urlopen(f"{self.url}/health", timeout=1) as answer:
                if answer.status == 200:
                    return
            time.sleep(0.2)
        raise h.HarnessError(
            f"face API not up in {h.READY_TIMEOUT:g} s:\n{log.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self._log.close()


class FaultProxy:
    """An HTTP proxy in front of the face API that answers some POSTs 429 or 500 itself."""

    def __init__(self, upstream_port: int, p429: float, p500: float, seed: int | None) -> None:
        self.counts: Counter[str] = Counter()
        self.relayed: Counter[int] = Counter()  # status codes of forwarded answers
        lock = threading.Lock()
        rng = random.Random(seed)
        local = threading.local()
        proxy = self

        def upstream() -> HTTPConnection:
            conn = getattr(local, "conn", None)
            if conn is None:
                conn = local.conn = HTTPConnection("127.0.0.1", upstream_port, timeout=120)
            return conn

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as the client's session expects

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _answer(self, status: int, body: bytes, headers: dict[str, str]) -> None:
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _forward(self, method: str, body: bytes | None) -> None:
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() in ("content-type", "ocp-apim-subscription-key")}
                if body is not None:
                    headers["Content-Length"] = str(len(body))
                for attempt in (1, 2):  # a kept-alive upstream connection may have closed
                    conn = upstream()
                    try:
                        conn.request(method, self.path, body=body, headers=headers)
                        answer = conn.getresponse()
                        data = answer.read()
                    except (OSError, ValueError) as exc:
                        conn.close()
                        local.conn = None
                        if attempt == 2:
                            with lock:
                                proxy.counts["upstream_error"] += 1
                            self._answer(502, json.dumps({"error": {
                                "code": "BadGateway", "message": f"proxy: {exc}"}}).encode(),
                                {"Content-Type": "application/json"})
                            return
                        continue
                    relay = {k: v for k, v in answer.getheaders()
                             if k.lower() in ("content-type", "retry-after")}
                    with lock:
                        proxy.relayed[answer.status] += 1
                    self._answer(answer.status, data, relay)
                    return

            def do_GET(self) -> None:
                self._forward("GET", None)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                with lock:
                    proxy.counts["post"] += 1
                    dice, half = rng.random(), rng.random() < 0.5
                    if dice < p429:
                        kind = "429_retry_after" if half else "429_no_retry_after"
                    elif dice < p429 + p500:
                        kind = "500"
                    else:
                        kind = "forwarded"
                    proxy.counts[kind] += 1
                json_type = {"Content-Type": "application/json; charset=utf-8"}
                if kind.startswith("429"):
                    extra = {"Retry-After": "1"} if kind == "429_retry_after" else {}
                    self._answer(429, RATE_LIMIT_BODY, {**json_type, **extra})
                elif kind == "500":
                    self._answer(500, SERVER_ERROR_BODY, json_type)
                else:
                    self._forward("POST", body)

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: Any, client_address: Any) -> None:
                # a killed worker leaves its kept-alive connection behind: count, no trace
                if isinstance(sys.exc_info()[1], ConnectionError):
                    with lock:
                        proxy.counts["client_reset"] += 1
                else:
                    super().handle_error(request, client_address)

        self.server = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@contextlib.contextmanager
def database(kind: str, folder: Path) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{folder / 'chaos.db'}"
    else:
        with h.pg_schema(c.PG, prefix="bench") as url:
            yield url


# ---------------------------------------------------------------- workers


class Worker(h.WorkerProcess):
    """A real ``posterlab worker -c 1 -n NAME`` in its own process group."""

    def __init__(self, name: str, env: dict[str, str], log: Path) -> None:
        self.name = name
        super().__init__(["-c", "1", "-n", name], env, log)

    def pids(self) -> set[int]:
        return {self.proc.pid, *h.children_of(self.proc.pid)}

    def stop(self, timeout: float = 60) -> None:
        """Celery's warm shutdown (SIGTERM to the main process), SIGKILL after ``timeout``."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self._fh.close()


class Chaos:
    """The workers, their killer and the operator running ``posterlab status``."""

    def __init__(self, env: dict[str, str], folder: Path, n_workers: int, kill_every: float,
                 status_every: float, db_url: str) -> None:
        self.env, self.folder, self.db_url = env, folder, db_url
        self.kill_every, self.status_every = kill_every, status_every
        self.started = 0
        self.workers: list[Worker] = [self._start() for _ in range(n_workers)]
        self.all_workers = list(self.workers)
        self.kills: list[dict[str, Any]] = []
        self.statuses: list[dict[str, Any]] = []
        self.status_errors: list[str] = []
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._ended = False

    def _start(self) -> Worker:
        self.started += 1
        name = f"chaos{self.started}@{socket.gethostname()}"
        return Worker(name, self.env, self.folder / f"worker-{self.started}.log")

    def wait_ready(self) -> None:
        for w in self.workers:
            w.wait_ready()

    def begin(self) -> None:
        if self.kill_every > 0:
            self._threads.append(threading.Thread(target=self._killer, daemon=True))
        self._threads.append(threading.Thread(target=self._operator, daemon=True))
        for t in self._threads:
            t.start()

    def _killer(self) -> None:
        slot = 0
        while not self._stop.wait(self.kill_every):
            victim = self.workers[slot]
            pids = {str(pid) for pid in victim.pids()}
            held = claims_held(self.db_url, pids)
            victim.kill()
            self.workers[slot] = self._start()
            self.all_workers.append(self.workers[slot])
            self.kills.append({"at": time.monotonic(), "worker": victim.name,
                               "claims_held": held})
            slot = (slot + 1) % len(self.workers)

    def _operator(self) -> None:
        while not self._stop.is_set():
            began = time.monotonic()
            self.status()
            self._stop.wait(max(0.0, self.status_every - (time.monotonic() - began)))

    def status(self) -> dict[str, Any] | None:
        proc = subprocess.run(h.posterlab_cmd("status", "--json", "--run", RUN), env=self.env,
                              capture_output=True, text=True, timeout=120, check=False)
        if proc.returncode != 0:
            self.status_errors.append((proc.stderr or proc.stdout).strip()[-300:])
            return None
        current = dict(json.loads(proc.stdout))
        current["at"] = time.monotonic()
        self.statuses.append(current)
        return current

    def end(self) -> None:
        if self._ended:
            return
        self._ended = True
        self._stop.set()
        for t in self._threads:
            t.join()
        for w in self.workers:
            w.stop()

    def logs(self) -> list[Path]:
        return [w.log for w in self.all_workers]


# ---------------------------------------------------------------- database reads


_engines: dict[str, Any] = {}


def query(db_url: str, sql: str, **params: Any) -> list[dict[str, Any]]:
    import sqlalchemy as sa

    from posterlab.storage.engine import make_engine

    engine = _engines.get(db_url)
    if engine is None:
        engine = _engines[db_url] = make_engine(db_url, readonly=True)
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(sa.text(sql), params)]


def run_row(db_url: str) -> dict[str, Any]:
    found = query(db_url, "select id, total, pending, analysis_state, finished_at "
                          "from runs where name = :n", n=RUN)
    return found[0] if found else {}


def finished_posters(db_url: str) -> int:
    got = query(db_url, "select count(*) as n from posters p join runs r on r.id = p.run_id "
                        "where r.name = :n and p.status in ('done', 'failed')", n=RUN)
    return int(got[0]["n"])


def claims_held(db_url: str, pids: set[str]) -> int:
    """Posters claimed in a pending stage by one of these processes."""
    try:
        got = query(db_url, "select p.worker from posters p join runs r on r.id = p.run_id "
                            "where r.name = :n and p.claimed_at is not null "
                            "and p.status not in ('done', 'failed')", n=RUN)
    except Exception:  # a figure for the table, never a reason to stop the chaos
        return -1
    return sum(1 for r in got if (r["worker"] or "").rsplit(":", 1)[-1] in pids)


def received(logs: list[Path], task: str, pattern: re.Pattern[str] = RECEIVED) -> list[str]:
    """Task ids of every 'Task TASK[id] received' line (or ``pattern``) of these logs."""
    out = []
    for log in logs:
        if log.exists():
            out += [m.group(2) for m in pattern.finditer(log.read_text(errors="replace"))
                    if m.group(1) == task]
    return out


def exactness(db_url: str, n: int, logs: list[Path], kills: int = 0
              ) -> tuple[list[tuple[str, bool, str]], list[dict[str, Any]]]:
    """(check, passed, detail) of every exactness check, and the failed posters.

    ``kills``: processes the chaos killed. A worker killed while it runs the analysis
    takes the analysis with it, which must then run again elsewhere: the analysis is
    exact when it completed once and every further delivery follows a kill.
    """
    posters = query(db_url, "select p.id, p.movie_key, p.row, p.status, p.sha256, "
                            "p.face_count, p.error_code, p.error from posters p join runs r "
                            "on r.id = p.run_id where r.name = :n order by p.id", n=RUN)
    run = run_row(db_url)
    status = Counter(p["status"] for p in posters)
    done = [p for p in posters if p["status"] == "done"]
    failed = [p for p in posters if p["status"] == "failed"]
    done_shas = {p["sha256"] for p in done}
    undone_shas = {p["sha256"] for p in posters if p["status"] != "done" and p["sha256"]}
    feature_rows = query(db_url, "select sha256 from features")
    face_rows = query(db_url, "select sha256 from faces")
    feature_shas = {r["sha256"] for r in feature_rows}
    face_shas = {r["sha256"] for r in face_rows}
    keys = Counter(p["movie_key"] for p in posters)
    dupes = sorted(k for k, v in keys.items() if v > 1)
    analyses = received(logs, "posterlab.analysis")
    completed = received(logs, "posterlab.analysis", SUCCEEDED)
    checks: list[tuple[str, bool, str]] = [
        ("done + failed == posters", status["done"] + status["failed"] == n == len(posters),
         f"{status['done']} + {status['failed']} of {n} ({len(posters)} rows; "
         f"other states {dict((k, v) for k, v in status.items() if k not in ('done', 'failed'))})"),
        ("one posters row per movie", len(keys) == len(posters) == n and not dupes,
         f"{len(posters)} rows, {len(keys)} movie keys" + (f", duplicated {dupes[:5]}"
                                                           if dupes else "")),
        ("done posters have sha256 and face_count",
         all(p["sha256"] and p["face_count"] is not None for p in done),
         f"{sum(1 for p in done if not p['sha256'] or p['face_count'] is None)} without"),
        # features are stored by extract, before faces: a poster that failed at faces
        # (or, in a run cut short, still waits for them) has its features row too
        ("features: one row per distinct sha256 of done posters",
         len(feature_rows) == len(feature_shas) and done_shas <= feature_shas
         and feature_shas - done_shas <= undone_shas,
         f"{len(feature_rows)} rows, {len(done_shas)} distinct sha256 done"
         + (f", {len(feature_shas - done_shas)} of posters not done"
            if feature_shas - done_shas else "")),
        ("faces cache: one row per distinct sha256 of done posters",
         len(face_rows) == len(face_shas) and face_shas == done_shas,
         f"{len(face_rows)} rows, {len(done_shas)} distinct sha256 done"),
        ("runs.total == posters, runs.pending == 0",
         run.get("total") == n and run.get("pending") == 0,
         f"total {run.get('total')}, pending {run.get('pending')}"),
        ("analysis done, completed once, run again only after kills",
         run.get("analysis_state") == "done" and len(completed) == 1
         and len(set(analyses)) - 1 <= kills,
         f"state {run.get('analysis_state')}, completed {len(completed)}, "
         f"{len(set(analyses))} task id(s), {len(analyses)} received line(s)"),
    ]
    return checks, failed


# ---------------------------------------------------------------- main


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if shutil.which("redis-server") is None:
        print("redis-server is required (apt-get install redis-server)", file=sys.stderr)
        return 1
    clean_wall = None
    if args.compare:
        clean = argparse.Namespace(**{**vars(args), "kill_every": 0.0, "poison": 0.0})
        print("-- the clean run (no kills, no poison), to compare with --", flush=True)
        code, clean_wall = _measure_in(clean, args.keep)
        if code != 0:
            return code
        print("\n-- the chaos run --", flush=True)
    code, wall = _measure_in(args, args.keep)
    if clean_wall is not None:
        ratio = wall / clean_wall
        print(c.table(["wall seconds", "value"], [
            ("clean run", round(clean_wall, 1)), ("chaos run", round(wall, 1)),
            ("chaos / clean (target <= 1.3)", round(ratio, 2))]))
        print(json.dumps({"benchmark": "chaos-vs-clean", "clean_wall": round(clean_wall, 2),
                          "chaos_wall": round(wall, 2), "ratio": round(ratio, 3)}))
        code = code or int(ratio > 1.3)
    return code


def _measure_in(args: argparse.Namespace, keep: bool) -> tuple[int, float]:
    folder = Path(tempfile.mkdtemp(prefix="posterlab-chaos-"))
    try:
        return measure(args, folder)
    finally:
        for engine in _engines.values():
            engine.dispose()
        if keep:
            print(f"kept {folder}", file=sys.stderr)
        else:
            shutil.rmtree(folder, ignore_errors=True)


def measure(args: argparse.Namespace, folder: Path) -> tuple[int, float]:
    manifest = h.sample_manifest(c.DATA, folder / "data", args.posters)
    n = h.count_csv_rows(manifest)
    planted = _poison.plant(manifest, args.poison, args.seed)
    redis_server = h.RedisServer(folder / "redis")
    stack = contextlib.ExitStack()
    stack.callback(redis_server.stop)
    with stack:
        db_url = stack.enter_context(database(args.db, folder))
        base = h.env_for(db_url, folder / "blobs", redis_server.url())
        h.run_cli("db", "upgrade", env=base)
        api = FaceApi(base, folder / "faceapi.log")
        stack.callback(api.stop)
        proxy = FaultProxy(api.port, args.p429, args.p500, args.seed)
        stack.callback(proxy.stop)
        env = dict(base)
        if args.face_provider == "http":
            env.update({"POSTERLAB_FACE_PROVIDER": "http", "POSTERLAB_FACE_API_URL": proxy.url,
                        "POSTERLAB_FACE_API_RATE": "50/s"})
        if args.stuck_after:
            env["POSTERLAB_STUCK_AFTER"] = str(args.stuck_after)
        chaos = Chaos(env, folder, args.workers, args.kill_every, args.status_every, db_url)
        stack.callback(chaos.end)
        chaos.wait_ready()

        def roles() -> dict[int, str]:
            found = {pid: "face API service" for pid in (api.proc.pid,
                                                         *h.descendants_of(api.proc.pid))}
            for w in list(chaos.workers):
                found[w.proc.pid] = "worker main"
                found.update({kid: "worker child" for kid in h.descendants_of(w.proc.pid)})
            return found

        watch = stack.enter_context(_poison.Watch(roles, args.kill_above_mb))
        with c.LoadSampler() as load:
            started = time.monotonic()
            h.run_cli("enqueue", str(manifest), "--run", RUN, env=env, timeout=600)
            enqueued = time.monotonic() - started
            chaos.begin()
            complete = False
            shown = started
            while time.monotonic() - started < args.timeout:
                run = run_row(db_url)
                if run and run["pending"] == 0 and run["analysis_state"] in ("done", "failed"):
                    complete = True
                    break
                if time.monotonic() - shown >= 30:
                    shown = time.monotonic()
                    print(f"[{shown - started:5.0f} s] {finished_posters(db_url)}/{n} finished, "
                          f"analysis {run.get('analysis_state')}, {len(chaos.kills)} killed, "
                          f"{sum(s.get('swept', 0) for s in chaos.statuses)} swept, "
                          f"{proxy.counts['post']} face-API POSTs", file=sys.stderr, flush=True)
                time.sleep(0.5)
            wall = time.monotonic() - started
            finished = finished_posters(db_url)
            chaos.end()
        final = chaos.status() or (chaos.statuses[-1] if chaos.statuses else {})
        checks, failed = exactness(db_url, n, chaos.logs(),
                                   kills=len(chaos.kills) + len(watch.kills))
        if planted:
            checks += _poison.check(query(db_url, "select row, status, error_code from posters"),
                                    planted)
        all_received = [(t, i) for log in chaos.logs() if log.exists()
                        for t, i in RECEIVED.findall(log.read_text(errors="replace"))]
        ids = Counter(i for _, i in all_received)
        redelivered = sum(1 for v in ids.values() if v > 1)
        tracebacks = sum(log.read_text(errors="replace").count("Traceback")
                           for log in chaos.logs() if log.exists())

    swept = [s.get("swept", 0) for s in chaos.statuses]
    passed = complete and all(ok for _, ok, _ in checks)
    rate = n / wall if complete else finished / wall
    figures = {k: final.get(k) for k in ("api_calls", "rate_limited", "retries", "cache_hits")}
    table_rows: list[tuple[str, Any]] = [
        ("posters", n),
        ("database", args.db),
        ("workers (-c 1 each)", args.workers),
        ("complete (pending 0, analysis done)", "yes" if complete else
         f"NO: not in {args.timeout:.0f} s"),
        ("wall seconds (enqueue start -> complete)", round(wall, 1)),
        ("  of which posterlab enqueue", round(enqueued, 1)),
        ("posters/s" if complete else "posters/s (finished so far)", round(rate, 2)),
        ("workers killed (SIGKILL, process group)", len(chaos.kills)),
        ("poison posters planted (bombs / killers)",
         f"{sum(k == _poison.BOMB for k in planted.values())} / "
         f"{sum(k == _poison.KILLER for k in planted.values())}"),
        (f"worker processes killed past {args.kill_above_mb:g} MB RSS", len(watch.kills)),
        ("  claims they held when killed", sum(max(0, k["claims_held"]) for k in chaos.kills)),
        ("proxy POSTs", proxy.counts["post"]),
        ("  429 with Retry-After", proxy.counts["429_retry_after"]),
        ("  429 without Retry-After", proxy.counts["429_no_retry_after"]),
        ("  500", proxy.counts["500"]),
        ("  forwarded", proxy.counts["forwarded"]),
        ("  forwarded answers by status", dict(sorted(proxy.relayed.items())) or "-"),
        ("  upstream errors (502)", proxy.counts["upstream_error"]),
        ("  client connections reset (killed workers)", proxy.counts["client_reset"]),
        ("status: api_calls", figures["api_calls"]),
        ("  POSTs not in api_calls (lost with killed workers)",
         proxy.counts["post"] - (figures["api_calls"] or 0)),
        ("status: rate_limited", figures["rate_limited"]),
        ("status: retries", figures["retries"]),
        ("status: cache_hits", figures["cache_hits"]),
        ("done", final.get("counts", {}).get("done")),
        ("failed", final.get("counts", {}).get("failed")),
        ("status --json runs (failed)", f"{len(chaos.statuses)} ({len(chaos.status_errors)})"),
        ("sweeper re-queues observed (sum of swept)", sum(swept)),
        ("  status runs that swept something", sum(1 for s in swept if s)),
        ("task ids received more than once", redelivered),
        ("tracebacks in worker logs", tracebacks),
        ("load average 1 min (min/median/max)",
         "/".join(str(v) for v in load.summary().values())),
    ]
    print(f"chaos: {n} posters, {args.workers} workers, a kill every {args.kill_every:g} s, "
          f"face API 429 {args.p429:.0%} / 500 {args.p500:.0%}, {args.db}; "
          f"machine {c.machine()['nproc']} cores ({c.machine()['cpu']})")
    print(c.table(["measure", "value"], table_rows))
    print()
    print(c.table(["process role", "processes seen", "peak RSS MB (VmHWM)"], watch.by_role()))
    print()
    print(c.table(["exactness check", "result", "detail"],
                  [(name, "pass" if ok else "FAIL", detail) for name, ok, detail in checks]))
    if not complete:
        print(f"\nthe run did not complete in {args.timeout:.0f} s: {finished} of {n} posters "
              f"finished; at {rate:.2f} posters/s about {int(rate * args.timeout)} posters fit "
              f"in that time on this machine (try --posters {int(rate * args.timeout * 0.8)})")
    groups: dict[str, list[dict[str, Any]]] = {}
    for p in failed:
        groups.setdefault(p["error_code"] or "?", []).append(p)
    if groups:
        print("\nfailed posters by reason:")
        for code, members in sorted(groups.items(), key=lambda g: -len(g[1])):
            print(f"  {code}: {len(members)}")
            for p in members:
                print(f"    {p['movie_key']} (row {p['row']}): {p['error']}")
    if chaos.status_errors:
        print(f"\n`posterlab status` failed {len(chaos.status_errors)} time(s); last: "
              f"{chaos.status_errors[-1]}")
    print(json.dumps({
        "benchmark": "chaos", "posters": n, "db": args.db, "workers": args.workers,
        "kill_every": args.kill_every, "p429": args.p429, "p500": args.p500,
        "complete": complete, "wall_seconds": round(wall, 2),
        "posters_per_second": round(rate, 3), "finished": finished,
        "workers_killed": len(chaos.kills),
        "proxy": {k: proxy.counts[k] for k in ("post", "429_retry_after", "429_no_retry_after",
                                               "500", "forwarded", "upstream_error",
                                               "client_reset")},
        "status": figures, "counts": final.get("counts"),
        "swept": sum(swept), "redelivered_task_ids": redelivered,
        "failed_by_reason": {k: len(v) for k, v in groups.items()},
        "checks": {name: ok for name, ok, _ in checks}, "passed": passed,
        "poison": {"planted": len(planted), "killed_past_limit": len(watch.kills)},
        "peak_rss_mb": {role: mb for role, _, mb in watch.by_role()},
        "load": load.summary(), "machine": c.machine(),
    }))
    return (0 if passed else 1), wall


if __name__ == "__main__":
    sys.exit(main())
