"""Fixtures of the face tests: real servers on 127.0.0.1, Redis with a key prefix, data.

The Redis check itself (skip on a laptop, fail when ``CI`` is set) is the root
conftest's ``redis_server``.
"""

from __future__ import annotations

import http.server
import json
import socket
import struct
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import redis
import uvicorn
from starlette.applications import Starlette

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


@pytest.fixture(scope="session")
def face_data() -> Path:
    """../shared/data with face_boxes and face_reference, or skip."""
    if not (DATA / "face_reference" / "index.csv").is_file():
        pytest.skip(f"face data not found at {DATA} (../shared/data next to the repository)")
    return DATA


@pytest.fixture(scope="session")
def poster_bytes(face_data: Path) -> bytes:
    """A 182x268 JPEG poster with three clear faces (Domino, 2005)."""
    return (face_data / "face_reference" / "posters" / "421054.jpg").read_bytes()


@pytest.fixture
def redis_client(redis_server: str) -> Iterator[redis.Redis]:
    """A client on the test Redis; yields it with ``.test_prefix`` and deletes its keys."""
    client = redis.Redis.from_url(redis_server, socket_timeout=5)
    prefix = f"posterlab-test:{uuid.uuid4().hex[:8]}:"
    client.test_prefix = prefix  # type: ignore[attr-defined]
    yield client
    keys = list(client.scan_iter(match=prefix + "*"))
    if keys:
        client.delete(*keys)
    client.close()


@contextmanager
def running(app: Starlette) -> Iterator[str]:
    """Serve ``app`` with a real uvicorn in a thread; yield its base URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))  # bound before the thread starts: no free-port race
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    for _ in range(500):
        if server.started:
            break
        time.sleep(0.01)
    else:
        raise RuntimeError("uvicorn did not start within 5 s")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


# --- a scripted fault server (stdlib: it must misbehave in ways a framework won't) ---

@dataclass
class Seen:
    """One request the fault server received."""

    path: str
    params: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes


@dataclass
class FaultServer:
    """Answers each request with the next scripted action; the last one repeats.

    Actions: ``("json", status, payload, headers)``, ``("raw", status, text)``,
    ``("hang", seconds)``, ``("reset",)``.
    """

    url: str
    actions: list[tuple[Any, ...]] = field(default_factory=list)
    seen: list[Seen] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def script(self, *actions: tuple[Any, ...]) -> None:
        with self.lock:
            self.actions = list(actions)
            self.seen.clear()

    def next_action(self) -> tuple[Any, ...]:
        with self.lock:
            return self.actions.pop(0) if len(self.actions) > 1 else self.actions[0]


def _handler(fault: Callable[[], FaultServer]) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # quiet tests
            pass

        def do_POST(self) -> None:
            server = fault()
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            parts = urlsplit(self.path)
            with server.lock:
                server.seen.append(Seen(parts.path, parse_qs(parts.query),
                                        dict(self.headers.items()), body))
            action = server.next_action()
            kind = action[0]
            if kind == "hang":
                time.sleep(action[1])
                self.close_connection = True
                return
            if kind == "reset":
                # SO_LINGER 0: close() sends RST, the client sees a connection reset
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                           struct.pack("ii", 1, 0))
                self.close_connection = True
                self.connection.close()
                return
            if kind == "json":
                _, status, payload, headers = action
                data = json.dumps(payload).encode()
                content_type = "application/json"
            else:
                _, status, text = action
                data, headers, content_type = text.encode(), {}, "text/plain"
            if "Date" in headers:
                self.send_response_only(status)  # no second, automatic Date
            else:
                self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

    return Handler


@pytest.fixture
def fault_server() -> Iterator[FaultServer]:
    holder: list[FaultServer] = []
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(lambda: holder[0]))
    httpd.daemon_threads = True
    holder.append(FaultServer(f"http://127.0.0.1:{httpd.server_address[1]}"))
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    yield holder[0]
    httpd.shutdown()
    httpd.server_close()


class FakeClock:
    """A monotonic clock that moves only when someone sleeps on it."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(scope="session")
def noise_png() -> bytes:
    """A 64x64 PNG of noise (~12 KB): a valid image without faces, no data needed."""
    import io

    import numpy as np
    from PIL import Image

    pixels = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="PNG")
    return out.getvalue()


@pytest.fixture(scope="session")
def serve_app() -> Callable[[Starlette], Any]:
    """``with serve_app(app) as url:`` runs ``app`` on a real uvicorn in a thread."""
    return running
