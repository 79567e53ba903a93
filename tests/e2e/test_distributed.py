"""Real ``posterlab worker`` processes on a real Redis, with SQLite and PostgreSQL."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest

from posterlab.faces.local import LocalDetector
from posterlab.imaging import PreprocessConfig, analyze_bytes
from posterlab.storage.models import SCALAR_COLUMNS
from posterlab.testing import env_for, rows, run_cli, sample_manifest

pytestmark = [pytest.mark.slow, pytest.mark.redis]


def wait_complete(env: dict[str, str], timeout: float = 300) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = json.loads(run_cli("status", "--json", env=env).stdout)
        if status["complete"] and status["analysis"] in ("done", "failed"):
            return status
        time.sleep(1.0)
    raise AssertionError(f"run not complete in {timeout}s: {status}")


def test_workers_process_an_enqueued_manifest_like_the_embedded_runner(
        data_dir: Path, db_url: str, broker_url: str, tmp_path: Path, start_worker) -> None:
    manifest = sample_manifest(data_dir, tmp_path / "m", 50)
    env = env_for(db_url, tmp_path / "blobs", broker_url)
    run_cli("db", "upgrade", env=env)
    workers = [start_worker("-c", "1", "-n", f"w{i}@test", env=env, name=str(i))
               for i in range(2)]
    for w in workers:
        w.wait_ready()

    run_cli("enqueue", str(manifest), "--run", "dist", env=env)
    run_cli("enqueue", str(manifest), "--run", "dist", env=env)  # twice: nothing new
    status = wait_complete(env)

    assert status["total"] == 50
    assert status["counts"]["done"] == 50 and status["counts"]["failed"] == 0
    posters = rows(db_url, "select * from posters where run_id = "
                           "(select id from runs where name = 'dist')")
    assert len(posters) == 50
    assert len({p["movie_key"] for p in posters}) == 50
    seen_workers = {p["worker"].split(":")[0] for p in posters}
    assert len(seen_workers) >= 1

    # the same manifest embedded, in its own run and blob store, gives identical features
    emb_env = env_for(db_url, tmp_path / "blobs-embedded")
    run_cli("run", str(manifest), "--run", "emb", "--workers", "2", "--no-analysis",
            env=emb_env)
    query = ("select p.movie_key, p.face_count, f.* from posters p join runs r "
             "on r.id = p.run_id join features f on f.sha256 = p.sha256 "
             "and f.feature_version = r.feature_version where r.name = :name")
    dist = {r["movie_key"]: r for r in rows(db_url, query, name="dist")}
    emb = {r["movie_key"]: r for r in rows(db_url, query, name="emb")}
    assert dist.keys() == emb.keys() and len(dist) == 50
    for key, d in dist.items():
        e = emb[key]
        assert d["face_count"] == e["face_count"]
        np.testing.assert_array_equal([d[c] for c in SCALAR_COLUMNS],
                                      [e[c] for c in SCALAR_COLUMNS])
    # and both equal what the pure functions give for the poster's bytes
    config = PreprocessConfig()
    for key in sorted(dist)[:5]:
        data = (manifest.parent / "posters" / f"{key}.jpg").read_bytes()
        expected = analyze_bytes(data, config).scalars
        assert [dist[key][c] for c in SCALAR_COLUMNS] == [expected[c] for c in SCALAR_COLUMNS]
        assert dist[key]["face_count"] == LocalDetector().detect(data).count
    features = rows(db_url, "select count(*) as n from features")[0]["n"]
    distinct = rows(db_url, "select count(distinct sha256) as n from posters")[0]["n"]
    assert features == distinct  # one feature row per distinct image, shared by both runs

    runs = rows(db_url, "select name, analysis_state, analysis from runs where name = 'dist'")
    assert runs[0]["analysis_state"] == "done"
