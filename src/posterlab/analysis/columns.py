"""The columns the analysis reads from an export-shaped DataFrame.

The feature names themselves have their one home in :mod:`posterlab.features_schema`.
"""

from __future__ import annotations

from posterlab.features_schema import SCALAR_FEATURES

__all__ = ["POSTER_FEATURES", "TARGET"]

TARGET = "score"

# face_count comes first wherever features are listed: it is the course's headline question.
POSTER_FEATURES: tuple[str, ...] = ("face_count", *SCALAR_FEATURES)
