"""From an export-shaped DataFrame to the numeric model inputs, and their scaling.

Inputs are (1) ``face_count`` and the scalar image features, (2) one 0/1 indicator per
genre that is common enough, (3) the grey and RGB histograms spread over one column per
bin, when those columns are present. None of this looks at the rating, so building the
matrix on all rows before the train/test split leaks nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from posterlab.analysis.columns import POSTER_FEATURES
from posterlab.features_schema import HISTOGRAM_FEATURES

__all__ = ["Scaler", "design_matrix", "fit_scaler", "genre_block"]


def _histogram_block(cells: pd.Series, name: str, length: int) -> pd.DataFrame:
    """One column per bin; a cell that is not a finite vector of ``length`` is all NaN."""
    block = np.full((len(cells), length), np.nan)
    for i, cell in enumerate(cells):
        vector = np.asarray(cell, dtype=np.float64) if cell is not None else None
        if vector is not None and vector.shape == (length,):
            block[i] = vector
    return pd.DataFrame(block, index=cells.index, columns=[f"{name}_{k}" for k in range(length)])


def genre_block(genres: pd.Series, min_rows: int) -> pd.DataFrame:
    """One 0/1 column ``genre_<name>`` per genre carried by at least ``min_rows`` rows."""
    # str.get_dummies handles the '|' separator; missing genres give an all-zero row.
    dummies = genres.fillna("").astype(str).str.strip().str.get_dummies(sep="|")
    dummies = dummies.loc[:, dummies.sum() >= min_rows]
    return dummies.astype(np.float64).add_prefix("genre_")


def design_matrix(
    df: pd.DataFrame,
    *,
    histograms: bool = True,
    genres: bool = True,
    min_genre_rows: int = 10,
    max_missing: float = 0.5,
) -> pd.DataFrame:
    """Numeric model inputs, one named column per input, indexed like ``df``.

    Parameters
    ----------
    df : DataFrame
        Export-shaped frame; absent optional columns are simply not used.
    histograms, genres : bool
        Whether to add the histogram bins and the genre indicators.
    min_genre_rows : int
        A genre becomes an indicator only if at least this many rows carry it; rarer
        genres would be fitted to a handful of films.
    max_missing : float
        Columns with a larger share of missing values are dropped (a feature a run did
        not compute); constant columns are dropped too. Remaining NaNs stay, for the
        caller to drop rows.

    Examples
    --------
    >>> frame = pd.DataFrame({"face_count": [0, 2, 1], "brightness": [0.2, 0.5, 0.4],
    ...                       "genres": ["Drama", "Drama|Comedy", "Comedy"]})
    >>> list(design_matrix(frame, min_genre_rows=2).columns)
    ['face_count', 'brightness', 'genre_Comedy', 'genre_Drama']
    """
    if not 0.0 <= max_missing <= 1.0:
        raise ValueError(f"max_missing must be in [0, 1], got {max_missing!r}")
    if min_genre_rows < 1:
        raise ValueError(f"min_genre_rows must be at least 1, got {min_genre_rows!r}")
    scalar = [c for c in POSTER_FEATURES if c in df.columns]
    blocks = [df[scalar].apply(pd.to_numeric, errors="coerce").astype(np.float64)]
    if genres and "genres" in df.columns:
        blocks.append(genre_block(df["genres"], min_genre_rows))
    if histograms:
        for name, length in HISTOGRAM_FEATURES.items():
            if name in df.columns:
                blocks.append(_histogram_block(df[name], name, length))
    X = pd.concat(blocks, axis=1)
    X = X.replace([np.inf, -np.inf], np.nan)
    keep = (X.isna().mean() <= max_missing) & (X.nunique(dropna=True) > 1)
    return X.loc[:, keep]


@dataclass(frozen=True)
class Scaler:
    """Affine per-column scaling ``(X - offset) / scale``, fitted on training rows only."""

    offset: np.ndarray
    scale: np.ndarray

    def transform(self, X: np.ndarray) -> np.ndarray:
        """Scale ``X``; columns must match those the scaler was fitted on."""
        return (np.asarray(X, dtype=np.float64) - self.offset) / self.scale

    def inverse_transform(self, X: np.ndarray) -> np.ndarray:
        """Undo :meth:`transform`."""
        return np.asarray(X, dtype=np.float64) * self.scale + self.offset


def fit_scaler(X: np.ndarray, method: str = "standard") -> Scaler:
    """Fit a :class:`Scaler` column by column.

    Parameters
    ----------
    X : ndarray, shape (n,) or (n, p)
    method : {"standard", "minmax"}
        ``"standard"``: zero mean, unit standard deviation. ``"minmax"``: the course's
        scaling of every input to [0, 1]. A constant column is only shifted (scale 1).

    Examples
    --------
    >>> fit_scaler(np.array([[1.0], [3.0]]), "minmax").transform([[2.0]])
    array([[0.5]])
    """
    X = np.asarray(X, dtype=np.float64)
    if X.size == 0 or not np.all(np.isfinite(X)):
        raise ValueError("X must be non-empty and finite")
    if method == "standard":
        offset, scale = X.mean(axis=0), X.std(axis=0)
    elif method == "minmax":
        offset, scale = X.min(axis=0), np.ptp(X, axis=0)
    else:
        raise ValueError(f"method must be 'standard' or 'minmax', got {method!r}")
    return Scaler(offset, np.where(scale > 0, scale, 1.0))
