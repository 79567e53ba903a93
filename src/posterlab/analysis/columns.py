"""The columns the analysis reads from an export-shaped DataFrame.

The feature names themselves have their one home in :mod:`posterlab.features_schema`.
"""

from __future__ import annotations

from posterlab.features_schema import SCALAR_FEATURES

__all__ = ["POSTER_FEATURES", "TARGET"]

TARGET = "score"

# face_count comes first wherever features are listed: it is the course's headline question;
# prominent_faces (faces at least 1/10 of the poster's height) follows it.
POSTER_FEATURES: tuple[str, ...] = ("face_count", "prominent_faces", *SCALAR_FEATURES)
