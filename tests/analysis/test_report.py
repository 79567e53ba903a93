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
from posterlab.analysis.report import (
    explained_variance,
    plot_color_groups,
    plot_correlations,
    plot_face_buckets,
    plot_feature_scatter,
    plot_learning_curve,
    plot_predictions,
)
from posterlab.analysis.synthetic import synthetic_frame

FAST = TrainingPlan(hidden_sizes=(4,), folds=2, epochs=30, ensemble=2)
FIGURES = {
    "face_buckets.png", "colour_groups.png", "colour_scatter.png", "correlations.png",
    "learning_curve.png", "predictions.png",
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
    return analyze(frame, plan=FAST, n_boot=300)


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
    assert "colorfulness" in page and "ols_baseline" in page and "mean_baseline" in page
    assert "Poster features alone explain R² = " in page and "With genre indicators" in page
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
    assert "| 5+ |" in markdown and "Poster features alone explain" in markdown


def test_the_run_section_appears_only_when_a_run_summary_is_given(
    result: AnalysisResult, frame: pd.DataFrame, tmp_path: Path
) -> None:
    page = write_report(result, frame, tmp_path / "a").read_text(encoding="utf-8")
    assert "The run" not in page
    page = write_report(result, frame, tmp_path / "b", run_summary=RUN).read_text(encoding="utf-8")
    assert "<h2>The run</h2>" in page and "<td>decode</td>" in page


def test_the_explained_variance_sentence_says_plainly_when_the_poster_predicts_nothing() -> None:
    def entry(r2: float, ols: float) -> dict[str, object]:
        return {"n_test": 400, "mlp": {"r2": r2}, "ols_baseline": {"r2": ols},
                "mean_baseline": {"r2": -0.002}}  # fmt: skip

    text = explained_variance(
        {"regression_poster_only": entry(0.012, 0.005), "regression": entry(0.30, 0.29)}
    )
    assert text.startswith("Poster features alone explain R² = 0.012 of the variance")
    assert "on 400 held-out movies" in text and "With genre indicators added, R² = 0.300" in text
    assert "predicts almost nothing" in text and "mostly from the genre" in text
    strong = explained_variance({"regression_poster_only": entry(0.4, 0.3)})
    assert "about 40%" in strong and "almost nothing" not in strong
    assert explained_variance({"skipped": "8 rows"}) == "No model was trained (8 rows)."


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
    assert labels[0].startswith("0\n(n=") and labels[-1].startswith("5+") and len(labels) == 6
    assert len(plot_feature_scatter(frame, ["colorfulness", "contrast"]).axes) == 2
    bars = plot_correlations(result.correlations).axes[0].patches
    assert len(bars) == result.correlations["pearson_r"].notna().sum()
    assert len(plot_learning_curve(result.history).axes) == 3
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
    assert "&lt;img src=x onerror=alert\\(1\\)&gt;" in md and "\\[a\\]\\(http://evil\\)" in md
    assert "| -1.5 | 2 |" in md  # numbers in cells are left readable
    assert len([line for line in md.splitlines() if line.startswith("| ")]) == 3  # one a row
    page = to_html(HOSTILE, blocks, {})
    assert "<img src=x" not in page and "&lt;img src=x onerror=alert(1)&gt;" in page
