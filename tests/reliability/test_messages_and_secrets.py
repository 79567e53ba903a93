"""Only JSON messages are executed; secrets (face-API key, database and broker passwords)
appear in no log, error, ``status``, listing or export."""

from __future__ import annotations

import os
import pickle
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from posterlab.testing import (
    env_for,
    free_port,
    posterlab_cmd,
    rows,
    run_cli,
    sample_manifest,
)

pytestmark = [pytest.mark.slow, pytest.mark.redis]


class _Evil:
    """Unpickling this runs a shell command that creates ``marker``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _publish_pickle(broker: str, task: str, queue: str, payload: object) -> str:
    from kombu import Connection, Exchange, Producer

    task_id = str(uuid.uuid4())
    headers = {"lang": "py", "task": task, "id": task_id, "root_id": task_id,
               "parent_id": None, "group": None, "argsrepr": "(...)", "kwargsrepr": "{}",
               "origin": "test", "retries": 0, "eta": None, "expires": None}
    body = pickle.dumps(((payload,), {}, {"callbacks": None, "errbacks": None,
                                          "chain": None, "chord": None}))
    with Connection(broker) as conn:
        Producer(conn).publish(body, exchange=Exchange(queue, type="direct"),
                               routing_key=queue, headers=headers, serializer=None,
                               content_type="application/x-python-serialize",
                               content_encoding="binary")
    return task_id


def test_a_pickled_message_is_refused_unexecuted_and_the_worker_keeps_working(
        data_dir: Path, tmp_path: Path, private_broker: str, start_worker, watch) -> None:
    marker = tmp_path / "PWNED"
    db_url = f"sqlite:///{tmp_path / 'p.db'}"
    env = env_for(db_url, tmp_path / "blobs", private_broker)
    run_cli("db", "upgrade", env=env)
    worker = start_worker("-c", "1", "-n", "json@test", env=env, name="json")
    worker.wait_ready()

    ids = [_publish_pickle(private_broker, "posterlab.extract", "extract", _Evil(marker)),
           _publish_pickle(private_broker, "posterlab.fetch", "fetch", _Evil(marker))]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        log = worker.log.read_text(errors="replace")
        if log.count("Refusing to deserialize untrusted content of type pickle") >= 2:
            break
        time.sleep(0.2)
    log = worker.log.read_text(errors="replace")
    assert log.count("Refusing to deserialize untrusted content of type pickle") >= 2, log[-3000:]
    assert not marker.exists()
    for task_id in ids:
        assert f"[{task_id}] received" not in log  # never handed to a task

    # and the same worker goes on with ordinary JSON work
    manifest = sample_manifest(data_dir, tmp_path / "m", 8)
    run_cli("enqueue", str(manifest), "--run", "after", env=env)
    run = watch(db_url, "after")
    run.wait(run.finished, 90)
    assert run.counts() == {"done": 8}
    assert not marker.exists()
    assert worker.proc.poll() is None
    import redis

    client = redis.Redis.from_url(private_broker)
    assert client.hlen("unacked") == 0  # the refused messages are gone, not held
    assert all(client.llen(q) == 0 for q in ("fetch", "extract", "faces", "analysis"))


SECRETS = ("s3cr3t", "pgs3cr3tpw", "topsecretkey", "wr0ngs3cret")


def _assert_no_secret(where: str, text: str) -> None:
    for secret in SECRETS:
        assert secret not in text, f"{secret!r} leaked in {where}: ...{_around(text, secret)}..."


def _around(text: str, secret: str) -> str:
    i = text.find(secret)
    return text[max(0, i - 200):i + 200]


@pytest.mark.postgres
def test_secrets_never_appear_in_logs_errors_status_or_exports(
        data_dir: Path, tmp_path: Path, own_redis, pg_url: str, start_worker, watch,
        any_port) -> None:
    redis_server = own_redis(password="s3cr3t")
    broker = redis_server.url()
    assert "s3cr3t" in broker
    db_url = pg_url.replace("postgres@", "postgres:pgs3cr3tpw@", 1)  # trust: any password
    assert "pgs3cr3tpw" in db_url
    port = any_port()
    api_log = tmp_path / "faceapi.log"
    env = env_for(db_url, tmp_path / "blobs", broker, POSTERLAB_FACE_PROVIDER="http",
                  POSTERLAB_FACE_API_URL=f"http://127.0.0.1:{port}",
                  POSTERLAB_FACE_API_KEY="topsecretkey", POSTERLAB_FACE_API_RATE="50/s")
    with open(api_log, "wb") as out:
        api = subprocess.Popen(posterlab_cmd("faceapi", "serve", "--port", str(port)),
                               env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        _secrets_scenario(data_dir, tmp_path, env, db_url, broker, redis_server,
                          start_worker, watch, api_log, port)
    finally:
        api.terminate()
        api.wait(10)


def _secrets_scenario(data_dir, tmp_path, env, db_url, broker, redis_server, start_worker,
                      watch, api_log, port) -> None:
    texts: dict[str, str] = {}
    run_cli("db", "upgrade", env=env)
    worker = start_worker("-c", "1", "-n", "secrets@test", env=env, name="secrets")
    worker.wait_ready()
    manifest = sample_manifest(data_dir, tmp_path / "m", 12)
    out = run_cli("enqueue", str(manifest), "--run", "secret-run", env=env)
    texts["enqueue"] = out.stdout + out.stderr
    run = watch(db_url, "secret-run")
    run.wait(run.finished, 120)
    assert run.counts() == {"done": 12}
    assert sum(p["api_calls"] for p in run.posters()) >= 1  # the key was really used

    # the face API refuses a wrong key: failures carry reasons, never the key sent
    wrong = {**env, "POSTERLAB_FACE_API_KEY": "wr0ngs3cret"}
    # --skip-checks: the checks would refuse the wrong key before any poster is touched
    bad_worker = start_worker("-c", "1", "-n", "wrongkey@test", "--skip-checks", env=wrong,
                              name="wrongkey")
    worker.stop()
    bad_worker.wait_ready()
    fresh = _fresh_manifest(data_dir, tmp_path / "fresh")  # images not in the face cache
    out = run_cli("enqueue", str(fresh), "--run", "wrong-key", "--skip-checks", env=wrong)
    texts["enqueue wrong key"] = out.stdout + out.stderr
    other = watch(db_url, "wrong-key")
    other.wait(other.finished, 120)
    codes = {p["error_code"] for p in other.posters()}
    failed_faces = [p for p in other.posters() if p["status"] == "failed"]
    assert len(failed_faces) == 3 and codes == {"face-api-auth"}, codes
    bad_worker.stop()

    for cmd in (["status", "--json", "--run", "secret-run"],
                ["status", "--run", "wrong-key"], ["runs"], ["runs", "--json"],
                ["failures", "--run", "wrong-key"], ["failures", "--json", "--run", "wrong-key"],
                ["export", "--run", "wrong-key", "--format", "csv"],
                ["export", "--run", "secret-run", "--format", "json"]):
        got = run_cli(*cmd, env=env)
        texts[" ".join(cmd)] = got.stdout + got.stderr
    # errors of commands that cannot reach a server name the server, never the password
    dead = free_port()  # nothing listens there (port + 1 may be another test's server)
    for what, bad_env, cmd in (
            ("broker refuses the password", {**env, "POSTERLAB_BROKER_URL":
             redis_server.url().replace("s3cr3t", "wr0ngs3cret")},
             ["enqueue", str(manifest), "--run", "never"]),
            ("database unreachable", {**env, "POSTERLAB_DATABASE_URL":
             f"postgresql://postgres:pgs3cr3tpw@127.0.0.1:{dead}/none"}, ["status"]),
            ("broker unreachable", {**env, "POSTERLAB_BROKER_URL":
             f"redis://:s3cr3t@127.0.0.1:{dead}/0"}, ["status", "--json"])):
        got = run_cli(*cmd, env=bad_env, check=False, timeout=120)
        texts[what] = got.stdout + got.stderr
    assert "secret-run" in texts["status --json --run secret-run"]

    for log in [*sorted(tmp_path.glob("worker-*.log")), api_log]:
        texts[log.name] = log.read_text(errors="replace")
    for r in rows(db_url, "select * from runs"):
        texts[f"runs row {r['name']}"] = repr(r)
    for p in rows(db_url, "select * from posters"):
        texts[f"poster {p['id']}"] = repr(p)
    client = redis_server.client()
    for key in client.keys("*"):
        kind = client.type(key)
        if kind == b"list":
            texts[f"redis {key!r}"] = repr(client.lrange(key, 0, -1))
        elif kind == b"hash":
            texts[f"redis {key!r}"] = repr(client.hgetall(key))
    for where, text in texts.items():
        _assert_no_secret(where, text)


def _fresh_manifest(data_dir: Path, folder: Path) -> Path:
    import shutil

    (folder / "posters").mkdir(parents=True)
    path = folder / "index.csv"
    lines = ["imdbId,Title,IMDB Score,Genre,poster_file"]
    for i, poster in enumerate(sorted((data_dir / "posters" / "posters").glob("*.jpg"))[-3:]):
        shutil.copyfile(poster, folder / "posters" / poster.name)
        lines.append(f"{900 + i},Fresh {i},6.0,Drama,posters/{poster.name}")
    path.write_text("\n".join(lines) + "\n")
    return path
