"""The report of an :class:`AnalysisResult`: ``report.html``, ``report.md`` and PNG plots.

``report.html`` is self-contained (its plots are embedded); ``report.md`` refers to the
PNG files written beside it. :func:`write_report` is the only function here that writes
files. The plot functions live in :mod:`posterlab.analysis.plots` and are re-exported.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from posterlab.analysis._render import Block, cell, to_html, to_markdown
from posterlab.analysis.columns import TARGET
from posterlab.analysis.headline import headline
from posterlab.analysis.plots import (
    plot_color_groups,
    plot_correlations,
    plot_face_buckets,
    plot_feature_scatter,
    plot_learning_curve,
    plot_predictions,
)
from posterlab.analysis.report_blocks import detail_blocks, provenance_blocks, statement
from posterlab.analysis.result import AnalysisResult

__all__ = [
    "plot_color_groups",
    "plot_correlations",
    "plot_face_buckets",
    "plot_feature_scatter",
    "plot_learning_curve",
    "plot_predictions",
    "report_html",
    "write_report",
]

SCATTER_FEATURES = ("mean_r", "mean_g", "mean_b", "brightness")


def _run_blocks(summary: Mapping[str, Any]) -> list[Block]:
    counts = dict(summary.get("counts") or {})
    text = f"Run {summary.get('run', '?')}: {summary.get('total', sum(counts.values()))} posters"
    if counts:
        text += "; " + ", ".join(f"{state}: {number}" for state, number in counts.items())
    blocks: list[Block] = [("h2", "The run"), ("p", text + ".")]
    failures = list(summary.get("failures") or [])
    if failures:
        blocks += [("p", "Why posters failed:"), ("table", pd.DataFrame(failures))]
    return blocks


def _genre_table(result: AnalysisResult) -> pd.DataFrame:
    rows = {genre: {row["bucket"]: f"{cell(row['mean'])} (n={row['n']})"
                    for _, row in table.iterrows()}
            for genre, table in result.face_buckets_by_genre.items()}  # fmt: skip
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("genre").reset_index()


def _color_table(groups: pd.DataFrame) -> pd.DataFrame:
    """Levels down, channels across; each cell ``mean [CI] n=...``."""
    if groups.empty:
        return pd.DataFrame()
    text = groups.apply(lambda r: f"{cell(r['mean'])} [{cell(r['ci_low'])}, "
                                  f"{cell(r['ci_high'])}] n={r['n']}", axis=1)  # fmt: skip
    wide = groups.assign(text=text).pivot(index="level", columns="channel", values="text")
    wide = wide.reindex(columns=[c for c in ("r", "g", "b") if c in wide.columns])
    return wide.fillna("").rename_axis(None, axis=1).reset_index()


def _figures(result: AnalysisResult, df: pd.DataFrame) -> dict[str, tuple[str, Figure]]:
    usable = df.loc[pd.to_numeric(df[TARGET], errors="coerce").notna()] if TARGET in df else df
    scatter = [f for f in SCATTER_FEATURES if f in usable]
    return {
        "face_buckets.png": ("Rating by faces on the poster", plot_face_buckets(usable)),
        "colour_groups.png": ("Mean rating by mean colour (0-1), in levels of 0.05",
                              plot_color_groups(result.color_groups)),
        "colour_scatter.png": ("Rating against mean colour and brightness, with trend lines",
                               plot_feature_scatter(usable, scatter)),
        "correlations.png": ("Correlation of each feature with the rating",
                             plot_correlations(result.correlations)),
        "predictions.png": ("Predicted against actual rating (out of fold, mean over repeats, "
                            "poster features and genre)", plot_predictions(result.predictions)),
    }  # fmt: skip


def _headline(result: AnalysisResult) -> str:
    return headline(result.model, synthetic=result.synthetic)


def _blocks(result: AnalysisResult, run_summary: Mapping[str, Any] | None) -> list[Block]:
    blocks: list[Block] = [("h2", "Headline"), ("p", _headline(result))]
    blocks += _run_blocks(run_summary) if run_summary else []
    blocks += [("h2", "What these numbers say, and what they do not"), ("ul", statement(result))]
    blocks += detail_blocks(result)
    min_n = result.provenance.get("settings", {}).get("analysis_options", {}).get("min_n", 10)
    blocks += [
        ("h2", "Rating by number of faces"),
        ("p", f"Mean rating per face count with n and a 95% t-interval of the mean, clipped to "
              f"the 1-10 scale; the top buckets are merged until each has at least {min_n} "
              "posters, and a smaller bucket shows no interval."),
        ("table", result.face_buckets),
        ("figure", ("face_buckets.png", "")),
    ]
    if result.face_buckets_by_genre:
        blocks += [("p", "Within the most common genres (mean rating, n):"),
                   ("table", _genre_table(result))]  # fmt: skip
    left_out = result.color_groups.attrs.get("left_out", 0)
    blocks += [
        ("h2", "Rating by mean colour"),
        ("p", "Mean red, green and blue of the poster on 0-1, rounded to 0.05; mean rating "
              f"per level [95% t-interval, clipped to 1-10] and n. {left_out} levels with "
              f"fewer than {min_n} posters are left out."),
        ("table", _color_table(result.color_groups)),
        ("figure", ("colour_groups.png", "")),
        ("figure", ("colour_scatter.png", "")),
        ("h2", "Correlations with the rating"),
        ("p", "ci_low .. ci_high: 95% percentile bootstrap interval of Pearson's r; "
              "p_adjusted and spearman_p_adjusted: Benjamini-Hochberg within the family."),
        ("table", result.correlations.drop(columns=["fisher_low", "fisher_high"],
                                           errors="ignore")),
    ]
    if result.skipped_features:
        blocks.append(("ul", [f"not tested, {f}: {reason}"
                              for f, reason in result.skipped_features.items()]))  # fmt: skip
    blocks += [("figure", ("correlations.png", "")), ("figure", ("predictions.png", ""))]
    blocks += provenance_blocks(result)
    return blocks


def write_report(
    result: AnalysisResult,
    df: pd.DataFrame,
    out_dir: Path,
    *,
    title: str = "posterlab report",
    run_summary: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``report.html``, ``report.md`` and their PNG plots into ``out_dir``.

    Parameters
    ----------
    result : AnalysisResult
        From :func:`~posterlab.analysis.analyze` on ``df``.
    df : DataFrame
        The same rows, for the scatter and box plots.
    out_dir : Path
        Created if needed.
    title : str
    run_summary : mapping, optional
        The run's counts and failures, shown first: ``run`` (name), ``total``, ``counts``
        (state -> number) and ``failures`` (a list of mappings such as
        ``{"code": ..., "count": ...}``, shown as a table).

    Returns
    -------
    Path
        ``out_dir / "report.html"``: one self-contained page, plots embedded. Beside it,
        ``report.md`` refers to the PNGs by file name, and ``index.html`` is a copy of
        ``report.html`` for links made to earlier reports.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    images, captions = _render_figures(result, df)
    for name, data in images.items():
        (out_dir / name).write_bytes(data)
    blocks = _captioned(_blocks(result, run_summary), captions)
    if result.synthetic:
        title = f"SYNTHETIC DATA -- {title}"
    page = to_html(title, blocks, images)
    report = out_dir / "report.html"
    report.write_text(page, encoding="utf-8")
    (out_dir / "index.html").write_text(page, encoding="utf-8")
    (out_dir / "report.md").write_text(to_markdown(title, blocks), encoding="utf-8")
    return report


def report_html(result: AnalysisResult, df: pd.DataFrame, *, title: str = "posterlab report",
                run_summary: Mapping[str, Any] | None = None) -> str:
    """The page :func:`write_report` writes as ``report.html``, as a string (no file)."""
    images, captions = _render_figures(result, df)
    if result.synthetic:
        title = f"SYNTHETIC DATA -- {title}"
    return to_html(title, _captioned(_blocks(result, run_summary), captions), images)


def _captioned(blocks: list[Block], captions: Mapping[str, str]) -> list[Block]:
    return [("figure", (c[0], captions[c[0]])) if kind == "figure" else (kind, c)
            for kind, c in blocks]


def _render_figures(result: AnalysisResult, df: pd.DataFrame
                    ) -> tuple[dict[str, bytes], dict[str, str]]:
    """Every plot as PNG bytes, and its caption, by file name."""
    images: dict[str, bytes] = {}
    captions: dict[str, str] = {}
    for name, (caption, fig) in _figures(result, df).items():
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=100)
        images[name], captions[name] = buffer.getvalue(), caption
    return images, captions
