"""The columns the analysis reads from an export-shaped DataFrame.

The feature names themselves have their one home in :mod:`posterlab.features_schema`.
"""

from __future__ import annotations

from posterlab.features_schema import SCALAR_FEATURES

__all__ = ["OPTIONAL_FEATURES", "POSTER_FEATURES", "PRIMARY", "TARGET", "family"]

TARGET = "score"

# face_count comes first wherever features are listed: it is the course's headline question;
# prominent_faces (faces at least 1/10 of the poster's height) follows it.
POSTER_FEATURES: tuple[str, ...] = ("face_count", "prominent_faces", *SCALAR_FEATURES)

# The course's questions: one family for multiple testing; every other feature is
# exploratory and adjusted apart, so that 20 partly duplicate features cannot dilute them.
PRIMARY: tuple[str, ...] = ("face_count", "mean_r", "mean_g", "mean_b")
# Features a run may carry beyond the stored scalars; exploratory when present.
OPTIONAL_FEATURES: tuple[str, ...] = ()


def family(feature: str) -> str:
    """``"primary"`` for the course's questions, ``"exploratory"`` for the rest.

    Examples
    --------
    >>> family("face_count"), family("entropy")
    ('primary', 'exploratory')
    """
    return "primary" if feature in PRIMARY else "exploratory"
