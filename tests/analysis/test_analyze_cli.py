"""``posterlab analyze`` and the demo through the real CLI, on a real run database."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from posterlab.testing import env_for, run_cli

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("analyze-cli"), pytest.mark.timeout(900)]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    out = tmp_path_factory.mktemp("demo")
    env = env_for(f"sqlite:///{out / 'demo' / 'posterlab.db'}", blob_dir=out / "blobs")
    run_cli("demo", "--posters", "12", "--out", str(out / "demo"), "--workers", "2", env=env,
            timeout=600)
    return out / "demo", env


def test_the_demo_report_says_synthetic_in_its_title_and_headline(
    demo: tuple[Path, dict[str, str]],
) -> None:
    folder, _ = demo
    page = (folder / "report" / "report.html").read_text(encoding="utf-8")
    assert "<title>SYNTHETIC DATA" in page
    assert "<h2>Headline</h2>\\n<p>SYNTHETIC DATA" in page.replace("\n", "\\n")


def test_human_analyze_output_fits_in_100_lines_and_json_keeps_the_contract(
    demo: tuple[Path, dict[str, str]], tmp_path: Path,
) -> None:
    folder, env = demo
    db = f"sqlite:///{folder / 'posterlab.db'}"
    human = run_cli("analyze", "--db", db, "--folds", "3", "--repeats", "1", env=env,
                    timeout=600)
    lines = human.stdout.splitlines()
    assert 5 < len(lines) < 100 and lines[0].startswith("SYNTHETIC DATA")
    assert "members" not in human.stdout  # no network weights on screen
    model_file = tmp_path / "model.json"
    as_json = run_cli("analyze", "--db", db, "--folds", "3", "--repeats", "1", "--json",
                      "--controls", "genre", "--model-out", str(model_file), env=env,
                      timeout=600)
    data = json.loads(as_json.stdout)
    assert data["provenance"]["synthetic"] is True and data["provenance"]["run"] == "demo"
    assert all(set(row["controls"]) <= {"genre"} for row in data["controls"])  # year not asked
    assert "models" in json.loads(model_file.read_text(encoding="utf-8"))


def test_unknown_controls_and_features_are_usage_errors(
    demo: tuple[Path, dict[str, str]],
) -> None:
    folder, env = demo
    db = f"sqlite:///{folder / 'posterlab.db'}"
    bad = run_cli("analyze", "--db", db, "--controls", "budget", env=env, check=False)
    assert bad.returncode == 2 and "--controls" in bad.stderr
    bad = run_cli("analyze", "--db", db, "--features", "nope", env=env, check=False)
    assert bad.returncode == 2 and "nope" in bad.stderr
