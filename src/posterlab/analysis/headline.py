"""The headline of an analysis: what the out-of-fold figures say, in plain words.

Written from the cross-validated R^2 of the poster-only models with their intervals and
the permutation test, never from one split. When the MLP's interval includes 0 it says
the poster's predictive value is indistinguishable from zero; synthetic data are named
as such first.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["headline", "model_rows"]

_MODEL_NAMES = ("mlp", "ridge", "ols", "mean_baseline")
_TASK_TITLES = {"regression": "rating, poster + genre",
                "regression_poster_only": "rating, poster alone",
                "classification": "rating band, poster + genre"}  # fmt: skip


def _fmt(value: Any, digits: int = 3) -> str:
    return "n/a" if value is None or value != value else f"{value:.{digits}f}"


def _scores(entry: Mapping[str, Any], model: str) -> tuple[Any, Any, Any]:
    scores = entry["cv"]["models"][model]
    key = "auc" if "auc_mean" in scores else "r2"
    return scores[f"{key}_mean"], scores[f"{key}_ci_low"], scores[f"{key}_ci_high"]


def headline(model: Mapping[str, Any], *, synthetic: bool = False) -> str:
    """One paragraph on how much of the rating the poster predicts out of fold.

    Examples
    --------
    >>> cv = {"folds": 5, "repeats": 5, "models": {m: {"r2_mean": 0.01, "r2_ci_low": -0.02,
    ...       "r2_ci_high": 0.04} for m in _MODEL_NAMES}}
    >>> text = headline({"regression_poster_only": {"cv": cv, "permutation_p": 0.3}})
    >>> "indistinguishable from zero" in text
    True
    """
    prefix = "SYNTHETIC DATA (made-up posters and ratings): " if synthetic else ""
    poster = model.get("regression_poster_only")
    if not isinstance(poster, Mapping) or "cv" not in poster:
        reason = model.get("skipped") or (poster or {}).get("skipped") or "no model"
        return f"{prefix}No model was trained ({reason})."
    cv = poster["cv"]
    mean, low, high = _scores(poster, "mlp")
    r_mean, r_low, r_high = _scores(poster, "ridge")
    text = (f"{prefix}Out of fold ({cv['folds']}-fold x {cv['repeats']}), poster features "
            f"alone give the MLP R² = {_fmt(mean)} [95% CI {_fmt(low)}, {_fmt(high)}] and "
            f"ridge R² = {_fmt(r_mean)} [{_fmt(r_low)}, {_fmt(r_high)}]; permutation "
            f"p = {_fmt(poster.get('permutation_p'))} (ridge, "
            f"{poster.get('permutation', {}).get('permutations', '?')} permutations). ")
    p = poster.get("permutation_p")
    if low is None or high is None or low != low or (low <= 0 <= high):
        if p is not None and p < 0.05 and high is not None and high > 0:
            # the refits on permuted ratings say better than chance; the interval over
            # the outer fits still includes zero: report the bound, not a finding
            text += (f"The interval includes zero, though ridge does better than chance "
                     f"(permutation p = {_fmt(p)}): whatever the poster predicts is small, "
                     f"at most about {100 * high:.0f}% of the rating's variance.")
        else:
            text += ("The poster's power to predict the rating is indistinguishable from "
                     "zero on these data.")
    elif low > 0:
        text += (f"The poster predicts a small but real share of the rating: about "
                 f"{100 * mean:.0f}% of its variance (at least {100 * low:.0f}%).")
    else:
        text += "The MLP predicts worse than the mean rating would."
    genre = model.get("regression")
    if isinstance(genre, Mapping) and "cv" in genre:
        g_mean, g_low, g_high = _scores(genre, "mlp")
        text += f" With genre indicators: R² = {_fmt(g_mean)} [{_fmt(g_low)}, {_fmt(g_high)}]."
    return text


def model_rows(model: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One row per (task, model): ``task, model, score, mean, ci_low, ci_high``."""
    rows = []
    for task, title in _TASK_TITLES.items():
        entry = model.get(task)
        if not isinstance(entry, Mapping) or "cv" not in entry:
            continue
        for name in _MODEL_NAMES:
            mean, low, high = _scores(entry, name)
            rows.append({"task": title, "model": name,
                         "score": "AUC" if task == "classification" else "R²",
                         "mean": mean, "ci_low": low, "ci_high": high})  # fmt: skip
        diff = entry["cv"]["mlp_minus_ridge"]
        rows.append({"task": title, "model": "mlp - ridge", "score": "paired",
                     "mean": diff["mean"], "ci_low": diff["ci_low"],
                     "ci_high": diff["ci_high"]})  # fmt: skip
    return rows
