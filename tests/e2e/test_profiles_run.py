"""Feature profiles through the real CLI: two profiles of the same posters in one
database are two feature versions that never mix; what a profile does not compute is
empty in the export; the analysis works with what is there."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from posterlab.testing import env_for, rows, run_cli, sample_manifest

pytestmark = [pytest.mark.slow, pytest.mark.data]


def test_course_and_full_runs_of_the_same_posters_keep_their_features_apart(
        data_dir: Path, db_url: str, tmp_path: Path) -> None:
    manifest = sample_manifest(data_dir, tmp_path / "m", 30)
    env = env_for(db_url, tmp_path / "blobs")
    run_cli("run", str(manifest), "--run", "full", "--workers", "1", "--no-analysis",
            env=env)
    run_cli("run", str(manifest), "--run", "course", "--workers", "2", "--profile",
            "course", env={**env, "POSTERLAB_PROFILE": "full"})  # the flag wins

    versions = {r["name"]: r["feature_version"]
                for r in rows(db_url, "select name, feature_version from runs")}
    assert versions["full"] != versions["course"]
    per_version = rows(db_url, "select feature_version, count(*) as n, count(std_r) as std, "
                               "count(mean_r) as mean from features group by feature_version")
    by = {r["feature_version"]: r for r in per_version}
    assert by[versions["course"]]["mean"] == by[versions["full"]]["mean"] > 0
    assert by[versions["course"]]["std"] == 0  # never computed, never borrowed
    assert by[versions["full"]]["std"] == by[versions["full"]]["n"]

    export = run_cli("export", "--run", "course", "--format", "csv", env=env).stdout
    table = list(csv.DictReader(io.StringIO(export)))
    assert len(table) == 30 and all(r["status"] == "done" for r in table)
    assert all(r["mean_r"] and r["face_count"] for r in table)
    assert all(r["std_r"] == "" and r["sift_keypoints"] == "" for r in table)

    analysis = json.loads(run_cli("analyze", "--run", "course", "--json", env=env).stdout)
    used = {c["feature"] for c in analysis["correlations"]}
    assert {"face_count", "mean_r", "mean_g", "mean_b"} <= used
    assert not used & {"std_r", "sift_keypoints", "hog"}
    # the detector kept every detection's score: the face-count effect at other thresholds
    thresholds = analysis["detector"]["thresholds"]
    at = {row["threshold"]: row for row in thresholds}
    counted = [int(r["face_count"]) for r in table]
    assert at[0.5]["n"] == 30 and at[0.5]["mean_faces"] == sum(counted) / 30  # the default
    means = [at[t]["mean_faces"] for t in sorted(at)]
    assert means == sorted(means, reverse=True) and means[-1] < means[0]
    human = run_cli("analyze", "--run", "course", "--stored", env=env).stdout
    assert "per face at detector thresholds 0.5: " in human and len(human.splitlines()) < 100

    # adding rows to the course run with another profile would mix versions: refused
    mixed = run_cli("run", str(manifest), "--run", "course", "--profile", "standard",
                    env=env, check=False)
    assert mixed.returncode != 0 and "new --run NAME" in mixed.stderr
    assert "Traceback" not in mixed.stderr
    bad = run_cli("run", str(manifest), "--run", "x", env={**env, "POSTERLAB_PROFILE": "fast"},
                  check=False)
    assert bad.returncode != 0 and "POSTERLAB_PROFILE" in bad.stderr
