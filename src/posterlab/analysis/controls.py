"""Each poster feature's slope on the rating with genre and release year held fixed.

For every feature, statsmodels' OLS fits ``rating ~ feature + genre indicators + year``
on the rows with all of them; the feature's slope is reported in rating points per unit
and per standard deviation, with its 95% interval, p-value and the partial correlation
``t / sqrt(t^2 + df_resid)`` (the correlation of rating and feature once both are freed
of the controls). Features fall in two families: the course's questions
(:data:`PRIMARY`) and everything else (exploratory); p-values are adjusted by
Benjamini-Hochberg within each family, so that the exploratory features cannot dilute
(or borrow from) the primary ones.

The year comes from a ``year`` column when there is one, else from the ``(YYYY)`` at
the end of the title (``"The Flyboys (2008)"``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from statsmodels.regression.linear_model import OLS
from statsmodels.stats.multitest import multipletests
from statsmodels.tools.tools import add_constant

from posterlab.analysis.columns import PRIMARY, TARGET, family
from posterlab.analysis.inputs import genre_block
from posterlab.manifest.fields import parse_year

__all__ = ["CONTROLS", "PRIMARY", "adjust_within", "controlled_slopes", "family",
           "parse_year", "with_year"]

CONTROLS = ("genre", "year")
_YEAR_COLUMNS = ("year", "release_year", "release")


def with_year(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with a numeric ``year``: from a year/release column, else from the title."""
    out = df.copy()
    for column in _YEAR_COLUMNS:
        if column in out.columns:
            years = pd.to_numeric(out[column].astype(str).str[:4], errors="coerce")
            if years.notna().any():
                out["year"] = years.astype(np.float64)
                return out
    titles = out["title"] if "title" in out.columns else pd.Series(None, index=out.index)
    out["year"] = titles.map(parse_year).astype(np.float64)
    return out


def adjust_within(p: pd.Series, families: pd.Series) -> pd.Series:
    """Benjamini-Hochberg adjusted ``p`` within each family; NaN stays NaN.

    Examples
    --------
    >>> adjust_within(pd.Series([0.01, 0.04, 0.03]), pd.Series(["a", "a", "b"])).tolist()
    [0.02, 0.04, 0.03]
    """
    out = pd.Series(np.nan, index=p.index)
    for _, members in families.groupby(families).groups.items():
        values = p.loc[members].dropna()
        if len(values):
            out.loc[values.index] = multipletests(values.to_numpy(), method="fdr_bh")[1]
    return out


def controlled_slopes(df: pd.DataFrame, features: Sequence[str], *,
                      controls: Sequence[str] = CONTROLS,
                      min_genre_rows: int = 10) -> list[dict[str, Any]]:  # fmt: skip
    """One row per feature: ``feature, n, slope, ci_low, ci_high, slope_per_sd, partial_r,
    p, p_adjusted, family, controls`` (the controls actually used).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> frame = pd.DataFrame({"face_count": rng.poisson(1, 300).astype(float),
    ...                       "genres": rng.choice(["Drama", "Comedy"], 300),
    ...                       "title": [f"T ({1990 + i % 20})" for i in range(300)]})
    >>> frame["score"] = 6 + 0.3 * frame["face_count"] + rng.normal(size=300)
    >>> row = controlled_slopes(frame, ["face_count"])[0]
    >>> row["controls"], bool(row["ci_low"] < 0.3 < row["ci_high"])
    (['genre', 'year'], True)
    """
    unknown = [c for c in controls if c not in CONTROLS]
    if unknown:
        raise ValueError(f"controls must be among {CONTROLS}, got {unknown}")
    frame = with_year(df) if "year" in controls else df
    block = _control_block(frame, controls, min_genre_rows)
    used = [c for c in controls if c in block.attrs["used"]]
    rows = [_one(frame, feature, block, used) for feature in features if feature in frame]
    table = pd.DataFrame(rows)
    if table.empty:
        return []
    table["p_adjusted"] = adjust_within(table["p"], table["family"])
    return table.to_dict("records")


def _control_block(frame: pd.DataFrame, controls: Sequence[str],
                   min_genre_rows: int) -> pd.DataFrame:  # fmt: skip
    parts, used = [], []
    if "genre" in controls and "genres" in frame.columns:
        genres = genre_block(frame["genres"], min_genre_rows)
        genres = genres.loc[:, genres.nunique() > 1]
        genres = _independent(genres)
        if genres.shape[1]:
            parts.append(genres)
            used.append("genre")
    if "year" in controls and frame["year"].notna().sum() >= 10:
        parts.append(frame[["year"]])
        used.append("year")
    block = pd.concat(parts, axis=1) if parts else pd.DataFrame(index=frame.index)
    block.attrs["used"] = used
    return block


def _independent(block: pd.DataFrame) -> pd.DataFrame:
    """The columns of ``block`` that, with an intercept, are linearly independent.

    When every film has exactly one genre the indicators sum to the intercept; the
    last such genre (the rarest kept) is then left out, as a reference level.
    """
    kept: list[str] = []
    basis = np.ones((len(block), 1))
    for column in block.columns:
        trial = np.column_stack([basis, block[column].to_numpy(np.float64)])
        if np.linalg.matrix_rank(trial) == trial.shape[1]:
            basis, kept = trial, [*kept, column]
    return block[kept]


def _one(frame: pd.DataFrame, feature: str, block: pd.DataFrame,
         used: list[str]) -> dict[str, Any]:  # fmt: skip
    x = pd.to_numeric(frame[feature], errors="coerce").astype(np.float64)
    y = pd.to_numeric(frame[TARGET], errors="coerce").astype(np.float64)
    data = pd.concat([y.rename("_y"), x.rename("_x"), block], axis=1).dropna()
    empty = dict.fromkeys(("slope", "ci_low", "ci_high", "slope_per_sd", "partial_r", "p"),
                          np.nan)  # fmt: skip
    base = {"feature": feature, "n": len(data), "family": family(feature), "controls": used}
    if len(data) < data.shape[1] + 3 or data["_x"].nunique() < 2:
        return {**base, **empty}
    design = add_constant(data.drop(columns="_y"), has_constant="add")
    fit = OLS(data["_y"], design).fit()
    if not np.isfinite(fit.bse["_x"]) or fit.bse["_x"] == 0:
        return {**base, **empty}
    low, high = fit.conf_int().loc["_x"]
    t = float(fit.tvalues["_x"])
    return {**base, "slope": float(fit.params["_x"]), "ci_low": float(low),
            "ci_high": float(high), "slope_per_sd": float(fit.params["_x"] * data["_x"].std()),
            "partial_r": t / np.sqrt(t * t + fit.df_resid), "p": float(fit.pvalues["_x"])}
