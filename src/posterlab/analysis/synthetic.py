"""A synthetic export-shaped DataFrame whose rating is built from known features.

For tests, benchmarks and demos: the signs of the true effects are known, so an analysis
that cannot find them is broken.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from posterlab.features_schema import HISTOGRAM_FEATURES, SCALAR_FEATURES

__all__ = ["GENRES", "TRUE_EFFECTS", "synthetic_frame"]

GENRES = ("Action", "Comedy", "Drama", "Horror", "Romance", "Thriller", "Documentary")

# Rating points per standard deviation of each feature (per face for face_count); every
# other feature has no effect. A genre shifts the rating by its own amount.
TRUE_EFFECTS = {"colorfulness": 0.45, "face_count": -0.2, "entropy": 0.25, "contrast": -0.2}
_GENRE_SHIFT = {"Drama": 0.4, "Documentary": 0.7, "Horror": -0.6, "Comedy": -0.1}


def synthetic_frame(rows: int, *, seed: int = 0, histograms: bool = True) -> pd.DataFrame:
    """Posters with plausible feature ranges and a rating built from a few of them.

    The rating is ``6.3 + sum(TRUE_EFFECTS * z(feature)) + genre shifts + 0.35 *
    tanh(2 z(brightness)) * z(colorfulness) + noise(sd 0.6)``, clipped to [1, 10]; the
    interaction term is one a linear model cannot fit.

    Examples
    --------
    >>> frame = synthetic_frame(5, seed=1)
    >>> frame.shape[0], frame["score"].between(1, 10).all()
    (5, np.True_)
    """
    if int(rows) != rows or rows < 0:
        raise ValueError(f"rows must be a non-negative integer, got {rows!r}")
    rng = np.random.default_rng(seed)
    data: dict[str, object] = {"imdb_id": [f"tt{9_000_000 + i:07d}" for i in range(rows)]}
    for name in SCALAR_FEATURES:
        data[name] = rng.uniform(0.05, 0.95, size=rows)
    data["sift_keypoints"] = rng.poisson(300, size=rows).astype(np.float64)
    data["width"], data["height"] = np.full(rows, 182.0), np.full(rows, 268.0)
    data["aspect"] = data["width"] / data["height"]  # type: ignore[operator]
    data["face_count"] = rng.poisson(1.3, size=rows)
    frame = pd.DataFrame(data)

    def z(col: str) -> np.ndarray:
        values = frame[col].to_numpy(np.float64)
        if values.size == 0:
            return values
        return (values - values.mean()) / (values.std() or 1.0)

    picks = [rng.choice(len(GENRES), size=rng.integers(1, 4), replace=False) for _ in range(rows)]
    frame["genres"] = pd.Series(
        ["|".join(GENRES[g] for g in sorted(p)) for p in picks], index=frame.index, dtype=str
    )
    score = 6.3 + rng.normal(scale=0.6, size=rows)
    for name, effect in TRUE_EFFECTS.items():
        score += effect * (frame[name].to_numpy(np.float64) if name == "face_count" else z(name))
    score += 0.35 * np.tanh(2 * z("brightness")) * z("colorfulness")
    for genre, shift in _GENRE_SHIFT.items():
        score += shift * frame["genres"].str.contains(genre, regex=False).to_numpy()
    frame["score"] = np.clip(score, 1.0, 10.0).round(1)
    if histograms:
        for name, length in HISTOGRAM_FEATURES.items():
            counts = rng.dirichlet(np.ones(length), size=rows)
            frame[name] = list(counts)
    return frame
