"""Plots and a self-contained HTML report of an :class:`AnalysisResult`.

The plotting functions build :class:`matplotlib.figure.Figure` objects directly, never
through pyplot, so no global figure state or GUI backend is involved; PNGs are rendered
by Agg. :func:`write_report` is the only function here that writes files.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from posterlab.analysis.columns import TARGET
from posterlab.analysis.correlations import FACE_BUCKETS
from posterlab.analysis.mlp import TrainingHistory
from posterlab.analysis.summary import AnalysisResult

__all__ = [
    "plot_correlations",
    "plot_face_buckets",
    "plot_feature_scatter",
    "plot_learning_curve",
    "plot_predictions",
    "write_report",
]

COLOUR_FEATURES = (
    "colorfulness", "brightness", "contrast", "mean_r", "mean_g", "mean_b",
    "mean_h", "mean_s", "mean_v", "std_r", "std_g", "std_b", "std_h", "std_s", "std_v",
)  # fmt: skip


def _empty(fig: Figure, message: str) -> Figure:
    fig.text(0.5, 0.5, message, ha="center", va="center", color="grey")
    return fig


def plot_face_buckets(df: pd.DataFrame, *, seed: int = 0) -> Figure:
    """Rating per face-count bucket: a box per bucket over the jittered ratings.

    ``seed`` fixes the horizontal jitter of the points.

    Examples
    --------
    >>> frame = pd.DataFrame({"score": [6.0, 7.5], "face_count": [0, 5]})
    >>> plot_face_buckets(frame).axes[0].get_xlabel()
    'faces on the poster'
    """
    fig = Figure(figsize=(6, 4), layout="constrained")
    if "face_count" not in df or TARGET not in df:
        return _empty(fig, "no face counts")
    faces = pd.to_numeric(df["face_count"], errors="coerce")
    rating = pd.to_numeric(df[TARGET], errors="coerce")
    ok = faces.notna() & rating.notna() & (faces >= 0)
    bucket = faces[ok].astype(int).clip(upper=len(FACE_BUCKETS) - 1).to_numpy()
    groups = [rating[ok].to_numpy()[bucket == b] for b in range(len(FACE_BUCKETS))]
    ax = fig.add_subplot()
    present = [b for b, g in enumerate(groups) if len(g)]
    if present:
        ax.boxplot([groups[b] for b in present], positions=present, widths=0.6, showfliers=False)
        rng = np.random.default_rng(seed)
        for b in present:
            jitter = rng.uniform(-0.2, 0.2, size=len(groups[b]))
            ax.scatter(b + jitter, groups[b], s=6, alpha=0.35, color="tab:blue", linewidths=0)
    labels = [f"{b}\n(n={len(g)})" for b, g in zip(FACE_BUCKETS, groups, strict=True)]
    ax.set_xticks(range(len(FACE_BUCKETS)), labels)
    ax.set_xlabel("faces on the poster")
    ax.set_ylabel("IMDB rating")
    return fig


def plot_feature_scatter(df: pd.DataFrame, features: Sequence[str]) -> Figure:
    """Rating against each feature, one panel each, with the least-squares line.

    Examples
    --------
    >>> frame = pd.DataFrame({"score": [5.0, 6, 8], "brightness": [0.1, 0.5, 0.9]})
    >>> len(plot_feature_scatter(frame, ["brightness"]).axes)
    1
    """
    fig = Figure(figsize=(4 * max(len(features), 1), 3.6), layout="constrained")
    if not features:
        return _empty(fig, "no features to plot")
    for i, feature in enumerate(features, start=1):
        ax = fig.add_subplot(1, len(features), i)
        if feature not in df or TARGET not in df:
            ax.set_title(f"{feature}: no data", fontsize="small")
            continue
        pair = pd.DataFrame(
            {"x": pd.to_numeric(df[feature], errors="coerce"),
             "y": pd.to_numeric(df[TARGET], errors="coerce")}
        ).dropna()  # fmt: skip
        ax.scatter(pair["x"], pair["y"], s=6, alpha=0.4, linewidths=0)
        if len(pair) >= 2 and pair["x"].nunique() > 1:
            slope, intercept = np.polyfit(pair["x"], pair["y"], 1)
            xs = np.linspace(pair["x"].min(), pair["x"].max(), 2)
            ax.plot(xs, intercept + slope * xs, color="tab:red", label=f"slope {slope:.2g}")
            ax.legend(loc="lower right", fontsize="small")
        ax.set_xlabel(feature)
        ax.set_ylabel("IMDB rating" if i == 1 else "")
    return fig


def plot_correlations(correlations: pd.DataFrame) -> Figure:
    """Pearson's r of each tested feature with its 95% interval, strongest on top.

    Examples
    --------
    >>> table = pd.DataFrame({"feature": ["a"], "pearson_r": [0.2], "ci_low": [0.1],
    ...                       "ci_high": [0.3], "p_adjusted": [0.01]})
    >>> plot_correlations(table).axes[0].get_xlabel()
    "Pearson's r with the rating (95% CI)"
    """
    table = correlations.dropna(subset=["pearson_r"])
    table = table.reindex(table["pearson_r"].abs().sort_values().index)
    fig = Figure(figsize=(6, 0.28 * max(len(table), 4) + 1.2), layout="constrained")
    if table.empty:
        return _empty(fig, "no feature could be correlated")
    ax = fig.add_subplot()
    low = (table["pearson_r"] - table["ci_low"]).fillna(0).clip(lower=0)
    high = (table["ci_high"] - table["pearson_r"]).fillna(0).clip(lower=0)
    colours = np.where(table["p_adjusted"] < 0.05, "tab:blue", "lightgrey")
    ax.barh(table["feature"], table["pearson_r"], xerr=[low, high], color=colours,
            error_kw={"elinewidth": 1, "capsize": 2})  # fmt: skip
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_xlabel("Pearson's r with the rating (95% CI)")
    ax.set_title("blue: adjusted p < 0.05", fontsize="small", loc="left")
    return fig


def plot_learning_curve(history: Mapping[str, TrainingHistory]) -> Figure:
    """Training and validation error per epoch of each final network."""
    fig = Figure(figsize=(5 * max(len(history), 1), 3.6), layout="constrained")
    if not history:
        return _empty(fig, "no network was trained")
    for i, (task, h) in enumerate(history.items(), start=1):
        ax = fig.add_subplot(1, len(history), i)
        epochs = np.arange(1, h.epochs + 1)
        ax.plot(epochs, h.train_error, label="training")
        if h.validation_error:
            ax.plot(epochs, h.validation_error, label="validation")
            ax.axvline(h.best_epoch, color="grey", linestyle=":", label="weights kept")
        ax.set_xlabel("epoch")
        # Regression trains on the standardised rating, so its errors are in those units.
        ax.set_ylabel("mean error ½(t - out)²")
        ax.set_title(f"{task} (stopped: {h.stopped})", fontsize="small")
        ax.legend(fontsize="small")
    return fig


def plot_predictions(predictions: pd.DataFrame) -> Figure:
    """Predicted against actual rating on the test rows, with the identity line."""
    fig = Figure(figsize=(4.5, 4.5), layout="constrained")
    if predictions.empty:
        return _empty(fig, "no predictions")
    ax = fig.add_subplot()
    ax.scatter(predictions["actual"], predictions["predicted"], s=8, alpha=0.5, linewidths=0)
    lo = float(min(predictions["actual"].min(), predictions["predicted"].min()))
    hi = float(max(predictions["actual"].max(), predictions["predicted"].max()))
    ax.plot([lo, hi], [lo, hi], color="black", linewidth=0.8)
    ax.set_xlabel("actual rating")
    ax.set_ylabel("predicted rating (MLP)")
    ax.set_aspect("equal")
    return fig


def _strongest(correlations: pd.DataFrame, candidates: Sequence[str], k: int) -> list[str]:
    table = correlations[correlations["feature"].isin(candidates)].dropna(subset=["pearson_r"])
    return list(table.reindex(table["pearson_r"].abs().sort_values(ascending=False).index)
                ["feature"].head(k))  # fmt: skip


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


def _model_table(model: Mapping[str, object]) -> str:
    parts = []
    for task in ("regression", "classification"):
        entry = model.get(task)
        if not isinstance(entry, dict):
            continue
        if "skipped" in entry:
            parts.append(f"<p>{task}: skipped ({html.escape(str(entry['skipped']))})</p>")
            continue
        rows = {name: entry[name] for name in ("mlp", "ols_baseline", "mean_baseline")}
        table = pd.DataFrame(rows).T.rename_axis("model")
        parts.append(
            f"<h3>{task}</h3><p>{entry['hidden_size']} hidden units, chosen by cross-validation "
            f"among {', '.join(entry['cv_mse'])}; {entry['n_train']} training and "
            f"{entry['n_test']} test rows"
            + (f"; predicts rating &ge; {entry['band']}" if "band" in entry else "")
            + f". Inputs: {html.escape(_describe_inputs(entry['inputs']))}.</p>"
            + table.to_html(float_format="{:.3f}".format, na_rep="n/a")
        )
    return "".join(parts) or f"<p>{html.escape(str(model.get('skipped', 'no model')))}</p>"


def _statement(result: AnalysisResult) -> str:
    """What the numbers say and do not say, with this run's n and effect sizes."""
    tested = result.correlations.dropna(subset=["pearson_r"])
    n = result.n
    half = 1.96 / np.sqrt(n - 3) if n > 3 else float("nan")
    lines = [
        f"These figures describe {n} rated posters that went through the pipeline; posters "
        "that failed or have no rating are not in them.",
        "A correlation is an association, not a cause: a poster feature can go with the "
        "rating because both depend on something else (genre, era, budget, studio).",
        f"With n = {n}, a 95% interval for a small r reaches about &plusmn;{half:.2f} around it; "
        f"{len(tested)} features were tested and p-values are adjusted (Benjamini-Hochberg), "
        "which bounds the expected share of false discoveries, not the chance of any.",
    ]
    if not tested.empty:
        top = tested.loc[tested["pearson_r"].abs().idxmax()]
        lines.append(
            f"Effect size: the strongest feature, {html.escape(str(top['feature']))}, has "
            f"r = {top['pearson_r']:.2f}, i.e. it alone accounts for "
            f"{100 * top['pearson_r'] ** 2:.1f}% of the variance of the rating."
        )
    reg = result.model.get("regression")
    if isinstance(reg, dict) and "mlp" in reg:
        lines.append(
            f"On {reg['n_test']} held-out posters the network explains R&sup2; = "
            f"{reg['mlp']['r2']:.2f} of the rating's variance (least squares: "
            f"{reg['ols_baseline']['r2']:.2f}); "
            "a network no better than least squares finds no non-linear pattern."
        )
    lines.append(
        "Face counts come from a detector and miss or invent faces; such measurement error "
        "weakens the correlations it enters."
    )
    return "<ul>" + "".join(f"<li>{line}</li>" for line in lines) + "</ul>"


