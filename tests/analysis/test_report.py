"""The plots and the HTML report."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from posterlab.analysis import AnalysisResult, TrainingPlan, analyze, write_report
from posterlab.analysis.report import (
    plot_correlations,
    plot_face_buckets,
    plot_feature_scatter,
    plot_learning_curve,
    plot_predictions,
)
from posterlab.analysis.synthetic import synthetic_frame

FAST = TrainingPlan(hidden_sizes=(4,), folds=2, epochs=30)


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return synthetic_frame(300, seed=5)


@pytest.fixture(scope="module")
def result(frame: pd.DataFrame) -> AnalysisResult:
    return analyze(frame, plan=FAST)


def test_report_writes_index_and_every_png_it_refers_to(
    result: AnalysisResult, frame: pd.DataFrame, tmp_path: Path
) -> None:
    index = write_report(result, frame, tmp_path / "out", title="Posters <2024>")
    assert index == tmp_path / "out" / "index.html"
    page = index.read_text(encoding="utf-8")
    images = re.findall(r'<img src="([^"]+)"', page)
    assert len(images) == 5
    for name in images:
        assert (tmp_path / "out" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "<title>Posters &lt;2024&gt;</title>" in page
    assert "not a cause" in page and "n = 300" in page
    assert "colorfulness" in page and "ols_baseline" in page and "mean_baseline" in page


def test_report_on_too_little_data_still_explains_itself(tmp_path: Path) -> None:
    small = synthetic_frame(8, seed=0)
    page = write_report(analyze(small), small, tmp_path).read_text(encoding="utf-8")
    assert "the models need 30 rows" in page
    assert "width: constant feature" in page


def test_report_on_an_empty_frame_does_not_fail(tmp_path: Path) -> None:
    empty = synthetic_frame(0)
    assert write_report(analyze(empty), empty, tmp_path).exists()


def test_plot_helpers_return_figures_with_the_expected_panels(
    result: AnalysisResult, frame: pd.DataFrame
) -> None:
    buckets = plot_face_buckets(frame)
    assert isinstance(buckets, Figure)
    labels = [t.get_text() for t in buckets.axes[0].get_xticklabels()]
    assert labels[0].startswith("0\n(n=") and labels[-1].startswith("4+")
    assert len(plot_feature_scatter(frame, ["colorfulness", "contrast"]).axes) == 2
    bars = plot_correlations(result.correlations).axes[0].patches
    assert len(bars) == result.correlations["pearson_r"].notna().sum()
    assert len(plot_learning_curve(result.history).axes) == 2
    points = plot_predictions(result.predictions).axes[0].collections[0].get_offsets()
    np.testing.assert_array_equal(np.asarray(points)[:, 0], result.predictions["actual"])


def test_plot_helpers_draw_a_note_instead_of_failing_on_missing_data() -> None:
    nothing = pd.DataFrame({"score": [np.nan]})
    assert plot_face_buckets(nothing).texts[0].get_text() == "no face counts"
    assert plot_learning_curve({}).texts[0].get_text() == "no network was trained"
    assert plot_predictions(pd.DataFrame()).texts
    assert "no data" in plot_feature_scatter(nothing, ["hue"]).axes[0].get_title()
