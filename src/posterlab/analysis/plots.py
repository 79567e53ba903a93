"""The report's plots, as :class:`matplotlib.figure.Figure` objects built without pyplot.

No global figure state or GUI backend is involved; PNGs are rendered by Agg when saved.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from posterlab.analysis.columns import TARGET
from posterlab.analysis.groups import FACE_BUCKETS
from posterlab.analysis.training import TrainingHistory

__all__ = [
    "COLOR_FEATURES",
    "plot_color_groups",
    "plot_correlations",
    "plot_face_buckets",
    "plot_feature_scatter",
    "plot_learning_curve",
    "plot_predictions",
]

COLOR_FEATURES = (
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


def plot_color_groups(groups: pd.DataFrame, *, min_n: int = 5) -> Figure:
    """Mean rating per rounded mean-colour level, one line per channel, with 95% CIs.

    Levels with fewer than ``min_n`` posters are left out: their means are noise.

    Examples
    --------
    >>> table = pd.DataFrame({"channel": ["r", "r"], "level": [30, 130], "n": [6, 9],
    ...                       "mean": [6.1, 6.4], "ci_low": [5.8, 6.2], "ci_high": [6.4, 6.6]})
    >>> len(plot_color_groups(table).axes[0].lines) > 0
    True
    """
    fig = Figure(figsize=(6, 4), layout="constrained")
    if groups.empty or "channel" not in groups:
        return _empty(fig, "no mean colours")
    ax = fig.add_subplot()
    colors = {"r": "tab:red", "g": "tab:green", "b": "tab:blue"}
    for k, (channel, table) in enumerate(groups[groups["n"] >= min_n].groupby("channel")):
        x = table["level"].to_numpy(np.float64) + (k - 1) * 1.5  # side by side, not on top
        err = [(table["mean"] - table["ci_low"]).fillna(0), (table["ci_high"] - table["mean"])
               .fillna(0)]  # fmt: skip
        ax.errorbar(x, table["mean"], yerr=err, marker="o", markersize=3, capsize=2,
                    color=colors.get(str(channel), "grey"), label=f"mean {channel}")  # fmt: skip
    ax.set_xlabel("mean channel value on 0-255, rounded to tens")
    ax.set_ylabel("mean IMDB rating (95% CI)")
    ax.set_title(f"levels with at least {min_n} posters", fontsize="small", loc="left")
    if ax.lines:
        ax.legend(fontsize="small")
    return fig


def plot_correlations(correlations: pd.DataFrame) -> Figure:
    """Pearson's r of each tested feature with its 95% interval, strongest on top.

    Examples
    --------
    >>> table = pd.DataFrame({"feature": ["a"], "pearson_r": [0.2], "ci_low": [0.1],
    ...                       "ci_high": [0.3], "p_adjusted": [0.01]})
    >>> plot_correlations(table).axes[0].get_xlabel()
    "Pearson's r with the rating (95% bootstrap CI)"
    """
    table = correlations.dropna(subset=["pearson_r"])
    table = table.reindex(table["pearson_r"].abs().sort_values().index)
    fig = Figure(figsize=(6, 0.28 * max(len(table), 4) + 1.2), layout="constrained")
    if table.empty:
        return _empty(fig, "no feature could be correlated")
    ax = fig.add_subplot()
    low = (table["pearson_r"] - table["ci_low"]).fillna(0).clip(lower=0)
    high = (table["ci_high"] - table["pearson_r"]).fillna(0).clip(lower=0)
    colors = np.where(table["p_adjusted"] < 0.05, "tab:blue", "lightgrey")
    ax.barh(table["feature"], table["pearson_r"], xerr=[low, high], color=colors,
            error_kw={"elinewidth": 1, "capsize": 2})  # fmt: skip
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_xlabel("Pearson's r with the rating (95% bootstrap CI)")
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
