"""The local detector's parameters are part of the face cache key: a run with other
parameters recounts every poster and never reads the other parameters' answers; every
detection is stored with its score and box, and read back per run."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

import posterlab
from posterlab.face_params import LocalParams
from posterlab.storage.queries import DETECTION_COLUMNS
from posterlab.testing import env_for, run_cli, sample_manifest

STRICT = {"conf_threshold": 0.9}


def run(manifest: Path, db: str, blobs: Path, name: str) -> pd.DataFrame:
    posterlab.run(manifest, db=db, run=name, workers=1, blob_dir=blobs, analysis=False)
    return posterlab.results(name, db=db, vectors=False).set_index("imdb_id")


def counted(detections: pd.DataFrame, index: pd.Index, conf: float) -> dict[str, int]:
    """Faces per poster among ``detections`` scoring at least ``conf``."""
    kept = detections[detections["score"] >= conf - 1e-9]
    return kept.groupby("imdb_id").size().reindex(index, fill_value=0).astype(int).to_dict()


def test_changing_the_parameters_recounts_and_never_mixes(
        data_dir: Path, db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    manifest = sample_manifest(data_dir, tmp_path / "m", 12)
    blobs = tmp_path / "blobs"
    default = run(manifest, db_url, blobs, "default")
    monkeypatch.setenv("POSTERLAB_FACE_PARAMS", json.dumps(STRICT))
    strict = run(manifest, db_url, blobs, "strict")
    monkeypatch.delenv("POSTERLAB_FACE_PARAMS")
    again = run(manifest, db_url, blobs, "default-again")

    faces = {name: frame["face_count"].astype(int).to_dict()
             for name, frame in (("default", default), ("strict", strict), ("again", again))}
    assert faces["again"] == faces["default"]
    assert all(faces["strict"][i] <= n for i, n in faces["default"].items())
    assert faces["strict"] != faces["default"]  # recounted, not read back
    # each run reads the answers of its own parameters: the strict run's counts are the
    # default run's detections scoring at least 0.9, and the strict run's own agree
    by_default = posterlab.face_detections("default", db=db_url)
    by_strict = posterlab.face_detections("strict", db=db_url)
    assert counted(by_default, default.index, 0.9) == faces["strict"]
    assert counted(by_strict, default.index, 0.9) == faces["strict"]
    assert by_default.equals(posterlab.face_detections("default-again", db=db_url))


def test_every_detection_is_stored_with_its_score_and_box(
        data_dir: Path, db_url: str, tmp_path: Path) -> None:
    manifest = sample_manifest(data_dir, tmp_path / "m", 8)
    results = run(manifest, db_url, tmp_path / "blobs", "boxes")
    detections = posterlab.face_detections("boxes", db=db_url)
    assert list(detections.columns) == list(DETECTION_COLUMNS)
    assert set(detections["provider"]) == {"local"}
    assert detections["score"].min() >= LocalParams().keep_from - 1e-9
    assert (detections["image_height"] == 268).all()
    assert results["face_count"].astype(int).to_dict() == \
        counted(detections, results.index, LocalParams().conf_threshold)
    faces = detections[detections["score"] >= LocalParams().conf_threshold - 1e-9]
    prominent = faces[faces["h"] >= 0.1 * faces["image_height"]].groupby("imdb_id").size()
    assert results["prominent_faces"].astype(int).to_dict() == \
        prominent.reindex(results.index, fill_value=0).to_dict()
    assert (results["prominent_faces"] <= results["face_count"]).all()


def test_unknown_detector_parameters_are_a_clear_error(
        data_dir: Path, tmp_path: Path) -> None:
    manifest = sample_manifest(data_dir, tmp_path / "m", 1)
    env = env_for(f"sqlite:///{tmp_path / 'x.db'}", tmp_path / "blobs",
                  POSTERLAB_FACE_PARAMS='{"upscale": 3}')
    out = run_cli("run", str(manifest), env=env, check=False)
    assert out.returncode == 1, out.stderr  # a configuration error, as for POSTERLAB_PREPROCESS
    assert "POSTERLAB_FACE_PARAMS" in out.stderr and "upscale" in out.stderr
    assert "Traceback" not in out.stderr


def test_the_accurate_preset_is_a_name_for_its_parameters() -> None:
    from posterlab.config import load_settings
    from posterlab.faces.local import LocalDetector

    settings = load_settings({"POSTERLAB_FACE_PARAMS": "accurate"})
    accurate = LocalParams.from_mapping(settings.face_params)
    assert accurate.scales == (2.5,) and accurate != LocalParams()
    assert LocalDetector(accurate).cache_key != LocalDetector().cache_key  # never mixed
    with pytest.raises(Exception, match="POSTERLAB_FACE_PARAMS"):
        load_settings({"POSTERLAB_FACE_PARAMS": "fastest"})
