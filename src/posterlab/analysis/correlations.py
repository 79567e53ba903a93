"""How every scalar poster feature goes with the rating: Pearson, Spearman, CIs, FDR.

Every feature gets a row. A feature that cannot be tested (missing values everywhere,
a constant column, non-numeric cells) keeps its row with NaN statistics, and the reason
is recorded in ``result.attrs["skipped"]``; nothing raises or warns on dirty data.
The interval ``ci_low .. ci_high`` of Pearson's r is a seeded percentile bootstrap;
Fisher's z interval is kept beside it (``fisher_low .. fisher_high``) for comparison.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from posterlab.analysis.columns import POSTER_FEATURES, TARGET, family
from posterlab.analysis.controls import adjust_within

__all__ = ["CORRELATION_COLUMNS", "bootstrap_ci", "correlate", "fisher_ci"]

CORRELATION_COLUMNS = (
    "feature", "n", "pearson_r", "pearson_p", "spearman_rho", "spearman_p",
    "ci_low", "ci_high", "p_adjusted",
)  # fmt: skip
EXTRA_COLUMNS = ("fisher_low", "fisher_high", "spearman_p_adjusted", "family")
N_BOOT = 2000  # percentile ends move by < 0.005 between seeds at n = 2,000
_MIN_N = 3  # Pearson's test has n - 2 degrees of freedom; below 3 there is nothing to test
# Resampled values held at once: (B, n) index blocks are cut to this size, so that
# 2,000 x 2,000 runs in one block and 100,000 posters do not need gigabytes.
_BLOCK = 4_000_000


def bootstrap_ci(
    x: np.ndarray,
    y: np.ndarray,
    *,
    n_boot: int = N_BOOT,
    confidence: float = 0.95,
    seed: int | Sequence[int] = 0,
) -> tuple[float, float]:
    """Percentile bootstrap interval for Pearson's r of paired samples.

    Resamples the pairs with replacement ``n_boot`` times as a ``(n_boot, n)`` index
    array and computes all the correlations at once. Resamples in which ``x`` or ``y``
    is constant have no correlation and are left out.

    Parameters
    ----------
    x, y : ndarray, shape (n,)
        Finite paired values, ``n >= 3``.
    n_boot : int
        Number of resamples.
    confidence : float
        Coverage, in (0, 1).
    seed : int or sequence of int
        Seeds the resampling: the same seed gives the same interval.

    Returns
    -------
    (float, float)
        ``(nan, nan)`` when no resample has a correlation.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=500); y = x + rng.normal(size=500)
    >>> low, high = bootstrap_ci(x, y, seed=1)
    >>> bool(low < np.corrcoef(x, y)[0, 1] < high), bool(high - low < 0.15)
    (True, True)
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    if int(n_boot) != n_boot or n_boot < 1:
        raise ValueError(f"n_boot must be a positive integer, got {n_boot!r}")
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    if x.shape != y.shape or x.ndim != 1 or len(x) < _MIN_N:
        raise ValueError(f"x and y must be 1-D of the same length >= {_MIN_N}")
    r = _bootstrap_correlations(x, y, int(n_boot), np.random.default_rng(seed))
    if r.size == 0:
        return (np.nan, np.nan)
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(r, [tail, 1.0 - tail])
    return (float(low), float(high))


