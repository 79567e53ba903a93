"""The names of the stored poster features: one home for every list of them.

A leaf module (no imports beyond the standard library) so that the storage models, the
export, the imaging code and the analysis can all share it without pulling in numpy or
scikit-image. Changing a name here changes a database column and an export column: the
order is the order the export writes them.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Final

__all__ = ["HISTOGRAM_FEATURES", "SCALAR_FEATURES", "VECTOR_FEATURES"]

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
