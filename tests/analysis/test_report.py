"""The plots and the HTML report."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from posterlab.analysis import AnalysisResult, TrainingPlan, analyze, write_report
from posterlab.analysis.headline import headline
from posterlab.analysis.report import (
    plot_color_groups,
    plot_correlations,
    plot_face_buckets,
    plot_feature_scatter,
    plot_learning_curve,
    plot_predictions,
)
from posterlab.analysis.synthetic import synthetic_frame

FAST = TrainingPlan(hidden_sizes=(4,), l2_choices=(0.03,), epochs=30, ensemble=2)
QUICK = {"plan": FAST, "folds": 3, "repeats": 1, "permutations": 20}
FIGURES = {
    "face_buckets.png", "colour_groups.png", "colour_scatter.png", "correlations.png",
    "predictions.png",
}  # fmt: skip
RUN = {
    "run": "posters-index", "total": 310, "counts": {"done": 300, "failed": 10},
    "failures": [{"code": "decode", "count": 7}, {"code": "fetch", "count": 3}],
}  # fmt: skip


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return synthetic_frame(300, seed=5)


@pytest.fixture(scope="module")
def result(frame: pd.DataFrame) -> AnalysisResult:
    return analyze(frame, n_boot=300, **QUICK)


def test_report_html_is_self_contained_with_every_plot_embedded(
    result: AnalysisResult, frame: pd.DataFrame, tmp_path: Path
) -> None:
    report = write_report(result, frame, tmp_path / "out", title="Posters <2024>")
    assert report == tmp_path / "out" / "report.html"
    page = report.read_text(encoding="utf-8")
    sources = re.findall(r'<img src="([^"]+)"', page)
    assert len(sources) == len(FIGURES)
    for source in sources:
        assert source.startswith("data:image/png;base64,")
        assert base64.b64decode(source.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    assert not re.search(r'(src|href)="(?!data:)', page)  # nothing loaded from elsewhere
    assert "<title>Posters &lt;2024&gt;</title>" in page
    assert "not a cause" in page and "n = 300" in page
    assert "colorfulness" in page and "ridge" in page and "mean_baseline" in page
    assert "poster features alone give the MLP R² = " in page and "With genre indicators" in page
    assert (tmp_path / "out" / "index.html").read_text(encoding="utf-8") == page


def test_report_markdown_refers_to_png_files_written_beside_it(
    result: AnalysisResult, frame: pd.DataFrame, tmp_path: Path
) -> None:
    write_report(result, frame, tmp_path, run_summary=RUN)
    markdown = (tmp_path / "report.md").read_text(encoding="utf-8")
    images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", markdown)
    assert set(images) == FIGURES
    for name in images:
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for heading in ("## The run", "## Rating by number of faces", "## Rating by mean colour",
                    "## Correlations with the rating", "## Predicting the rating"):  # fmt: skip
        assert heading in markdown
    assert "Run posters-index: 310 posters; done: 300, failed: 10." in markdown
    assert "| decode | 7 |" in markdown and "| fetch | 3 |" in markdown
    assert "+ |" in markdown and "Out of fold (3-fold x 1)" in markdown


def test_the_run_section_appears_only_when_a_run_summary_is_given(
    result: AnalysisResult, frame: pd.DataFrame, tmp_path: Path
) -> None:
    page = write_report(result, frame, tmp_path / "a").read_text(encoding="utf-8")
    assert "The run" not in page
    page = write_report(result, frame, tmp_path / "b", run_summary=RUN).read_text(encoding="utf-8")
    assert "<h2>The run</h2>" in page and "<td>decode</td>" in page


def _cv(low: float, high: float) -> dict[str, object]:
    scores = {"r2_mean": (low + high) / 2, "r2_ci_low": low, "r2_ci_high": high}
    return {"cv": {"folds": 5, "repeats": 5, "models": dict.fromkeys(
        ("mlp", "ridge", "ols", "mean_baseline"), scores)}, "permutation_p": 0.4}


def test_the_headline_says_indistinguishable_from_zero_when_the_interval_includes_it() -> None:
    text = headline({"regression_poster_only": _cv(-0.02, 0.03), "regression": _cv(0.2, 0.3)})
    assert "indistinguishable from zero" in text and "5-fold x 5" in text
    assert "With genre indicators: R² = 0.250" in text
    real = headline({"regression_poster_only": _cv(0.02, 0.06)})
    assert "indistinguishable" not in real and "about 4%" in real
    beats_chance = {**_cv(-0.007, 0.031), "permutation_p": 0.005}
    small = headline({"regression_poster_only": beats_chance})
    assert "indistinguishable" not in small and "better than chance" in small
    assert "at most about 3%" in small
    assert headline({"skipped": "8 rows"}) == "No model was trained (8 rows)."
    assert headline({"skipped": "8 rows"}, synthetic=True).startswith("SYNTHETIC DATA")


def test_report_on_too_little_data_still_explains_itself(tmp_path: Path) -> None:
    small = synthetic_frame(8, seed=0)
    page = write_report(analyze(small), small, tmp_path).read_text(encoding="utf-8")
    assert "the models need 30 rows" in page
    assert "width: constant feature" in page
    assert "Left out as constant on every poster: width, height, aspect" in page


def test_report_on_an_empty_frame_does_not_fail(tmp_path: Path) -> None:
    empty = synthetic_frame(0)
    assert write_report(analyze(empty), empty, tmp_path).exists()


def test_plot_helpers_return_figures_with_the_expected_panels(
    result: AnalysisResult, frame: pd.DataFrame
) -> None:
    buckets = plot_face_buckets(frame)
    assert isinstance(buckets, Figure)
    labels = [t.get_text() for t in buckets.axes[0].get_xticklabels()]
    assert labels[0].startswith("0\n(n=") and labels[-1].startswith("5+") and len(labels) == 6
    assert len(plot_feature_scatter(frame, ["colorfulness", "contrast"]).axes) == 2
    bars = plot_correlations(result.correlations).axes[0].patches
    assert len(bars) == result.correlations["pearson_r"].notna().sum()
    assert len(plot_color_groups(result.color_groups).axes[0].lines) > 0
    points = plot_predictions(result.predictions).axes[0].collections[0].get_offsets()
    np.testing.assert_array_equal(np.asarray(points)[:, 0], result.predictions["actual"])


def test_plot_helpers_draw_a_note_instead_of_failing_on_missing_data() -> None:
    nothing = pd.DataFrame({"score": [np.nan]})
    assert plot_face_buckets(nothing).texts[0].get_text() == "no face counts"
    assert plot_learning_curve({}).texts[0].get_text() == "no network was trained"
    assert plot_predictions(pd.DataFrame()).texts
    assert plot_color_groups(pd.DataFrame()).texts[0].get_text() == "no mean colours"
    assert "no data" in plot_feature_scatter(nothing, ["hue"]).axes[0].get_title()


HOSTILE = "<img src=x onerror=alert(1)> [a](http://evil) ![i](http://evil/i.png) *b* |c|\n- d"


def test_markdown_and_html_show_quoted_text_as_text_not_markup() -> None:
    from posterlab.analysis._render import to_html, to_markdown

    table = pd.DataFrame({"genre": [HOSTILE, "-1.5"], "n": [1, 2]})
    blocks = [("p", HOSTILE), ("ul", [HOSTILE]), ("table", table)]
    md = to_markdown(HOSTILE, blocks)
    for unsafe in ("<img", "](http", "![i]", "*b*", "|c|", "\n- d"):
        assert unsafe not in md, unsafe
    assert "&lt;img src=x onerror=alert(1)&gt;" in md and "\\[a\\]\\(http://evil)" in md
    assert "| -1.5 | 2 |" in md  # numbers in cells are left readable
    assert len([line for line in md.splitlines() if line.startswith("| ")]) == 3  # one a row
    page = to_html(HOSTILE, blocks, {})
    assert "<img src=x" not in page and "&lt;img src=x onerror=alert(1)&gt;" in page
