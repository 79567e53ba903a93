"""The names of the stored poster features: one home for every list of them.

A leaf module (no imports beyond the standard library) so that the storage models, the
export, the imaging code and the analysis can all share it without pulling in numpy or
scikit-image. Changing a name here changes a database column and an export column: the
order is the order the export writes them.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Final

__all__ = ["DEFAULT_PROFILE", "HISTOGRAM_FEATURES", "PROFILES", "PROFILE_FEATURES",
           "SCALAR_FEATURES", "VECTOR_FEATURES"]

# One float column per name in the features table and the export, in this order.
SCALAR_FEATURES: Final[tuple[str, ...]] = (
    "mean_r", "mean_g", "mean_b", "mean_h", "mean_s", "mean_v",
    "std_r", "std_g", "std_b", "std_h", "std_s", "std_v",
    "brightness", "contrast", "colorfulness", "entropy", "edge_density", "sift_keypoints",
    "centre_x", "centre_y", "thirds", "width", "height", "aspect",
)  # fmt: skip

# Vector features and their lengths at the default PreprocessConfig
# (posterlab.imaging.vector_lengths gives them for any config). Read-only: one shared list.
VECTOR_FEATURES: Final = MappingProxyType({
    "grey_hist": 20,
    "rgb_hist": 48,
    "lbp_hist": 10,
    "dominant_colors": 20,  # 5 colours x (r, g, b, share), largest share first
    "hog": 1008,
})  # fmt: skip

# The vectors the analysis can spread over one model input per bin.
HISTOGRAM_FEATURES: Final = MappingProxyType(
    {name: VECTOR_FEATURES[name] for name in ("grey_hist", "rgb_hist")}
)

# Feature profiles: what a run computes. ``course`` is exactly what the course's case study
# uses (the face count, mean R, G, B, H, S, V and the 20-bin grey histogram); ``standard``
# is everything but the SIFT keypoint count (about half of the feature time, and the
# feature the analysis leans on least); ``full`` is every feature. A feature a profile does
# not compute is empty (NULL) in the database and the export. The profile is part of the
# feature version, so two profiles' rows never mix.
PROFILES: Final[tuple[str, ...]] = ("course", "standard", "full")
DEFAULT_PROFILE: Final = "full"
PROFILE_FEATURES: Final = MappingProxyType({
    "course": (("mean_r", "mean_g", "mean_b", "mean_h", "mean_s", "mean_v"), ("grey_hist",)),
    "standard": (tuple(n for n in SCALAR_FEATURES if n != "sift_keypoints"),
                 tuple(VECTOR_FEATURES)),
    "full": (SCALAR_FEATURES, tuple(VECTOR_FEATURES)),
})  # fmt: skip
