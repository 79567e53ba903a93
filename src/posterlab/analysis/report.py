"""The report of an :class:`AnalysisResult`: ``report.html``, ``report.md`` and PNG plots.

``report.html`` is self-contained (its plots are embedded); ``report.md`` refers to the
PNG files written beside it. :func:`write_report` is the only function here that writes
files. The plot functions live in :mod:`posterlab.analysis.plots` and are re-exported.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from posterlab.analysis._render import Block, cell, to_html, to_markdown
from posterlab.analysis.columns import TARGET
from posterlab.analysis.plots import (
    plot_color_groups,
    plot_correlations,
    plot_face_buckets,
    plot_feature_scatter,
    plot_learning_curve,
    plot_predictions,
)
from posterlab.analysis.result import AnalysisResult

__all__ = [
    "explained_variance",
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
_NOTHING = 0.02  # R^2 below this is "almost nothing": about r = 0.14 for one feature


def _r2(entry: object, model: str = "mlp") -> float | None:
    if isinstance(entry, Mapping) and isinstance(entry.get(model), Mapping):
        value = entry[model].get("r2")
        return None if value is None or not np.isfinite(value) else float(value)
    return None


def explained_variance(model: Mapping[str, Any]) -> str:
    """How much of the rating the poster explains, in one plain paragraph.

    Parameters
    ----------
    model : mapping
        ``AnalysisResult.model`` (or the ``"model"`` entry of its ``to_dict()``).

    Examples
    --------
    >>> explained_variance({"skipped": "12 rows"})
    'No model was trained (12 rows).'
    """
    poster, genre = model.get("regression_poster_only"), model.get("regression")
    p, g = _r2(poster), _r2(genre)
    if p is None and g is None:
        reason = model.get("skipped") or (genre or {}).get("skipped") or "no regression"
        return f"No model was trained ({reason})."
    parts = []
    if p is not None and isinstance(poster, Mapping):
        parts.append(
            f"Poster features alone explain R² = {p:.3f} of the variance in the rating on "
            f"{poster['n_test']} held-out movies (least squares on the same features: "
            f"{cell(_r2(poster, 'ols_baseline'))}; always predicting the training mean: "
            f"{cell(_r2(poster, 'mean_baseline'))})."
        )
    if g is not None:
        parts.append(f"With genre indicators added, R² = {g:.3f} "
                     f"(least squares: {cell(_r2(genre, 'ols_baseline'))}).")  # fmt: skip
    if p is not None:
        if p < _NOTHING:
            parts.append("In plain words: the poster by itself predicts almost nothing of "
                         "how well a film is rated.")  # fmt: skip
        else:
            parts.append(f"In plain words: the poster accounts for about {100 * p:.0f}% of "
                         "the differences in rating between films.")  # fmt: skip
        if g is not None and g - p > max(p, _NOTHING):
            parts.append("What can be predicted comes mostly from the genre, not the poster.")
        elif g is not None and g - p >= _NOTHING:
            parts.append(f"Genre adds {g - p:.3f} to R².")
    return " ".join(parts)


def _describe_inputs(names: Sequence[str]) -> str:
    genres = [n.removeprefix("genre_") for n in names if n.startswith("genre_")]
    bins = [n for n in names if "_hist_" in n]
    scalar = [n for n in names if n not in bins and not n.startswith("genre_")]
    text = ", ".join(scalar)
    if genres:
        text += f"; indicators of the genres {', '.join(genres)}"
    if bins:
        text += f"; {len(bins)} histogram bins"
    return text


_MODEL_TITLES = {
    "regression": "Rating from poster features and genre",
    "regression_poster_only": "Rating from poster features alone",
    "classification": "Rating band from poster features and genre",
}


def _model_blocks(model: Mapping[str, Any]) -> list[Block]:
    if "skipped" in model:
        return [("p", f"The models were skipped: {model['skipped']}.")]
    blocks: list[Block] = []
    for name, title in _MODEL_TITLES.items():
        entry = model.get(name)
        if not isinstance(entry, Mapping):
            continue
        blocks.append(("h3", title))
        if "skipped" in entry:
            blocks.append(("p", f"Skipped: {entry['skipped']}."))
            continue
        band = f"; predicts rating ≥ {entry['band']}" if "band" in entry else ""
        blocks.append(("p", f"{entry['hidden_size']} hidden units, chosen by cross-validation "
                            f"among {', '.join(entry['cv_mse'])}; {entry['n_train']} training "
                            f"and {entry['n_test']} test rows{band}. "
                            f"Inputs: {_describe_inputs(entry['inputs'])}."))  # fmt: skip
        rows = {m: entry[m] for m in ("mlp", "ols_baseline", "mean_baseline")}
        blocks.append(("table", pd.DataFrame(rows).T.rename_axis("model").reset_index()))
    return blocks


def _statement(result: AnalysisResult) -> list[str]:
    """What the numbers say and do not say, with this run's n and effect sizes."""
    tested = result.correlations.dropna(subset=["pearson_r"])
    n = result.n
    half = 1.96 / np.sqrt(n - 3) if n > 3 else float("nan")
    lines = [
        f"These figures describe {n} rated posters that went through the pipeline; posters "
        "that failed or have no rating are not in them.",
        "A correlation is an association, not a cause: a poster feature can go with the "
        "rating because both depend on something else (genre, era, budget, studio).",
        f"With n = {n}, a 95% interval for a small r reaches about ±{half:.2f} around it; "
        f"{len(tested)} features were tested and p-values are adjusted (Benjamini-Hochberg), "
        "which bounds the expected share of false discoveries, not the chance of any.",
    ]
    if not tested.empty:
        top = tested.loc[tested["pearson_r"].abs().idxmax()]
        lines.append(
            f"Effect size: the strongest feature, {top['feature']}, has r = "
            f"{top['pearson_r']:.2f} (95% bootstrap CI {cell(top['ci_low'])} to "
            f"{cell(top['ci_high'])}), i.e. it alone accounts for "
            f"{100 * top['pearson_r'] ** 2:.1f}% of the variance of the rating."
        )
    lines.append(
        "Face counts come from a detector and miss or invent faces; such measurement error "
        "weakens the correlations it enters."
    )
    return lines


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
        "colour_groups.png": ("Mean rating by mean colour, rounded to tens",
                              plot_color_groups(result.color_groups)),
        "colour_scatter.png": ("Rating against mean colour and brightness, with trend lines",
                               plot_feature_scatter(usable, scatter)),
        "correlations.png": ("Correlation of each feature with the rating",
                             plot_correlations(result.correlations)),
        "learning_curve.png": (
            "MLP learning curves (first network of each ensemble)",
            plot_learning_curve(result.history),
        ),
        "predictions.png": ("Predicted against actual rating (test rows, with genre)",
                            plot_predictions(result.predictions)),
    }  # fmt: skip


