"""The Python API mirrors the CLI: run, status, results, analyze, report, on a real
database, in this process (the embedded runner with one worker)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import posterlab
from posterlab.demo import make_demo_set
from posterlab.errors import InputError
from posterlab.testing import env_for, run_cli


@pytest.fixture
def demo_manifest(tmp_path: Path) -> Path:
    return make_demo_set(tmp_path / "set", 12, seed=1)


def test_run_returns_the_status_object_and_the_posters_it_processed(
        demo_manifest: Path, db_url: str, tmp_path: Path) -> None:
    summary = posterlab.run(demo_manifest, db=db_url, run="api", workers=1,
                            blob_dir=tmp_path / "blobs")
    assert summary["run"] == "api"
    assert summary["total"] == 12
    assert summary["counts"]["done"] == 12 and summary["complete"] is True
    assert summary["processed"] == {"done": 12, "failed": 0}
    assert summary["interrupted"] is False
    assert summary["analysis"] == "done"


def test_status_is_the_same_object_as_status_json(
        demo_manifest: Path, db_url: str, tmp_path: Path) -> None:
    env = env_for(db_url, tmp_path / "blobs")
    posterlab.run(demo_manifest, db=db_url, run="same", workers=1, blob_dir=tmp_path / "blobs")
    from_cli = json.loads(run_cli("status", "--run", "same", "--json", env=env).stdout)
    from_api = posterlab.status("same", db=db_url)
    volatile = {"posters_per_second", "eta_seconds", "workers_seen"}
    assert from_api.keys() == from_cli.keys()
    assert {k: v for k, v in from_api.items() if k not in volatile} == \
        {k: v for k, v in from_cli.items() if k not in volatile}


def test_results_analyze_and_report_read_the_run_back(
        demo_manifest: Path, db_url: str, tmp_path: Path) -> None:
    posterlab.run(demo_manifest, db=db_url, run="back", workers=1,
                  blob_dir=tmp_path / "blobs", analysis=False)
    assert posterlab.status("back", db=db_url)["analysis"] == "none"  # not asked for
    frame = posterlab.results("back", db=db_url)
    assert len(frame) == 12 and set(frame["status"]) == {"done"}
    result = posterlab.analyze("back", db=db_url)
    assert {c["feature"] for c in result["correlations"]} >= {"face_count", "mean_r"}
    assert posterlab.analyze("back", db=db_url, stored=True) == result
    index = posterlab.report(tmp_path / "report", run="back", db=db_url)
    assert index.name == "report.html" and index.stat().st_size > 1000


def test_a_missing_manifest_is_a_clear_error(db_url: str, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        posterlab.run(tmp_path / "nope.csv", db=db_url, blob_dir=tmp_path / "blobs")