def _figures(result: AnalysisResult, df: pd.DataFrame) -> dict[str, tuple[str, Figure]]:
    usable = df.loc[pd.to_numeric(df[TARGET], errors="coerce").notna()]
    colour = _strongest(result.correlations, COLOUR_FEATURES, 3)
    return {
        "face_buckets.png": ("Rating by faces on the poster", plot_face_buckets(usable)),
        "colour_features.png": ("Rating against the colour features most correlated with it",
                                plot_feature_scatter(usable, colour)),
        "correlations.png": ("Correlation of each feature with the rating",
                             plot_correlations(result.correlations)),
        "learning_curve.png": ("MLP learning curves", plot_learning_curve(result.history)),
        "predictions.png": ("Predicted against actual rating (test rows)",
                            plot_predictions(result.predictions)),
    }  # fmt: skip


def write_report(
    result: AnalysisResult, df: pd.DataFrame, out_dir: Path, *, title: str = "posterlab report"
) -> Path:
    """Write ``index.html`` and its PNG plots into ``out_dir`` (created if needed).

    Parameters
    ----------
    result : AnalysisResult
        From :func:`~posterlab.analysis.analyze` on ``df``.
    df : DataFrame
        The same rows, for the scatter and box plots.
    out_dir : Path
    title : str

    Returns
    -------
    Path
        ``out_dir / "index.html"``; the page refers to the PNGs by relative name, so the
        folder can be moved or served as it is.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    sections = []
    for name, (caption, fig) in _figures(result, df).items():
        fig.savefig(out_dir / name, dpi=100)
        sections.append(f'<figure><img src="{name}" alt="{html.escape(caption)}">'
                        f"<figcaption>{html.escape(caption)}</figcaption></figure>")  # fmt: skip
    skipped = "".join(f"<li>{html.escape(f)}: {html.escape(r)}</li>"
                      for f, r in result.skipped_features.items())  # fmt: skip
    fmt = {"float_format": "{:.3g}".format, "na_rep": "n/a", "index": False}
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;max-width:60em;margin:auto}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:2px 6px;text-align:right}}img{{max-width:100%}}</style>
</head><body><h1>{html.escape(title)}</h1>
<h2>What these numbers say, and what they do not</h2>{_statement(result)}
<h2>Rating by number of faces</h2>{result.face_buckets.to_html(**fmt)}{sections[0]}
<h2>Correlations with the rating</h2>{result.correlations.to_html(**fmt)}
{"<p>Not tested:</p><ul>" + skipped + "</ul>" if skipped else ""}{sections[2]}{sections[1]}
<h2>Predicting the rating</h2>{_model_table(result.model)}{sections[3]}{sections[4]}
</body></html>
"""
    index = out_dir / "index.html"
    index.write_text(page, encoding="utf-8")
    return index
