"""The Redis quota holds across processes: 4 clients share 20/s against a strict server."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis
import requests

from posterlab.testing import free_port

HERE = Path(__file__).resolve().parent
RATE = 20.0
DURATION = 8.0
CLIENTS = 4


def wait_healthy(url: str, server: subprocess.Popen) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert server.poll() is None, "the face API server exited"
        try:
            if requests.get(url + "/health", timeout=1).ok:
                return
        except requests.ConnectionError:
            time.sleep(0.1)
    raise AssertionError("the face API server did not answer /health within 30 s")


@pytest.mark.slow
@pytest.mark.redis
@pytest.mark.exclusive  # a rate measured over 8 s
def test_four_processes_sharing_20_per_second_get_20_per_second_and_no_429(
        redis_client: redis.Redis, redis_server: str, noise_png: bytes, tmp_path: Path) -> None:
    image = tmp_path / "noise.png"
    image.write_bytes(noise_png)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([
        sys.executable, "-c",
        "from posterlab.config import parse_rate; from posterlab.faces.server import serve; "
        f"serve('127.0.0.1', {port}, rate=parse_rate('{RATE:g}/s'), log_level='warning')",
    ])
    clients: list[subprocess.Popen] = []
    try:
        wait_healthy(url, server)
        start_at = time.monotonic() + 3.0  # every client imported and connected by then
        clients = [subprocess.Popen(
            [sys.executable, str(HERE / "rate_client.py"), "--url", url, "--redis", redis_server,
             "--quota-key", redis_client.test_prefix + "quota",  # type: ignore[attr-defined]
             "--rate", f"{RATE:g}/s", "--image", str(image),
             "--start-at", repr(start_at), "--duration", repr(DURATION)],
            stdout=subprocess.PIPE, text=True) for _ in range(CLIENTS)]
        reports = [json.loads(c.communicate(timeout=60)[0]) for c in clients]
    finally:
        for proc in [*clients, server]:
            if proc.poll() is None:
                proc.terminate()
                proc.wait(10)
    answered = sorted(t for r in reports for t in r["answered"])
    # calls answered per second between the first and the last answer
    achieved = (len(answered) - 1) / (answered[-1] - answered[0])
    print(f"{len(answered)} calls by {CLIENTS} processes in {answered[-1] - answered[0]:.2f} s: "
          f"{achieved:.2f}/s, 429s: {sum(r['rate_limited'] for r in reports)}")
    assert all(r["answered"] for r in reports), "every process made calls"
    assert sum(r["rate_limited"] for r in reports) == 0
    assert sum(r["errors"] for r in reports) == 0
    assert achieved == pytest.approx(RATE, rel=0.05)
