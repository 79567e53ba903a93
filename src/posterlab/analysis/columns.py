"""Names of the columns the analysis reads from an export-shaped DataFrame."""

from __future__ import annotations

__all__ = ["HISTOGRAM_COLUMNS", "SCALAR_FEATURES", "TARGET"]

TARGET = "score"

# The scalar image features, in the order the export writes them; face_count comes first
# wherever features are listed because it is the course's headline question.
SCALAR_FEATURES: tuple[str, ...] = (
    "mean_r", "mean_g", "mean_b", "mean_h", "mean_s", "mean_v",
    "std_r", "std_g", "std_b", "std_h", "std_s", "std_v",
    "brightness", "contrast", "colorfulness", "entropy", "edge_density", "sift_keypoints",
    "centre_x", "centre_y", "thirds", "width", "height", "aspect",
)  # fmt: skip

# Optional vector columns: each cell a 1-D array of this length.
HISTOGRAM_COLUMNS: dict[str, int] = {"grey_hist": 20, "rgb_hist": 48}
