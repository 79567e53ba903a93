"""The face-count effect in rating points: per face, none against some, and the trend.

- ``per_face``: the OLS slope of the rating on the face count (statsmodels), with its
  95% interval and p-value: rating points per extra face.
- ``none_vs_some``: films whose poster shows at least one face against those with none:
  the difference of mean ratings with Welch's 95% interval and p (scipy), and Cohen's d
  (the difference over the pooled standard deviation).
- ``trend``: across the face buckets 0, 1, 2, ... (the top one open-ended), a one-way
  ANOVA F test of "every bucket has the same mean" and the linear trend over the bucket
  index (slope per bucket and its p).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import stats
from statsmodels.regression.linear_model import OLS
from statsmodels.tools.tools import add_constant

__all__ = ["face_effects", "slope_of"]


def slope_of(x: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """OLS ``y ~ 1 + x``: ``slope, ci_low, ci_high, p, n`` (NaN when x is constant).

    Examples
    --------
    >>> out = slope_of(np.array([0.0, 1, 2, 3]), np.array([1.0, 3, 5, 7.5]))
    >>> round(out["slope"], 3), out["n"]
    (2.15, 4)
    """
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    out = {"n": len(x), "slope": np.nan, "ci_low": np.nan, "ci_high": np.nan, "p": np.nan}
    if len(x) < 3 or np.ptp(x) == 0:
        return out
    fit = OLS(y, add_constant(x, has_constant="add")).fit()
    low, high = fit.conf_int()[1]
    return {**out, "slope": float(fit.params[1]), "ci_low": float(low),
            "ci_high": float(high), "p": float(fit.pvalues[1])}  # fmt: skip


def _none_vs_some(faces: np.ndarray, y: np.ndarray) -> dict[str, float]:
    none, some = y[faces == 0], y[faces >= 1]
    out = {"n_none": len(none), "n_some": len(some), "difference": np.nan,
           "ci_low": np.nan, "ci_high": np.nan, "p": np.nan, "cohens_d": np.nan}
    if len(none) < 2 or len(some) < 2:
        return out
    test = stats.ttest_ind(some, none, equal_var=False)
    ci = test.confidence_interval(0.95)
    pooled = np.sqrt(((len(some) - 1) * some.var(ddof=1) + (len(none) - 1) * none.var(ddof=1))
                     / (len(some) + len(none) - 2))  # fmt: skip
    diff = float(some.mean() - none.mean())
    return {**out, "difference": diff, "ci_low": float(ci.low), "ci_high": float(ci.high),
            "p": float(test.pvalue), "cohens_d": diff / pooled if pooled > 0 else np.nan}


def _trend(buckets: np.ndarray, y: np.ndarray) -> dict[str, float]:
    groups = [y[buckets == b] for b in np.unique(buckets)]
    groups = [g for g in groups if len(g) >= 2]
    out = {"groups": len(groups), "anova_f": np.nan, "anova_p": np.nan,
           "slope_per_bucket": np.nan, "trend_p": np.nan}
    if len(groups) < 2:
        return out
    anova = stats.f_oneway(*groups)
    linear = slope_of(buckets.astype(np.float64), y)
    return {**out, "anova_f": float(anova.statistic), "anova_p": float(anova.pvalue),
            "slope_per_bucket": linear["slope"], "trend_p": linear["p"]}


def face_effects(faces: np.ndarray, y: np.ndarray, *, top: int = 5) -> dict[str, Any]:
    """``{per_face, none_vs_some, trend}`` of face counts against ratings.

    ``top`` is the open-ended last bucket of the trend test (``5`` means 5+).

    Examples
    --------
    >>> faces = np.array([0, 0, 0, 1, 1, 2, 2, 3]); y = 6 + 0.5 * faces
    >>> round(face_effects(faces, y + [0, .1, -.1, 0, .1, 0, -.1, 0])["per_face"]["slope"], 2)
    0.49
    """
    faces, y = np.asarray(faces, np.float64), np.asarray(y, np.float64)
    ok = np.isfinite(faces) & np.isfinite(y) & (faces >= 0)
    faces, y = faces[ok], y[ok]
    return {"per_face": slope_of(faces, y), "none_vs_some": _none_vs_some(faces, y),
            "trend": _trend(np.minimum(faces, top), y)}  # fmt: skip