def _bootstrap_correlations(
    x: np.ndarray, y: np.ndarray, n_boot: int, rng: np.random.Generator
) -> np.ndarray:
    """Pearson's r of ``n_boot`` resamples of the pairs; those without one left out."""
    # Standardising first keeps the sums well conditioned for features like pixel counts.
    x = (x - x.mean()) / (x.std() or 1.0)
    y = (y - y.mean()) / (y.std() or 1.0)
    n = len(x)
    block = max(1, _BLOCK // n)
    rs = []
    for start in range(0, n_boot, block):
        idx = rng.integers(0, n, size=(min(block, n_boot - start), n))
        rs.append(_row_correlations(x[idx], y[idx]))
    r = np.concatenate(rs)
    return np.clip(r[np.isfinite(r)], -1.0, 1.0)


def _row_correlations(xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Pearson's r of each row pair of two (B, n) arrays (changed in place); NaN if flat."""
    xs -= xs.mean(axis=1, keepdims=True)
    ys -= ys.mean(axis=1, keepdims=True)
    num = np.einsum("ij,ij->i", xs, ys)
    den = np.sqrt(np.einsum("ij,ij->i", xs, xs) * np.einsum("ij,ij->i", ys, ys))
    with np.errstate(divide="ignore", invalid="ignore"):
        return num / den


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


def _one(
    x: pd.Series | None, y: pd.Series, confidence: float, n_boot: int, seed: Sequence[int]
) -> tuple[dict[str, float], str]:
    """Statistics of one feature against the target, and the reason when skipped."""
    empty = dict.fromkeys((*CORRELATION_COLUMNS[2:-1], *EXTRA_COLUMNS[:2]), np.nan)
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
    fisher_low, fisher_high = fisher_ci(r, n, confidence=confidence)
    low, high = bootstrap_ci(xs, ys, n_boot=n_boot, confidence=confidence, seed=seed)
    return {
        "n": n,
        "pearson_r": r,
        "pearson_p": float(pearson.pvalue),
        "spearman_rho": float(spearman.statistic),
        "spearman_p": float(spearman.pvalue),
        "ci_low": low,
        "ci_high": high,
        "fisher_low": fisher_low,
        "fisher_high": fisher_high,
    }, ""


def correlate(
    df: pd.DataFrame,
    *,
    target: str = TARGET,
    features: Sequence[str] | None = None,
    confidence: float = 0.95,
    n_boot: int = N_BOOT,
    seed: int = 0,
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
        Coverage of both intervals for Pearson's r.
    n_boot : int
        Bootstrap resamples per feature.
    seed : int
        Seeds the bootstrap. Each feature draws from its own stream, derived from
        ``seed`` and its name, so its interval does not depend on the other features.

    Returns
    -------
    DataFrame
        One row per feature, columns ``feature, n, pearson_r, pearson_p, spearman_rho,
        spearman_p, ci_low, ci_high, p_adjusted, fisher_low, fisher_high``. ``n`` counts
        rows where both values are finite. ``ci_low .. ci_high`` is the percentile
        bootstrap interval of r, ``fisher_low .. fisher_high`` Fisher's z interval.
        ``p_adjusted`` is Pearson's p adjusted by Benjamini-Hochberg over the features
        actually tested within the feature's ``family`` (``primary``: face count and
        mean red, green, blue; ``exploratory``: the rest); ``spearman_p_adjusted`` the
        same for Spearman's p. ``attrs["skipped"]`` maps skipped features to reasons.

    Examples
    --------
    >>> frame = pd.DataFrame({"score": [5.0, 6, 7, 8], "face_count": [0, 1, 1, 3]})
    >>> round(float(correlate(frame).loc[0, "pearson_r"]), 3)
    0.923
    """
    features = _features_to_test(df, target, features)
    y = _numeric(df[target])
    if y is None:
        raise ValueError(f"target column {target!r} is not numeric")
    rows, skipped = [], {}
    for feature in features:
        stream = (seed, zlib.crc32(str(feature).encode()))
        values, reason = _one(_numeric(df[feature]), y, confidence, n_boot, stream)
        rows.append({"feature": feature, **values})
        if reason:
            skipped[feature] = reason
    out = _adjusted(pd.DataFrame(rows, columns=[*CORRELATION_COLUMNS[:-1], *EXTRA_COLUMNS[:2]]))
    out.attrs["skipped"] = skipped
    return out


def _features_to_test(
    df: pd.DataFrame, target: str, features: Sequence[str] | None
) -> list[str]:
    """``features``, once checked, or ``face_count`` and every scalar feature of ``df``
    that the run computed (a feature its profile leaves out is empty on every row)."""
    if target not in df.columns:
        raise ValueError(f"target column {target!r} is not in the DataFrame")
    if features is None:
        return [c for c in POSTER_FEATURES
                if c in df.columns and (df.empty or df[c].notna().any())]
    missing = [f for f in features if f not in df.columns]
    if missing:
        raise ValueError(f"features not in the DataFrame: {missing}")
    return list(features)


def _adjusted(out: pd.DataFrame) -> pd.DataFrame:
    """The table with its ``family`` and the p-values adjusted within each family.

    ``p_adjusted`` (Pearson) and ``spearman_p_adjusted`` are Benjamini-Hochberg over the
    tested features of the same family: the course's questions (``primary``) apart
    from the ``exploratory`` rest.
    """
    out["n"] = out["n"].astype(np.int64)
    out["family"] = out["feature"].map(lambda f: family(str(f)))
    out["p_adjusted"] = adjust_within(out["pearson_p"], out["family"])
    out["spearman_p_adjusted"] = adjust_within(out["spearman_p"], out["family"])
    return out[[*CORRELATION_COLUMNS, *EXTRA_COLUMNS]]
