"""Operating runs with real processes: cancel under load in both modes, the checks before
work starts, honest exit codes, and the analysis made again after a retry."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from posterlab.testing import (
    env_for,
    free_port,
    poster_counts,
    posterlab_cmd,
    rows,
    run_cli,
    sample_manifest,
)

pytestmark = pytest.mark.slow
KEY = "the-right-key"


def wait_for(predicate, timeout: float = 180.0, every: float = 0.3):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(every)
    raise AssertionError(f"not reached in {timeout}s")


def done_count(db_url: str, run: str) -> int:
    """Posters of the run done so far; 0 while the run's database is still being made."""
    import sqlalchemy as sa

    if db_url.startswith("sqlite:///") and not Path(db_url[len("sqlite:///"):]).exists():
        return 0
    try:
        return poster_counts(db_url, run).get("done", 0)
    except sa.exc.OperationalError:
        return 0


def settled(env: dict[str, str]) -> dict:
    status = json.loads(run_cli("status", "--json", env=env).stdout)
    return status if status["settled"] else {}


@pytest.mark.redis
def test_cancel_of_a_distributed_run_stops_the_workers_work_and_analyses_what_is_done(
        data_dir: Path, pg_url: str, broker_url: str, tmp_path: Path, start_worker) -> None:
    manifest = sample_manifest(data_dir, tmp_path / "m", 300)
    env = env_for(pg_url, tmp_path / "blobs", broker_url)
    run_cli("db", "upgrade", env=env)
    worker = start_worker("-c", "1", "-n", "cancel@test", "--", "-E", env=env)
    worker.wait_ready()
    queued = json.loads(run_cli("enqueue", str(manifest), "--run", "big", "--json",
                                env=env).stdout)
    # the worker is already up: some posters may be past fetch when the counts are read
    assert queued["queued"] == 300 and sum(queued["counts"].values()) == 300
    wait_for(lambda: poster_counts(pg_url, "big").get("done", 0) >= 2)
    workers = json.loads(run_cli("status", "--json", env=env).stdout)["workers"]
    assert {"cancel@test"} <= {w["name"] for w in workers}
    assert all({"hostname", "queues", "posters_last_minute", "last_seen"} <= set(w)
               for w in workers)

    done = json.loads(run_cli("cancel", "--run", "big", "--json", env=env).stdout)
    assert 0 < done["cancelled"] < 300 and done["counts"]["cancelled"] == done["cancelled"]
    assert sum(done["counts"][s] for s in ("fetch", "extract", "faces")) == 0
    time.sleep(1)
    before = poster_counts(pg_url, "big")
    time.sleep(4)  # the queued messages are consumed meanwhile: they move nothing
    assert poster_counts(pg_url, "big") == before
    status = wait_for(lambda: settled(env))
    assert status["complete"] and status["analysis"] == "done"
    assert status["counts"]["done"] + status["counts"]["cancelled"] == 300
    log = worker.log.read_text(errors="replace")
    assert "run big movie " in log  # log lines name the poster
    assert "task events: ON" in log  # `-- -E` reached celery worker


