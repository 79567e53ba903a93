"""Is the face-count result the detector's? The effect at several confidence thresholds.

A detector reports each face with a confidence score; the face count is the number of
detections above its threshold. Given every detection's score per poster, the count at
any other threshold costs nothing, and :func:`threshold_effects` gives the face-count
effect (rating points per face, :func:`posterlab.analysis.effects.slope_of`) at each
threshold, and for each face provider when posters were counted by several. An effect
that appears at one threshold only is the detector's, not the posters'.

Input: one sequence of scores per poster (empty for a poster without detections,
None for a poster whose detections are unknown: left out).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from posterlab.analysis.effects import slope_of

__all__ = ["THRESHOLDS", "counts_at", "threshold_effects"]

THRESHOLDS = (0.5, 0.6, 0.7, 0.8, 0.9)


def counts_at(scores: Sequence[Sequence[float] | None], threshold: float) -> np.ndarray:
    """Detections scoring at least ``threshold`` on each poster (NaN where unknown).

    Examples
    --------
    >>> counts_at([[0.95, 0.6], [], None, [0.7]], 0.7).tolist()
    [1.0, 0.0, nan, 1.0]
    """
    return np.array([np.nan if s is None else float(np.sum(np.asarray(s, float) >= threshold))
                     for s in scores])  # fmt: skip


def threshold_effects(scores: Sequence[Sequence[float] | None], ratings: Sequence[float], *,
                      thresholds: Sequence[float] = THRESHOLDS,
                      providers: Sequence[str] | None = None) -> list[dict[str, Any]]:  # fmt: skip
    """One row per (provider, threshold): ``provider, threshold, n, mean_faces,
    share_with_faces, slope, ci_low, ci_high, p``.

    ``providers`` names the provider of each poster (None: one provider, ``"all"``).

    Examples
    --------
    >>> rows = threshold_effects([[0.9], [0.9, 0.6], [], [0.9, 0.9, 0.55]],
    ...                          [6.0, 7.0, 5.0, 8.0], thresholds=[0.5, 0.8])
    >>> [(r["threshold"], r["mean_faces"]) for r in rows]
    [(0.5, 1.5), (0.8, 1.0)]
    """
    y = np.asarray(ratings, np.float64)
    if len(scores) != len(y):
        raise ValueError(f"scores has {len(scores)} posters but ratings {len(y)}")
    names = np.asarray(["all"] * len(y) if providers is None else list(providers), dtype=object)
    rows = []
    for provider in sorted(set(names.tolist())):
        pick = np.flatnonzero(names == provider)
        for threshold in thresholds:
            counts = counts_at([scores[int(i)] for i in pick], float(threshold))
            known = np.isfinite(counts)
            effect = slope_of(counts[known], y[pick][known])
            rows.append({"provider": provider, "threshold": float(threshold),
                         "mean_faces": float(counts[known].mean()) if known.any() else np.nan,
                         "share_with_faces": float(np.mean(counts[known] > 0))
                         if known.any() else np.nan, **effect})  # fmt: skip
    return rows
