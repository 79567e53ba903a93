"""Posters per second downloading one after another (fetch_bytes) and with fetch_many.

A server on 127.0.0.1 plays a far-away CDN: it serves the shared posters after 150 ms
± 50 ms each, and every 50th poster answers 503 once. The same posters are fetched
sequentially (one keep-alive session; a transient error is tried once more at once)
and with :func:`posterlab.fetch.fetch_many` at the default caps; the script prints
posters/s for both and their ratio, then one JSON line.

    .venv/bin/python benchmarks/fetch_many.py
    .venv/bin/python benchmarks/fetch_many.py --count 600 --latency 0.5 --per-host 16
"""

from __future__ import annotations

import argparse
import json
import random
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from posterlab.errors import PosterlabError, TransientFetchError
from posterlab.fetch import FetchPolicy, fetch_bytes, fetch_many, make_session

POSTERS = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "posters" / "posters"


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # 32 connections at once must not overflow the listen backlog


def _handler(folder: Path, latency: float, jitter: float, flaky_every: int) -> type:
    failed: set[str] = set()
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # headers and body go out as two writes: with Nagle on, the body would wait for
        # the client's delayed ACK (~40 ms a poster), a cost of this server, not of a CDN
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            time.sleep(max(0.0, random.uniform(latency - jitter, latency + jitter)))
            index, _, name = self.path.strip("/").partition("/")
            with lock:
                first = self.path not in failed
                failed.add(self.path)
            path = folder / name
            if int(index) % flaky_every == flaky_every - 1 and first:
                self._send(503, b"busy")
            elif path.is_file():
                self._send(200, path.read_bytes())
            else:
                self._send(404, b"no such poster")

        def _send(self, status: int, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Content-Type", "image/jpeg")
            self.end_headers()
            self.wfile.write(body)

    return Handler


@contextmanager
def serving(args: argparse.Namespace) -> Iterator[str]:
    """A fresh latency server (its 503-once memory empty); yields its base URL."""
    httpd = _Server(("127.0.0.1", 0), _handler(args.posters, args.latency, args.jitter,
                                               args.flaky_every))
    threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def sequential(urls: Sequence[str], policy: FetchPolicy) -> list[bytes | PosterlabError]:
    """One download after another over one session, as a fetch task did before."""
    results: list[bytes | PosterlabError] = []
    with make_session() as session:
        for url in urls:
            for attempt in (1, 2):
                try:
                    results.append(fetch_bytes(url, policy=policy, session=session))
                    break
                except TransientFetchError as exc:
                    if attempt == 2:
                        results.append(exc)
                except PosterlabError as exc:
                    results.append(exc)
                    break
    return results


def measure(args: argparse.Namespace, names: Sequence[str], policy: FetchPolicy,
            fetch: Callable[[Sequence[str], FetchPolicy], list[Any]]) -> dict[str, Any]:
    """Posters/s and failures of ``fetch`` on a fresh server."""
    with serving(args) as base:
        urls = [f"{base}/{i}/{name}" for i, name in enumerate(names)]
        started = time.perf_counter()
        results = fetch(urls, policy)
        seconds = time.perf_counter() - started
    failed = sum(isinstance(r, PosterlabError) for r in results)
    return {"posters": len(urls), "seconds": round(seconds, 2), "failed": failed,
            "posters_per_s": round(len(urls) / seconds, 2)}


def main(argv: Sequence[str] | None = None) -> None:
    """Run both modes and print the table and one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posters", type=Path, default=POSTERS)
    parser.add_argument("--count", type=int, default=300)
    parser.add_argument("--latency", type=float, default=0.15)
    parser.add_argument("--jitter", type=float, default=0.05)
    parser.add_argument("--flaky-every", type=int, default=50)
    parser.add_argument("--concurrency", type=int, default=FetchPolicy.concurrency)
    parser.add_argument("--per-host", type=int, default=FetchPolicy.per_host)
    args = parser.parse_args(argv)
    names = sorted(p.name for p in args.posters.glob("*.jpg"))[: args.count]
    policy = FetchPolicy(allow=("127.0.0.1",), concurrency=args.concurrency,
                         per_host=args.per_host)
    seq = measure(args, names, policy, sequential)
    many = measure(args, names, policy,
                   lambda urls, pol: fetch_many(urls, policy=pol))
    ratio = many["posters_per_s"] / seq["posters_per_s"]
    print(f"{len(names)} posters, {args.latency * 1000:.0f} ms ± {args.jitter * 1000:.0f} ms, "
          f"every {args.flaky_every}th 503 once, concurrency {args.concurrency}, "
          f"per host {args.per_host}")
    print(f"{'mode':<12}{'seconds':>9}{'posters/s':>11}{'failed':>8}")
    for mode, row in (("sequential", seq), ("fetch_many", many)):
        print(f"{mode:<12}{row['seconds']:>9.2f}{row['posters_per_s']:>11.2f}{row['failed']:>8}")
    print(f"ratio fetch_many / sequential: {ratio:.1f}x")
    print(json.dumps({"sequential": seq, "fetch_many": many, "ratio": round(ratio, 2),
                      "latency": args.latency, "jitter": args.jitter,
                      "concurrency": args.concurrency, "per_host": args.per_host}))


if __name__ == "__main__":
    main()
