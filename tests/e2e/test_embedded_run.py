"""``posterlab run`` on real posters: every stage in a local process pool."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from posterlab.imaging import PreprocessConfig, analyze_bytes
from posterlab.storage.models import SCALAR_COLUMNS
from posterlab.testing import env_for, rows, run_cli, sample_manifest

pytestmark = pytest.mark.slow


def test_run_processes_every_poster_once_and_stores_the_pure_features(
        data_dir: Path, db_url: str, tmp_path: Path) -> None:
    manifest = sample_manifest(data_dir, tmp_path / "m", 24)
    env = env_for(db_url, tmp_path / "blobs")
    run_cli("run", str(manifest), "--workers", "2", "--run", "emb", env=env)

    posters = rows(db_url, "select * from posters order by id")
    assert len(posters) == 24
    assert {p["status"] for p in posters} == {"done"}
    assert all(p["error"] is None and p["face_count"] is not None for p in posters)

    # the stored features are exactly what the pure functions give for the same bytes
    feats = {r["sha256"]: r for r in rows(db_url, "select * from features")}
    config = PreprocessConfig()
    for p in posters[:5]:
        path = manifest.parent / "posters" / f"{p['imdb_id']}.jpg"
        expected = analyze_bytes(path.read_bytes(), config).scalars
        got = feats[p["sha256"]]
        np.testing.assert_allclose([got[c] for c in SCALAR_COLUMNS],
                                   [expected[c] for c in SCALAR_COLUMNS], rtol=1e-12)

    run = rows(db_url, "select * from runs")[0]
    assert (run["total"], run["pending"], run["analysis_state"]) == (24, 0, "done")


def test_a_second_run_of_the_same_manifest_processes_only_what_is_missing(
        data_dir: Path, db_url: str, tmp_path: Path) -> None:
    manifest = sample_manifest(data_dir, tmp_path / "m", 20)
    env = env_for(db_url, tmp_path / "blobs")
    run_cli("run", str(manifest), "--workers", "1", "--limit", "8", env=env)
    first = {r["id"]: r["attempts"] for r in rows(db_url, "select id, attempts from posters")}
    assert len(first) == 8

    out = run_cli("run", str(manifest), "--workers", "1", env=env)
    assert "12 to process" in out.stderr
    posters = rows(db_url, "select id, status, attempts from posters order by id")
    assert len(posters) == 20 and {p["status"] for p in posters} == {"done"}
    # the first eight were not touched again
    assert {p["id"]: p["attempts"] for p in posters if p["id"] in first} == first


def test_bad_rows_end_failed_with_reasons_and_good_rows_end_done(
        data_dir: Path, db_url: str, tmp_path: Path) -> None:
    good = sample_manifest(data_dir, tmp_path / "m", 3)
    with open(good, newline="", encoding="latin-1") as fh:
        real = list(csv.DictReader(fh))
    bad = tmp_path / "m" / "bad.csv"
    with open(bad, "w", newline="", encoding="latin-1") as fh:
        w = csv.writer(fh)
        w.writerow(["imdbId", "Title", "IMDB Score", "Genre", "poster_file", "Mystery Column"])
        for r in real:
            w.writerow([r["imdbId"], r["Title"], r["IMDB Score"], r["Genre"], r["poster_file"],
                        "ignored"])
        w.writerow(["", "No id", "7.0", "Drama", real[0]["poster_file"], "x"])
        w.writerow(["1234567", "Bad score", "great", "Drama", real[1]["poster_file"], "x"])
        w.writerow(["7654321", "Missing file", "6.0", "Drama", "posters/nope.jpg", "x"])
        (tmp_path / "m" / "posters" / "broken.jpg").write_bytes(b"<html>not a poster</html>")
        w.writerow(["7654322", "Not an image", "6.0", "Drama", "posters/broken.jpg", "x"])
    env = env_for(db_url, tmp_path / "blobs")
    run_cli("run", str(bad), "--workers", "2", env=env)

    posters = {p["title"]: p for p in rows(db_url, "select * from posters")}
    assert len(posters) == 7
    for r in real:
        assert posters[r["Title"]]["status"] == "done"
    expected_codes = {"No id": "manifest", "Bad score": "manifest", "Missing file": "fetch",
                      "Not an image": "image"}
    for title, prefix in expected_codes.items():
        p = posters[title]
        assert p["status"] == "failed", title
        assert p["error_code"].startswith(prefix), (title, p["error_code"])
        assert p["error"], title

    failures = run_cli("failures", "--json", env=env).stdout
    assert "fetch-not-found" in failures


def test_changing_the_preprocessing_recomputes_features_under_a_new_version(
        data_dir: Path, tmp_path: Path) -> None:
    db_url = f"sqlite:///{tmp_path / 'p.db'}"
    manifest = sample_manifest(data_dir, tmp_path / "m", 3)
    env = env_for(db_url, tmp_path / "blobs")
    run_cli("run", str(manifest), "--run", "default", "--workers", "1", "--no-analysis",
            env=env)
    env["POSTERLAB_PREPROCESS"] = '{"resize.height": 160}'
    run_cli("run", str(manifest), "--run", "taller", "--workers", "1", "--no-analysis",
            env=env)
    versions = rows(db_url, "select name, feature_version from runs order by id")
    assert versions[0]["feature_version"] != versions[1]["feature_version"]
    per_version = rows(db_url, "select feature_version, count(*) as n from features "
                               "group by feature_version")
    assert sorted(r["n"] for r in per_version) == [3, 3]  # same bytes, both versions kept

    env["POSTERLAB_PREPROCESS"] = '{"no_such_step": 1}'
    bad = run_cli("run", str(manifest), "--run", "bad", env=env, check=False)
    assert bad.returncode == 1 and "POSTERLAB_PREPROCESS" in bad.stderr
    assert "Traceback" not in bad.stderr
