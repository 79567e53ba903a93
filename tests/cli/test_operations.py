"""Operating runs: retry in both modes, runs, results() for notebooks, streamed exports."""

from __future__ import annotations

import json
import resource
import shutil
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest

import posterlab
from posterlab.manifest import PosterRef
from posterlab.storage import posters, runs
from posterlab.storage.engine import make_engine, session_factory, transaction
from posterlab.storage.schema import ensure_schema
from posterlab.testing import env_for, posterlab_cmd, rows, run_cli, sample_manifest

pytestmark = pytest.mark.slow


def hide_one_poster(manifest: Path) -> tuple[Path, Path]:
    """Move one poster away so its row fails with fetch-not-found; return (moved, original)."""
    original = sorted((manifest.parent / "posters").glob("*.jpg"))[0]
    moved = manifest.parent / "hidden.jpg"
    shutil.move(original, moved)
    return moved, original


def test_retry_of_an_embedded_run_processes_the_failures_again(
        data_dir: Path, db_url: str, tmp_path: Path) -> None:
    manifest = sample_manifest(data_dir, tmp_path / "m", 6)
    moved, original = hide_one_poster(manifest)
    env = env_for(db_url, tmp_path / "blobs")
    run_cli("run", str(manifest), "--workers", "1", "--no-analysis", env=env)
    failed = rows(db_url, "select * from posters where status = 'failed'")
    assert [f["error_code"] for f in failed] == ["fetch-not-found"]
    assert "does not exist" in failed[0]["error"]

    shutil.move(moved, original)
    out = run_cli("retry", "--reason", "fetch-not-found", env=env)
    assert "retried 1" in out.stderr
    again = rows(db_url, "select * from posters where id = :id", id=failed[0]["id"])[0]
    assert again["status"] == "done" and again["error"] is None
    assert again["attempts"] > failed[0]["attempts"]  # the history of attempts is kept
    assert rows(db_url, "select pending from runs")[0]["pending"] == 0


@pytest.mark.redis
def test_retry_of_a_distributed_run_requeues_the_failures_for_workers(
        data_dir: Path, pg_url: str, broker_url: str, tmp_path: Path, start_worker) -> None:
    manifest = sample_manifest(data_dir, tmp_path / "m", 6)
    moved, original = hide_one_poster(manifest)
    env = env_for(pg_url, tmp_path / "blobs", broker_url)
    run_cli("db", "upgrade", env=env)
    start_worker("-c", "1", "-n", "r@test", env=env).wait_ready()
    run_cli("enqueue", str(manifest), env=env)

    def wait(done: int) -> dict:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            status = json.loads(run_cli("status", "--json", env=env).stdout)
            if status["complete"] and status["counts"]["done"] == done:
                return status
            time.sleep(0.5)
        raise AssertionError(status)

    assert wait(5)["counts"]["failed"] == 1
    shutil.move(moved, original)
    assert "1 posters re-queued" in run_cli("retry", env=env).stderr
    assert wait(6)["counts"]["failed"] == 0


def test_runs_lists_every_run_and_results_returns_a_dataframe(
        data_dir: Path, db_url: str, tmp_path: Path) -> None:
    manifest = sample_manifest(data_dir, tmp_path / "m", 5)
    env = env_for(db_url, tmp_path / "blobs")
    for name in ("one", "two"):
        run_cli("run", str(manifest), "--run", name, "--workers", "1", "--no-analysis",
                env=env)
    listed = json.loads(run_cli("runs", "--json", env=env).stdout)
    assert [r["run"] for r in listed] == ["one", "two"]
    assert all(r["counts"]["done"] == 5 for r in listed)

    frame = posterlab.results(run="one", db=db_url)
    assert isinstance(frame, pd.DataFrame) and len(frame) == 5
    assert frame["grey_hist"].iloc[0].shape == (20,)
    assert set(frame["status"]) == {"done"}
    latest = posterlab.results(db=db_url, vectors=False)
    assert "grey_hist" not in latest.columns and len(latest) == 5

    out = run_cli("export", "--columns", "imdb_id,face_count,brightness", env=env).stdout
    assert out.splitlines()[0] == "imdb_id,face_count,brightness"
    bad = run_cli("export", "--columns", "imdb_id,nope", env=env, check=False)
    assert bad.returncode == 1 and "unknown export columns" in bad.stderr


def _fill(db_url: str, n: int) -> None:
    engine = make_engine(db_url)
    ensure_schema(engine)
    factory = session_factory(engine)
    with transaction(factory) as session:
        run, _ = runs.get_or_create_run(session, name="big", manifest="m", mode="embedded",
                                        feature_version="v", face_key="k", settings={})
        run_id = run.id
    for start in range(0, n, 10_000):
        refs = [PosterRef(row=i, imdb_id=str(i + 1), title=f"Movie {i}", rating=5.0,
                          genres=("Drama",), source=f"/x/{i}.jpg")
                for i in range(start, min(n, start + 10_000))]
        with transaction(factory) as session:
            posters.add_posters(session, run_id, refs)
    engine.dispose()


def _export_peak_rss(db_url: str, out: Path, env: dict[str, str]) -> int:
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    subprocess.run(posterlab_cmd("export", "--format", "csv", "--out", str(out)), env=env,
                   check=True, capture_output=True)
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(peak, before)


def test_export_streams_in_constant_memory(tmp_path: Path) -> None:
    small_db, big_db = f"sqlite:///{tmp_path / 's.db'}", f"sqlite:///{tmp_path / 'b.db'}"
    _fill(big_db, 150_000)
    _fill(small_db, 10_000)
    # the smaller export runs first: ru_maxrss of children only ever grows
    small = _export_peak_rss(small_db, tmp_path / "s.csv", env_for(small_db, tmp_path))
    big = _export_peak_rss(big_db, tmp_path / "b.csv", env_for(big_db, tmp_path))
    assert sum(1 for _ in open(tmp_path / "b.csv")) == 150_001
    # 15x the rows may not cost more than 25% more peak memory (KiB on Linux)
    assert big <= small * 1.25, (small, big)
