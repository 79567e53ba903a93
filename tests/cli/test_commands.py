"""The command line, run as users run it: real processes, real files."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from posterlab.storage.export import COLUMNS
from posterlab.testing import env_for, pg_schema, run_cli

# one test process builds the module's expensive fixture once for all of its tests
pytestmark = pytest.mark.xdist_group("cli-demo")

CONTRACT = ["imdb_id", "title", "score", "genres", "status", "error", "face_count",
            "mean_r", "mean_g", "mean_b", "mean_h", "mean_s", "mean_v", "brightness",
            "contrast", "colorfulness"]


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def demo_run(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
             ) -> Iterator[tuple[Path, dict[str, str]]]:
    """The demo, on a SQLite file and on a PostgreSQL schema of its own."""
    out = tmp_path_factory.mktemp("demo")
    if request.param == "sqlite":
        yield from _demo(out, f"sqlite:///{out / 'posterlab.db'}")
        return
    with pg_schema(request.getfixturevalue("pg_server")) as url:
        yield from _demo(out, url)


def _demo(out: Path, db_url: str) -> Iterator[tuple[Path, dict[str, str]]]:
    env = env_for(db_url, out / "blobs")
    proc = run_cli("demo", "--posters", "16", "--out", str(out), "--workers", "2",
                   "--db", db_url, env=env)
    assert "SYNTHETIC" in proc.stderr
    yield out, env


@pytest.mark.slow
def test_demo_says_it_is_synthetic_and_writes_database_and_report(demo_run) -> None:
    out, env = demo_run
    if env["POSTERLAB_DATABASE_URL"].startswith("sqlite"):
        assert (out / "posterlab.db").is_file()
    html = (out / "report" / "report.html").read_text()
    assert (out / "report" / "report.md").is_file()
    assert "demo" in html and "face" in html.lower()
    assert len(list((out / "posters").glob("*.jpg"))) == 16


@pytest.mark.slow
def test_export_csv_has_the_contract_columns_and_one_row_per_movie(
        demo_run, tmp_path: Path) -> None:
    _, env = demo_run
    target = tmp_path / "out.csv"
    run_cli("export", "--format", "csv", "--out", str(target), env=env)
    frame = pd.read_csv(target)
    # the contract's columns in its order, prominent_faces right after face_count
    expected = [*CONTRACT[:7], "prominent_faces", *CONTRACT[7:]]
    assert list(frame.columns[: len(expected)]) == expected
    assert list(frame.columns) == list(COLUMNS)
    assert len(frame) == 16 and set(frame["status"]) == {"done"}
    assert frame["face_count"].sum() > 0
    assert (frame["prominent_faces"] <= frame["face_count"]).all()


@pytest.mark.slow
def test_export_parquet_and_json_carry_the_vectors_as_lists(demo_run, tmp_path: Path) -> None:
    _, env = demo_run
    run_cli("export", "--format", "parquet", "--out", str(tmp_path / "o.parquet"), env=env)
    frame = pd.read_parquet(tmp_path / "o.parquet")
    assert len(frame) == 16 and len(frame["grey_hist"].iloc[0]) == 20
    lines = run_cli("export", "--format", "json", env=env).stdout.splitlines()
    first = json.loads(lines[0])
    assert len(lines) == 16 and len(first["grey_hist"]) == 20 and first["status"] == "done"


@pytest.mark.slow
def test_status_json_follows_the_contract(demo_run) -> None:
    _, env = demo_run
    status = json.loads(run_cli("status", "--json", env=env).stdout)
    for key in ("run", "total", "counts", "api_calls", "cache_hits", "rate_limited", "retries"):
        assert key in status
    assert status["run"] == "demo" and status["total"] == 16
    assert status["counts"]["done"] == 16
    assert {"fetch", "extract", "faces", "done", "failed"} <= set(status["counts"])


@pytest.mark.slow
def test_analyze_json_has_correlations_and_model(demo_run) -> None:
    _, env = demo_run
    result = json.loads(run_cli("analyze", "--json", env=env).stdout)
    fields = {"feature", "n", "pearson_r", "pearson_p", "spearman_rho", "spearman_p",
              "ci_low", "ci_high", "p_adjusted"}
    assert result["correlations"] and fields <= set(result["correlations"][0])
    assert "model" in result
    assert any(c["feature"] == "face_count" for c in result["correlations"])


def test_help_lists_every_command_with_examples(tmp_path: Path) -> None:
    env = env_for(f"sqlite:///{tmp_path / 'x.db'}", tmp_path / "b")
    text = run_cli("--help", env=env).stdout
    for command in ("demo", "run", "enqueue", "worker", "status", "failures", "retry", "runs",
                    "db", "analyze", "report", "export", "faceapi", "cancel", "delete",
                    "rename", "purge"):
        assert command in text
    assert "Examples" in run_cli("run", "--help", env=env).stdout


def test_a_missing_manifest_is_a_clean_usage_error_with_exit_code_2(tmp_path: Path) -> None:
    env = env_for(f"sqlite:///{tmp_path / 'x.db'}", tmp_path / "b")
    proc = run_cli("run", str(tmp_path / "nope.csv"), env=env, check=False)
    assert proc.returncode == 2  # the manifest is checked before anything starts
    assert "does not exist" in proc.stderr and "Traceback" not in proc.stderr


def test_an_unknown_option_is_a_usage_error_with_exit_code_2(tmp_path: Path) -> None:
    env = env_for(f"sqlite:///{tmp_path / 'x.db'}", tmp_path / "b")
    assert run_cli("run", "--bogus", env=env, check=False).returncode == 2


def test_status_without_any_run_says_how_to_start_one(tmp_path: Path) -> None:
    env = env_for(f"sqlite:///{tmp_path / 'x.db'}", tmp_path / "b")
    run_cli("db", "upgrade", env=env)
    proc = run_cli("status", env=env, check=False)
    assert proc.returncode == 1 and "posterlab run MANIFEST" in proc.stderr


@pytest.mark.slow
def test_status_watch_ends_when_the_run_is_complete_with_a_progress_line(demo_run) -> None:
    _, env = demo_run
    proc = run_cli("status", "--watch", "--interval", "0.2", env=env, timeout=60)
    assert "16/16" in proc.stdout and "done" in proc.stdout