def _blocks(result: AnalysisResult, run_summary: Mapping[str, Any] | None) -> list[Block]:
    blocks: list[Block] = _run_blocks(run_summary) if run_summary else []
    blocks += [
        ("h2", "How much of the rating the poster explains"),
        ("p", explained_variance(result.model)),
        ("h2", "What these numbers say, and what they do not"),
        ("ul", _statement(result)),
        ("h2", "Rating by number of faces"),
        ("p", "Mean rating per face count with n and a 95% t-interval of the mean."),
        ("table", result.face_buckets),
        ("figure", ("face_buckets.png", "")),
    ]
    if result.face_buckets_by_genre:
        blocks += [("p", "Within the most common genres (mean rating, n):"),
                   ("table", _genre_table(result))]  # fmt: skip
    blocks += [
        ("h2", "Rating by mean colour"),
        (
            "p",
            "Mean red, green and blue of the poster on 0-255, rounded to tens; "
            "mean rating per level [95% t-interval] and n.",
        ),
        ("table", _color_table(result.color_groups)),
        ("figure", ("colour_groups.png", "")),
        ("figure", ("colour_scatter.png", "")),
        ("h2", "Correlations with the rating"),
        (
            "p",
            "ci_low .. ci_high: 95% percentile bootstrap interval of Pearson's r; "
            "fisher_low .. fisher_high: Fisher's z interval, for comparison.",
        ),
        ("table", result.correlations),
    ]
    if result.skipped_features:
        blocks.append(("ul", [f"not tested, {f}: {reason}"
                              for f, reason in result.skipped_features.items()]))  # fmt: skip
    blocks += [
        ("figure", ("correlations.png", "")),
        ("h2", "Predicting the rating: the MLP against the baselines"),
        *_model_blocks(result.model),
        ("figure", ("learning_curve.png", "")),
        ("figure", ("predictions.png", "")),
    ]
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
