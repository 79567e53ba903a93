"""Grouped means of the rating: by face count and by mean colour, as the course tabled them.

Each group carries its size, mean, median, standard deviation, standard error and a
Student-t confidence interval for the mean (``mean -+ t(n - 1) * sem``; NaN below two
rows). Both tables can be restricted to the films of one genre.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from posterlab.analysis.columns import TARGET
from posterlab.analysis.correlations import _numeric

__all__ = [
    "COLOR_CHANNELS",
    "FACE_BUCKETS",
    "GROUP_COLUMNS",
    "color_groups",
    "common_genres",
    "face_buckets",
    "genre_mask",
]

FACE_BUCKETS = ("0", "1", "2", "3", "4", "5+")
GROUP_COLUMNS = ("n", "mean", "median", "std", "sem", "ci_low", "ci_high")
COLOR_CHANNELS = {"r": "mean_r", "g": "mean_g", "b": "mean_b"}


def genre_mask(df: pd.DataFrame, genre: str) -> pd.Series:
    """Rows whose ``|``-separated ``genres`` include ``genre`` (exactly, case-sensitive).

    Examples
    --------
    >>> genre_mask(pd.DataFrame({"genres": ["Drama|War", "Dramedy", None]}), "Drama").tolist()
    [True, False, False]
    """
    if "genres" not in df.columns:
        raise ValueError("genre needs a 'genres' column in the DataFrame")
    split = df["genres"].fillna("").astype(str).str.split("|")
    return split.map(lambda names: genre in {n.strip() for n in names}).astype(bool)


def common_genres(df: pd.DataFrame, *, min_rows: int = 30, limit: int = 6) -> list[str]:
    """The ``limit`` genres carried by most rows, each by at least ``min_rows``.

    Examples
    --------
    >>> common_genres(pd.DataFrame({"genres": ["A|B", "B", "B|C", "A"]}), min_rows=2)
    ['B', 'A']
    """
    if "genres" not in df.columns:
        return []
    counts = df["genres"].fillna("").astype(str).str.get_dummies(sep="|").sum()
    counts = counts[(counts >= min_rows) & (counts.index.str.strip() != "")]
    # Most rows first; equal counts in name order, so the choice does not depend on rows' order.
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return [str(name) for name, _ in ranked[:limit]]


def _summarise(y: pd.Series, labels: pd.Series | pd.Categorical, confidence: float) -> pd.DataFrame:
    grouped = y.groupby(labels, observed=False)
    out = pd.DataFrame(
        {
            "n": grouped.size(),
            "mean": grouped.mean(),
            "median": grouped.median(),
            "std": grouped.std(),
            "sem": grouped.sem(),
        }
    )
    out["n"] = out["n"].fillna(0).astype(np.int64)
    dof = (out["n"] - 1).where(out["n"] >= 2)
    half = stats.t.ppf(0.5 + confidence / 2.0, dof.to_numpy(np.float64)) * out["sem"]
    out["ci_low"], out["ci_high"] = out["mean"] - half, out["mean"] + half
    return out


def _pair(
    df: pd.DataFrame, column: str, target: str, genre: str | None, confidence: float
) -> tuple[pd.Series, pd.Series]:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    for name, col in (("target", target), ("column", column)):
        if col not in df.columns:
            raise ValueError(f"{name} column {col!r} is not in the DataFrame")
    if genre is not None:
        df = df.loc[genre_mask(df, genre)]
    x, y = _numeric(df[column]), _numeric(df[target])
    if x is None or y is None:
        raise ValueError(f"columns {column!r} and {target!r} must be numeric")
    usable = np.isfinite(x) & np.isfinite(y) & (x >= 0)
    return x[usable], y[usable]


def face_buckets(
    df: pd.DataFrame,
    *,
    target: str = TARGET,
    column: str = "face_count",
    confidence: float = 0.95,
    genre: str | None = None,
    min_n: int = 1,
    scale: tuple[float, float] | None = None,
) -> pd.DataFrame:
    """Rating by number of faces on the poster, in buckets 0, 1, 2, 3, 4, 5+.

    With ``min_n`` above 1 the top buckets are merged (``3+``, ``2+``, ...) until the
    open-ended one holds at least ``min_n`` posters; a bucket still below ``min_n`` keeps
    its n and mean but no interval. ``scale`` clips the intervals to the rating's range.

    Parameters
    ----------
    df : DataFrame
    target, column : str
        The rating and the face-count columns.
    confidence : float
        Coverage of the t-interval ``ci_low .. ci_high`` of each bucket's mean.
    genre : str, optional
        Only the films of this genre.

    Returns
    -------
    DataFrame
        Columns ``bucket, n, mean, median, std, sem, ci_low, ci_high``; one row per
        bucket, empty buckets included with ``n = 0`` and NaN statistics.

    Examples
    --------
    >>> frame = pd.DataFrame({"score": [6.0, 7.0, 8.0], "face_count": [0, 0, 5]})
    >>> face_buckets(frame)[["bucket", "n", "mean"]].to_dict("list")
    {'bucket': ['0', '1', '2', '3', '4', '5+'], 'n': [2, 0, 0, 0, 0, 1], \
'mean': [6.5, nan, nan, nan, nan, 8.0]}
    """
    faces, y = _pair(df, column, target, genre, confidence)
    top = len(FACE_BUCKETS) - 1
    while top > 1 and min_n > 1 and int((faces >= top).sum()) < min_n:
        top -= 1
    names = [*FACE_BUCKETS[:top], f"{top}+"]
    codes = faces.astype(np.int64).clip(upper=top).to_numpy()
    labels = pd.Categorical.from_codes(codes, categories=names)
    out = _summarise(y, labels, confidence).reindex(names)
    out = out.rename_axis("bucket").reset_index()
    out["bucket"] = out["bucket"].astype(str)
    out["n"] = out["n"].fillna(0).astype(np.int64)
    return _trusted(out, min_n, scale)


def _trusted(out: pd.DataFrame, min_n: int, scale: tuple[float, float] | None) -> pd.DataFrame:
    """No interval below ``min_n`` rows; intervals clipped to ``scale`` when given."""
    small = out["n"] < min_n
    out.loc[small, ["ci_low", "ci_high"]] = np.nan
    if scale is not None:
        out["ci_low"] = out["ci_low"].clip(lower=scale[0])
        out["ci_high"] = out["ci_high"].clip(upper=scale[1])
    return out


def color_groups(
    df: pd.DataFrame,
    *,
    target: str = TARGET,
    step: float = 0.05,
    confidence: float = 0.95,
    genre: str | None = None,
    min_n: int = 1,
    scale: tuple[float, float] | None = None,
) -> pd.DataFrame:
    """Rating by mean red, green and blue of the poster, each rounded to ``step``.

    Colour is on the features' own scale everywhere, 0 (none) to 1 (full channel): the
    features ``mean_r``, ``mean_g``, ``mean_b`` are rounded to the nearest multiple of
    ``step`` (halves up), so a poster of mean red 0.51 falls in level 0.5. Levels with
    fewer than ``min_n`` posters are left out (their number is in
    ``attrs["left_out"]``); ``scale`` clips the intervals to the rating's range.

    Parameters
    ----------
    df : DataFrame
    target : str
    step : float
        Width of a level on the 0-1 scale.
    confidence : float
        Coverage of the t-interval of each group's mean.
    genre : str, optional
        Only the films of this genre.

    Returns
    -------
    DataFrame
        Columns ``channel`` (``r``, ``g``, ``b``), ``level`` (int), then ``n, mean, median,
        std, sem, ci_low, ci_high``; one row per level that occurs, by channel then level.
        Channels whose column is absent are left out.

    Examples
    --------
    >>> frame = pd.DataFrame({"score": [6.0, 8.0, 7.0], "mean_r": [0.5, 0.51, 0.1]})
    >>> color_groups(frame)[["channel", "level", "n", "mean"]].to_dict("list")
    {'channel': ['r', 'r'], 'level': [0.1, 0.5], 'n': [1, 2], 'mean': [7.0, 7.0]}
    """
    if not 0 < step <= 1:
        raise ValueError(f"step must be in (0, 1] (colour is on 0-1), got {step!r}")
    parts = [_channel_levels(df, channel, column, target, step, genre, confidence)
             for channel, column in COLOR_CHANNELS.items() if column in df.columns]  # fmt: skip
    if not parts:
        return pd.DataFrame(columns=["channel", "level", *GROUP_COLUMNS])
    out = pd.concat(parts, ignore_index=True)
    kept = _trusted(out.loc[out["n"] >= min_n].reset_index(drop=True), min_n, scale)
    kept.attrs["left_out"] = int((out["n"] < min_n).sum())
    return kept


def _channel_levels(
    df: pd.DataFrame, channel: str, column: str, target: str, step: float, genre: str | None,
    confidence: float,
) -> pd.DataFrame:  # fmt: skip
    """One channel's rows of :func:`color_groups`: its levels and their rating statistics."""
    values, y = _pair(df, column, target, genre, confidence)
    levels = np.round(np.floor(values.to_numpy() / step + 0.5) * step, 6)
    table = _summarise(y, pd.Series(levels, index=y.index), confidence)
    table = table.rename_axis("level").reset_index()
    table.insert(0, "channel", channel)
    return table
