"""fetch_many / Downloader against real HTTP servers on 127.0.0.1 that count what they see."""

from __future__ import annotations

import random
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from posterlab.config import Settings, load_settings
from posterlab.errors import ConfigError, PosterlabError
from posterlab.fetch import Downloader, FetchPolicy, fetch_bytes, fetch_many
from posterlab.fetch.http import TransientHttpError, parse_retry_after

POSTER = b"\xff\xd8\xff\xe0 a poster's bytes"
LOCAL = FetchPolicy(allow=("127.0.0.1",), connect_timeout=2.0, read_timeout=2.0)


@dataclass
class Stats:
    """What a server (or several sharing it) saw: requests, connections, peaks."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    active: int = 0  # requests being answered now
    peak: int = 0
    open: int = 0  # connections open now
    peak_open: int = 0
    connections: int = 0  # connections ever opened
    arrivals: dict[str, list[float]] = field(default_factory=dict)  # path -> times

    def enter(self, path: str) -> None:
        with self.lock:
            self.active += 1
            self.peak = max(self.peak, self.active)
            self.arrivals.setdefault(path, []).append(time.monotonic())

    def leave(self) -> None:
        with self.lock:
            self.active -= 1

    def connect(self, delta: int) -> None:
        with self.lock:
            self.open += delta
            self.connections += max(delta, 0)
            self.peak_open = max(self.peak_open, self.open)

    def requests(self, prefix: str = "/") -> int:
        return sum(len(times) for path, times in self.arrivals.items() if path.startswith(prefix))


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive
    stats: Stats
    latency: float

    def log_message(self, format: str, *args: object) -> None:
        pass

    def setup(self) -> None:
        super().setup()
        self.stats.connect(+1)

    def finish(self) -> None:
        self.stats.connect(-1)
        super().finish()

    def do_GET(self) -> None:
        self.stats.enter(self.path)
        try:
            route = self.path.strip("/").split("/")[0].replace("-", "_")
            getattr(self, "route_" + route, self.route_missing)()
        except (BrokenPipeError, ConnectionResetError):
            pass
        finally:
            self.stats.leave()

    def _send(self, status: int, body: bytes = b"", **headers: str) -> None:
        self.send_response(status)
        for name, value in {"Content-Length": str(len(body)), **headers}.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _first_time(self) -> bool:
        return len(self.stats.arrivals[self.path]) == 1

    def route_missing(self) -> None:
        self._send(404, b"no such poster")

    def route_poster(self) -> None:
        time.sleep(self.latency)
        self._send(200, POSTER)

    def route_busy_once(self) -> None:
        if self._first_time():
            self._send(429, b"slow down", **{"Retry-After": "1"})
        else:
            self._send(200, POSTER)

    def route_busy_long(self) -> None:
        self._send(429, b"come back later", **{"Retry-After": "3600"})

    def route_flaky(self) -> None:
        time.sleep(self.latency)
        self._send(503 if self._first_time() else 200, POSTER)

    def route_down(self) -> None:
        self._send(503, b"down")

    def route_to_private(self) -> None:
        self._send(307, Location="http://10.0.0.1/poster.jpg")

    def route_to_metadata(self) -> None:
        self._send(302, Location="http://169.254.169.254/latest/meta-data/")

    def route_declared_huge(self) -> None:
        self._send(200, b"x", **{"Content-Length": str(10**10)})

    def route_endless(self) -> None:
        self.send_response(200)
        self.send_header("Connection", "close")
        self.end_headers()
        for _ in range(10_000):
            self.wfile.write(b"\x00" * 65536)

    def route_stall(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "1000")
        self.end_headers()
        self.wfile.write(b"x" * 10)
        self.wfile.flush()
        time.sleep(4)

    def route_slow_headers(self) -> None:
        # one byte every 0.2 s: each read is quick, the answer never ends
        for byte in b"HTTP/1.1 200 OK\r\nX-Padding: " + b"a" * 400:
            self.wfile.write(bytes([byte]))
            self.wfile.flush()
            time.sleep(0.2)
        self.close_connection = True


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 64  # many connections at once must not overflow the listen backlog

    def handle_error(self, request: object, client_address: object) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)  # type: ignore[arg-type]


@pytest.fixture
def serve() -> Iterator[object]:
    """Start servers on 127.0.0.1: ``serve(stats, latency)`` -> base URL."""
    servers: list[_Server] = []

    def start(stats: Stats, latency: float = 0.0) -> str:
        handler = type("Handler", (_Handler,), {"stats": stats, "latency": latency})
        httpd = _Server(("127.0.0.1", 0), handler)
        threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True).start()
        servers.append(httpd)
        return f"http://127.0.0.1:{httpd.server_address[1]}"

    yield start
    for httpd in servers:
        httpd.shutdown()
        httpd.server_close()


def _policy(**changes: object) -> FetchPolicy:
    return FetchPolicy(**{**LOCAL.__dict__, **changes})  # type: ignore[arg-type]


def _codes(results: list[bytes | PosterlabError]) -> list[str]:
    return [r.code if isinstance(r, PosterlabError) else "ok" for r in results]


def test_downloads_overlap_within_the_global_cap_across_hosts(serve):
    stats = Stats()
    bases = [serve(stats, latency=0.1), serve(stats, latency=0.1)]
    urls = [f"{bases[i % 2]}/poster/{i}" for i in range(40)]
    started = time.monotonic()
    results = fetch_many(urls, policy=_policy(concurrency=6, per_host=4))
    elapsed = time.monotonic() - started
    assert results == [POSTER] * 40
    assert 1 < stats.peak <= 6
    assert elapsed < 40 * 0.1 / 2  # one at a time would take 4 s


def test_the_per_host_cap_holds_on_open_connections(serve):
    stats = Stats()
    base = serve(stats, latency=0.05)
    results = fetch_many([f"{base}/poster/{i}" for i in range(30)],
                         policy=_policy(concurrency=16, per_host=3))
    assert results == [POSTER] * 30
    assert stats.peak == 3  # the cap is reached, never passed
    assert stats.peak_open <= 3


def test_connections_are_kept_alive_across_posters_and_batches(serve):
    stats = Stats()
    base = serve(stats, latency=0.01)
    with Downloader(_policy(concurrency=8, per_host=4)) as downloader:
        for batch in range(2):
            urls = [f"{base}/poster/{batch}-{i}" for i in range(25)]
            assert downloader.fetch_many(urls) == [POSTER] * 25
    assert stats.requests() == 50
    assert stats.connections <= 4


def test_retry_after_is_honoured_and_the_waiting_retry_holds_no_slot(serve):
    stats = Stats()
    base = serve(stats, latency=0.1)
    urls = [f"{base}/busy-once/a"] + [f"{base}/poster/{i}" for i in range(5)]
    finished: dict[int, float] = {}
    results = fetch_many(urls, policy=_policy(concurrency=1, per_host=1),
                         on_done=lambda index, _: finished.setdefault(index, time.monotonic()))
    assert results == [POSTER] * 6
    first, second = stats.arrivals["/busy-once/a"]
    assert second - first >= 1.0
    # one slot only: the five others got it while the 429 waited its second
    assert max(finished[i] for i in range(1, 6)) < second


def test_posters_that_fail_once_with_503_succeed(serve):
    stats = Stats()
    base = serve(stats)
    results = fetch_many([f"{base}/flaky/{i}" for i in range(10)], policy=LOCAL)
    assert results == [POSTER] * 10
    assert stats.requests("/flaky") == 20


def test_a_404_fails_at_once_with_one_request(serve):
    stats = Stats()
    base = serve(stats)
    [error] = fetch_many([f"{base}/missing/1.jpg"], policy=LOCAL)
    assert isinstance(error, PosterlabError) and error.code == "fetch-http-404"
    assert not error.retryable
    assert stats.requests() == 1


def test_a_transient_error_stays_retryable_after_the_last_attempt(serve):
    stats = Stats()
    base = serve(stats)
    [error] = fetch_many([f"{base}/down"], policy=_policy(attempts=2))
    assert isinstance(error, PosterlabError) and error.code == "fetch-http-503"
    assert error.retryable
    assert stats.requests() == 2


def test_a_retry_after_beyond_the_cap_is_left_to_the_pipeline(serve):
    stats = Stats()
    base = serve(stats)
    [error] = fetch_many([f"{base}/busy-long"], policy=LOCAL)
    assert isinstance(error, TransientHttpError) and error.retryable
    assert error.retry_after == 3600.0
    assert stats.requests() == 1


def test_no_retry_starts_after_the_batch_budget(serve):
    stats = Stats()
    base = serve(stats)
    started = time.monotonic()
    [error] = fetch_many([f"{base}/busy-once/b"], policy=_policy(retry_budget=0.5))
    assert isinstance(error, PosterlabError) and error.code == "fetch-http-429"
    assert time.monotonic() - started < 1.0


def test_a_server_trickling_its_headers_fails_within_the_deadline(serve):
    base = serve(Stats())
    policy = _policy(total_timeout=1.5, attempts=1)
    started = time.monotonic()
    with pytest.raises(PosterlabError) as info:
        fetch_bytes(f"{base}/slow-headers", policy=policy)
    assert info.value.code == "fetch-timeout" and info.value.retryable
    assert time.monotonic() - started < 1.5 + 5
    started = time.monotonic()
    [error, ok] = fetch_many([f"{base}/slow-headers", f"{base}/poster/1"], policy=policy)
    assert isinstance(error, PosterlabError) and error.code == "fetch-timeout"
    assert ok == POSTER
    assert time.monotonic() - started < 1.5 + 5


def test_a_body_stalled_past_the_deadline_is_cut_there_not_at_the_read_timeout(serve):
    base = serve(Stats())
    policy = _policy(total_timeout=1.0, read_timeout=10.0, attempts=1)
    started = time.monotonic()
    [error] = fetch_many([f"{base}/stall"], policy=policy)
    assert isinstance(error, PosterlabError) and error.code == "fetch-timeout"
    assert time.monotonic() - started < 2.5


def test_a_redirect_to_a_private_address_mid_batch_is_refused_and_the_rest_is_fine(serve):
    stats = Stats()
    base = serve(stats, latency=0.02)
    urls = [f"{base}/poster/{i}" for i in range(20)]
    urls[7], urls[12] = f"{base}/to-private", f"{base}/to-metadata"
    results = fetch_many(urls, policy=_policy(concurrency=8, per_host=8))
    codes = _codes(results)
    assert codes[7] == codes[12] == "fetch-refused-address"
    assert codes.count("ok") == 18
    assert stats.requests("/to-") == 2  # refused before connecting: no retry either


def test_too_large_bodies_are_refused_and_the_rest_is_fine(serve):
    base = serve(Stats())
    urls = [f"{base}/declared-huge", f"{base}/poster/1", f"{base}/endless"]
    results = fetch_many(urls, policy=_policy(max_bytes=100_000))
    assert _codes(results) == ["fetch-too-large", "ok", "fetch-too-large"]


def test_local_files_go_through_the_same_call(serve, tmp_path: Path):
    base = serve(Stats())
    (tmp_path / "a.jpg").write_bytes(b"local poster")
    done: list[int] = []
    sources = [str(tmp_path / "a.jpg"), f"{base}/poster/1", str(tmp_path / "missing.jpg")]
    results = fetch_many(sources, policy=LOCAL, base_dir=str(tmp_path),
                         on_done=lambda index, _: done.append(index))
    assert results[:2] == [b"local poster", POSTER]
    assert _codes(results)[2] == "fetch-not-found"
    assert sorted(done) == [0, 1, 2]


def test_an_empty_batch_is_an_empty_list():
    assert fetch_many([], policy=LOCAL) == []


def test_a_downloader_with_a_seeded_rng_is_reused_after_errors(serve):
    base = serve(Stats())
    with Downloader(LOCAL, rng=random.Random(0)) as downloader:
        assert _codes(downloader.fetch_many([f"{base}/missing"])) == ["fetch-http-404"]
        assert downloader.fetch_many([f"{base}/poster/1"]) == [POSTER]


def test_retry_after_is_read_as_seconds_or_an_http_date():
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:10 GMT", now=1445412480.0) == 10.0
    assert parse_retry_after("later") is None and parse_retry_after(None) is None


def test_the_caps_come_from_the_environment_with_defaults():
    assert (Settings().fetch_concurrency, Settings().fetch_per_host) == (32, 8)
    settings = load_settings({"POSTERLAB_FETCH_CONCURRENCY": "64", "POSTERLAB_FETCH_PER_HOST": "2"})
    policy = FetchPolicy.from_settings(settings)
    assert (policy.concurrency, policy.per_host) == (64, 2)


@pytest.mark.parametrize("key", ["POSTERLAB_FETCH_CONCURRENCY", "POSTERLAB_FETCH_PER_HOST"])
@pytest.mark.parametrize("value", ["0", "-3", "many"])
def test_caps_below_one_or_not_integers_are_refused(key, value):
    with pytest.raises(ConfigError, match=key):
        load_settings({key: value})


@pytest.mark.parametrize("bad", [{"concurrency": 0}, {"per_host": 1.5}, {"attempts": 0},
                                 {"retry_budget": 0}])
def test_a_policy_with_impossible_batch_limits_is_refused(bad):
    with pytest.raises(ValueError, match=next(iter(bad))):
        FetchPolicy(**bad)
