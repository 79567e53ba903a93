"""How each scalar poster feature goes with the rating: Pearson, Spearman, CIs, FDR.

Every feature gets a row. A feature that cannot be tested (missing values everywhere,
a constant column, non-numeric cells) keeps its row with NaN statistics, and the reason
is recorded in ``result.attrs["skipped"]``; nothing raises or warns on dirty data.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from posterlab.analysis.columns import SCALAR_FEATURES, TARGET

__all__ = ["CORRELATION_COLUMNS", "correlate", "face_buckets", "fisher_ci"]

CORRELATION_COLUMNS = (
    "feature", "n", "pearson_r", "pearson_p", "spearman_rho", "spearman_p",
    "ci_low", "ci_high", "p_adjusted",
)  # fmt: skip
FACE_BUCKETS = ("0", "1", "2", "3", "4+")
_MIN_N = 3  # Pearson's test has n - 2 degrees of freedom; below 3 there is nothing to test


def fisher_ci(r: float, n: int, *, confidence: float = 0.95) -> tuple[float, float]:
    """Confidence interval for a Pearson correlation by Fisher's z transform.

    Parameters
    ----------
    r : float
        Sample correlation, in [-1, 1].
    n : int
        Number of pairs; the interval needs ``n > 3`` and is ``(nan, nan)`` otherwise.
    confidence : float
        Coverage, in (0, 1).

    Examples
    --------
    >>> low, high = fisher_ci(0.5, 103)
    >>> round(low, 3), round(high, 3)
    (0.339, 0.632)
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    if not -1.0 <= r <= 1.0:
        raise ValueError(f"r must be in [-1, 1], got {r!r}")
    if n <= 3:
        return (np.nan, np.nan)
    if abs(r) == 1.0:  # arctanh is infinite: a perfect sample correlation has a point CI
        return (r, r)
    half = stats.norm.ppf(0.5 + confidence / 2.0) / np.sqrt(n - 3)
    z = np.arctanh(r)
    return (float(np.tanh(z - half)), float(np.tanh(z + half)))


def _numeric(column: pd.Series) -> pd.Series | None:
    """The column as float64, stray non-numbers as NaN; None if it holds no numbers at all."""
    if pd.api.types.is_bool_dtype(column) or pd.api.types.is_numeric_dtype(column):
        return column.astype(np.float64)
    try:
        coerced = pd.to_numeric(column, errors="coerce").astype(np.float64)
    except (TypeError, ValueError):
        return None
    # Cells that were there but none of which is a number (arrays, text): not a feature.
    return None if coerced.isna().all() and column.notna().any() else coerced


def _is_constant(x: np.ndarray) -> bool:
    # The same test scipy.stats.pearsonr uses before warning of (near-)constant input,
    # so that a column we do test never makes it warn.
    mean = float(np.mean(x))
    return bool(np.ptp(x) == 0 or np.linalg.norm(x - mean) < 1e-13 * abs(mean))


def _one(x: pd.Series | None, y: pd.Series, confidence: float) -> tuple[dict[str, float], str]:
    """Statistics of one feature against the target, and the reason when skipped."""
    empty = dict.fromkeys(CORRELATION_COLUMNS[2:-1], np.nan)
    if x is None:
        return {"n": 0, **empty}, "not numeric"
    mask = np.isfinite(x.to_numpy()) & np.isfinite(y.to_numpy())
    xs, ys = x.to_numpy()[mask], y.to_numpy()[mask]
    n = int(mask.sum())
    if n < _MIN_N:
        return {"n": n, **empty}, f"only {n} rows with both values (need {_MIN_N})"
    if _is_constant(xs):
        return {"n": n, **empty}, "constant feature"
    if _is_constant(ys):
        return {"n": n, **empty}, "constant target"
    pearson = stats.pearsonr(xs, ys)
    with np.errstate(divide="ignore", invalid="ignore"):  # rho = +-1 gives p = 0 exactly
        spearman = stats.spearmanr(xs, ys)
    r = float(np.clip(pearson.statistic, -1.0, 1.0))
    low, high = fisher_ci(r, n, confidence=confidence)
    return {
        "n": n,
        "pearson_r": r,
        "pearson_p": float(pearson.pvalue),
        "spearman_rho": float(spearman.statistic),
        "spearman_p": float(spearman.pvalue),
        "ci_low": low,
        "ci_high": high,
    }, ""