def test_cancel_of_an_embedded_run_ends_the_running_command(
        data_dir: Path, tmp_path: Path) -> None:
    manifest = sample_manifest(data_dir, tmp_path / "m", 300)
    db_url = f"sqlite:///{tmp_path / 'e.db'}"
    env = env_for(db_url, tmp_path / "blobs")
    proc = subprocess.Popen(posterlab_cmd("run", str(manifest), "--run", "e", "--workers",
                                          "1"), env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        wait_for(lambda: done_count(db_url, "e") >= 2)
        done = json.loads(run_cli("cancel", "--run", "e", "--no-analysis", "--json",
                                  env=env).stdout)
        output, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, output
    assert done["cancelled"] > 0 and done["analysis"] == "skipped"
    counts = poster_counts(db_url, "e")
    assert counts.get("cancelled") == done["cancelled"] and "fetch" not in counts
    assert rows(db_url, "select analysis_state from runs") == [{"analysis_state": "skipped"}]


@pytest.fixture
def face_api(tmp_path: Path) -> Iterator[str]:
    """A real `posterlab faceapi serve` that takes one key."""
    port = free_port()
    log = open(tmp_path / "faceapi.log", "wb")
    proc = subprocess.Popen(posterlab_cmd("faceapi", "serve", "--port", str(port)),
                            env={**os.environ, "POSTERLAB_FACE_API_KEY": KEY}, stdout=log,
                            stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            return requests.get(f"{url}/health", timeout=1).ok
        except requests.ConnectionError:
            return False

    try:
        wait_for(up, timeout=90)
        yield url
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()


def test_checks_refuse_to_start_and_touch_no_poster(
        data_dir: Path, pg_url: str, face_api: str, tmp_path: Path) -> None:
    manifest = sample_manifest(data_dir, tmp_path / "m", 3)
    down = f"redis://127.0.0.1:{free_port()}/0"
    wrong = env_for(pg_url, tmp_path / "blobs", down, POSTERLAB_FACE_PROVIDER="http",
                    POSTERLAB_FACE_API_URL=face_api, POSTERLAB_FACE_API_KEY="wrong")
    proc = run_cli("run", str(manifest), env=wrong, check=False)
    assert proc.returncode == 2 and "POSTERLAB_FACE_API_KEY" in proc.stderr
    proc = run_cli("enqueue", str(manifest), env=wrong, check=False)
    assert proc.returncode == 2 and "POSTERLAB_BROKER_URL" in proc.stderr
    assert "POSTERLAB_FACE_API_KEY" in proc.stderr  # every problem at once
    tables = rows(pg_url, "select table_name from information_schema.tables "
                          "where table_schema = current_schema()")
    assert tables == []  # not even the schema was made

    right = {**wrong, "POSTERLAB_FACE_API_KEY": KEY}
    run_cli("run", str(manifest), "--run", "ok", "--no-analysis", "--workers", "1", env=right)
    assert poster_counts(pg_url, "ok") == {"done": 3}
    skipped = run_cli("enqueue", str(manifest), "--skip-checks", env=right, check=False)
    assert skipped.returncode == 1 and "cannot reach the broker" in skipped.stderr


def test_an_unmigrated_database_is_refused_before_anything_starts(
        data_dir: Path, pg_url: str, tmp_path: Path) -> None:
    from posterlab.storage.engine import make_engine
    from posterlab.storage.schema import upgrade

    engine = make_engine(pg_url)
    upgrade(engine, "0001")
    engine.dispose()
    manifest = sample_manifest(data_dir, tmp_path / "m", 2)
    env = env_for(pg_url, tmp_path / "blobs", f"redis://127.0.0.1:{free_port()}/0")
    for args in (("run", str(manifest)), ("worker",), ("enqueue", str(manifest))):
        proc = run_cli(*args, env=env, check=False)
        assert proc.returncode == 2, proc.stderr
        assert "posterlab db upgrade" in proc.stderr and "POSTERLAB_DATABASE_URL" in proc.stderr
    assert rows(pg_url, "select count(*) as n from posters")[0]["n"] == 0


def test_exit_codes_say_how_the_run_went_and_the_analysis_follows_a_retry(
        data_dir: Path, tmp_path: Path) -> None:
    manifest = sample_manifest(data_dir, tmp_path / "m", 6)
    db_url = f"sqlite:///{tmp_path / 'x.db'}"
    env = env_for(db_url, tmp_path / "blobs")
    shutil.move(manifest.parent / "posters", tmp_path / "away")
    proc = run_cli("run", str(manifest), "--run", "gone", "--workers", "1", env=env,
                   check=False)
    assert proc.returncode == 1  # every poster failed
    assert "6 of 6 posters failed: see `posterlab failures --run gone`" in proc.stderr

    (manifest.parent / "posters").mkdir()
    for poster in sorted((tmp_path / "away").glob("*.jpg"))[1:]:
        shutil.copy(poster, manifest.parent / "posters")
    out = run_cli("run", str(manifest), "--run", "some", "--workers", "1", "--json", env=env)
    first = json.loads(out.stdout)
    assert first["counts"] == {**first["counts"], "done": 5, "failed": 1}
    assert first["failures"] == {"fetch-not-found": 1} and first["analysis"] == "done"
    strict = run_cli("run", str(manifest), "--run", "some", "--strict", env=env, check=False)
    assert strict.returncode == 1

    analysed = rows(db_url, "select analysis_at from runs where name = 'some'")[0]
    shutil.copytree(tmp_path / "away", manifest.parent / "posters", dirs_exist_ok=True)
    again = json.loads(run_cli("retry", "--run", "some", "--json", env=env).stdout)
    assert again["counts"]["done"] == 6 and again["analysis"] == "done"
    after = rows(db_url, "select analysis_at from runs where name = 'some'")[0]
    assert after["analysis_at"] > analysed["analysis_at"]
    stored = json.loads(run_cli("analyze", "--run", "some", "--stored", "--json",
                                env=env).stdout)
    assert max(c["n"] for c in stored["correlations"]) == 6
    written = json.loads(run_cli("report", "--run", "some", "--out", str(tmp_path / "r" / "d"),
                                 "--json", env=env).stdout)
    assert written["run"] == "some" and Path(written["report"]).is_file()
    assert str(tmp_path / "r" / "d" / "report.md") in written["files"]
