"""Faces through the face API: the real `posterlab faceapi serve`, real runs, real workers."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from posterlab.testing import env_for, free_port, posterlab_cmd, rows, run_cli, sample_manifest

pytestmark = pytest.mark.slow

KEY = "k3y-that-must-stay-secret"


@pytest.fixture
def face_api(tmp_path: Path) -> Iterator[str]:
    """`posterlab faceapi serve` with a key and a strict 20/s quota."""
    port = free_port()
    log = open(tmp_path / "faceapi.log", "wb")
    key_file = tmp_path / "faceapi.key"
    key_file.write_text(KEY + "\n")
    key_file.chmod(0o600)
    proc = subprocess.Popen(posterlab_cmd("faceapi", "serve", "--port", str(port),
                                          "--rate", "20/s", "--key-file", str(key_file)),
                            stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{url}/health", timeout=1).ok:
                break
        except requests.ConnectionError:
            time.sleep(0.2)
    else:
        raise AssertionError((tmp_path / "faceapi.log").read_text())
    yield url
    proc.terminate()
    proc.wait(10)
    log.close()


def test_http_provider_counts_faces_and_a_second_run_pays_for_nothing(
        data_dir: Path, face_api: str, db_url: str, tmp_path: Path) -> None:
    manifest = sample_manifest(data_dir, tmp_path / "m", 30)
    env = env_for(db_url, tmp_path / "blobs", POSTERLAB_FACE_PROVIDER="http",
                  POSTERLAB_FACE_API_URL=face_api, POSTERLAB_FACE_API_KEY=KEY,
                  POSTERLAB_FACE_API_RATE="20/s")
    run_cli("run", str(manifest), "--run", "first", "--workers", "2", "--no-analysis", env=env)
    first = json.loads(run_cli("status", "--json", "--run", "first", env=env).stdout)
    assert first["counts"]["done"] == 30
    distinct = rows(db_url, "select count(distinct sha256) as n from posters")[0]["n"]
    assert first["api_calls"] >= distinct
    # embedded runs split the quota between their processes (no shared Redis): a strict
    # server may still answer an occasional 429 on the processes' phase; it is retried
    assert first["rate_limited"] <= max(2, first["api_calls"] // 10), first
    assert first["api_calls"] >= distinct + first["rate_limited"]

    # the same posters in another run: every answer comes from the cache
    run_cli("run", str(manifest), "--run", "second", "--workers", "2", "--no-analysis", env=env)
    second = json.loads(run_cli("status", "--json", "--run", "second", env=env).stdout)
    assert second["counts"]["done"] == 30
    assert second["api_calls"] == 0 and second["cache_hits"] == 30

    # the key never reaches the database
    dump = json.dumps(rows(db_url, "select * from runs"), default=str)
    assert KEY not in dump and KEY not in json.dumps(first)


@pytest.mark.redis
def test_distributed_face_calls_share_one_quota_and_end_done(
        data_dir: Path, face_api: str, broker_url: str, tmp_path: Path, start_worker) -> None:
    manifest = sample_manifest(data_dir, tmp_path / "m", 40)
    db_url = f"sqlite:///{tmp_path / 'p.db'}"
    env = env_for(db_url, tmp_path / "blobs", broker_url, POSTERLAB_FACE_PROVIDER="http",
                  POSTERLAB_FACE_API_URL=face_api, POSTERLAB_FACE_API_KEY=KEY,
                  POSTERLAB_FACE_API_RATE="20/s")
    run_cli("db", "upgrade", env=env)
    workers = [start_worker("-c", "1", "-n", f"f{i}@test", env=env, name=f"f{i}")
               for i in range(2)]
    for w in workers:
        w.wait_ready()
    run_cli("enqueue", str(manifest), env=env)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        status = json.loads(run_cli("status", "--json", env=env).stdout)
        if status["complete"]:
            break
        time.sleep(1)
    assert status["counts"]["done"] == 40, status
    # two processes on one 20/s quota: the strict server never had to say 429
    assert status["rate_limited"] == 0
    for w in workers:
        assert KEY not in w.log.read_text(errors="replace")