def correlate(
    df: pd.DataFrame,
    *,
    target: str = TARGET,
    features: Sequence[str] | None = None,
    confidence: float = 0.95,
) -> pd.DataFrame:
    """Correlation of each feature with the rating.

    Parameters
    ----------
    df : DataFrame
        One row per poster.
    target : str
        The rating column.
    features : sequence of str, optional
        Columns to test; by default ``face_count`` and every scalar image feature present.
    confidence : float
        Coverage of the Fisher-z interval ``ci_low .. ci_high`` for Pearson's r.

    Returns
    -------
    DataFrame
        One row per feature, columns ``feature, n, pearson_r, pearson_p, spearman_rho,
        spearman_p, ci_low, ci_high, p_adjusted``. ``n`` counts rows where both values are
        finite. ``p_adjusted`` is Pearson's p adjusted by Benjamini-Hochberg over the
        features actually tested. ``attrs["skipped"]`` maps skipped features to reasons.

    Examples
    --------
    >>> frame = pd.DataFrame({"score": [5.0, 6, 7, 8], "face_count": [0, 1, 1, 3]})
    >>> round(float(correlate(frame).loc[0, "pearson_r"]), 3)
    0.923
    """
    if target not in df.columns:
        raise ValueError(f"target column {target!r} is not in the DataFrame")
    if features is None:
        features = [c for c in ("face_count", *SCALAR_FEATURES) if c in df.columns]
    else:
        features = list(features)
        missing = [f for f in features if f not in df.columns]
        if missing:
            raise ValueError(f"features not in the DataFrame: {missing}")
    y = _numeric(df[target])
    if y is None:
        raise ValueError(f"target column {target!r} is not numeric")
    rows, skipped = [], {}
    for feature in features:
        values, reason = _one(_numeric(df[feature]), y, confidence)
        rows.append({"feature": feature, **values})
        if reason:
            skipped[feature] = reason
    out = pd.DataFrame(rows, columns=list(CORRELATION_COLUMNS[:-1]))
    out["n"] = out["n"].astype(np.int64)
    out["p_adjusted"] = np.nan
    tested = out["pearson_p"].notna()
    if tested.any():
        out.loc[tested, "p_adjusted"] = stats.false_discovery_control(
            out.loc[tested, "pearson_p"].to_numpy(), method="bh"
        )
    out.attrs["skipped"] = skipped
    return out


def face_buckets(
    df: pd.DataFrame, *, target: str = TARGET, column: str = "face_count"
) -> pd.DataFrame:
    """Rating by number of faces on the poster, in buckets 0, 1, 2, 3, 4+.

    Returns
    -------
    DataFrame
        Columns ``bucket, n, mean, median, std, sem``; one row per bucket, empty buckets
        included with ``n = 0`` and NaN statistics.

    Examples
    --------
    >>> frame = pd.DataFrame({"score": [6.0, 7.0, 8.0], "face_count": [0, 0, 5]})
    >>> face_buckets(frame)[["bucket", "n", "mean"]].to_dict("list")
    {'bucket': ['0', '1', '2', '3', '4+'], 'n': [2, 0, 0, 0, 1], 'mean': [6.5, nan, nan, nan, 8.0]}
    """
    for name, col in (("target", target), ("column", column)):
        if col not in df.columns:
            raise ValueError(f"{name} column {col!r} is not in the DataFrame")
    faces, y = _numeric(df[column]), _numeric(df[target])
    if faces is None or y is None:
        raise ValueError(f"columns {column!r} and {target!r} must be numeric")
    usable = np.isfinite(faces) & np.isfinite(y) & (faces >= 0)
    counts = faces[usable].astype(np.int64).clip(upper=len(FACE_BUCKETS) - 1)
    labels = pd.Categorical.from_codes(counts.to_numpy(), categories=list(FACE_BUCKETS))
    grouped = y[usable].groupby(labels, observed=False)
    out = pd.DataFrame(
        {
            "n": grouped.size(),
            "mean": grouped.mean(),
            "median": grouped.median(),
            "std": grouped.std(),
            "sem": grouped.sem(),
        }
    )
    out = out.reindex(list(FACE_BUCKETS)).rename_axis("bucket").reset_index()
    out["bucket"] = out["bucket"].astype(str)
    out["n"] = out["n"].fillna(0).astype(np.int64)
    return out
