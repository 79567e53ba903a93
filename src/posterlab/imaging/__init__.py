"""Pure imaging: decode poster bytes, preprocess them, extract features.

No I/O beyond the bytes handed in, no globals, nothing created at import time.

>>> from posterlab.imaging import PreprocessConfig, analyze_bytes, feature_version
"""

from typing import TYPE_CHECKING

import lazy_loader

from posterlab.features_schema import SCALAR_FEATURES, VECTOR_FEATURES

if TYPE_CHECKING:  # the names below, for type checkers; loaded on first use
    from posterlab.imaging.decode import decode_image
    from posterlab.imaging.features import (
        Features,
        analyze_bytes,
        extract_features,
        vector_lengths,
    )
    from posterlab.imaging.preprocess import (
        FEATURES_SCHEMA,
        Canonical,
        PreprocessConfig,
        PreprocessStep,
        feature_version,
        preprocess,
    )

__all__ = [
    "FEATURES_SCHEMA",
    "SCALAR_FEATURES",
    "VECTOR_FEATURES",
    "Canonical",
    "Features",
    "PreprocessConfig",
    "PreprocessStep",
    "analyze_bytes",
    "decode_image",
    "extract_features",
    "feature_version",
    "preprocess",
    "vector_lengths",
]

# submodules load on first use: a command that needs none of the heavy ones
# (scikit-image, pandas, the analysis) starts without importing them
__getattr__, __dir__, _ = lazy_loader.attach(__name__, submod_attrs={
    "decode": ["decode_image"],
    "features": ["Features", "analyze_bytes", "extract_features", "vector_lengths"],
    "preprocess": ["Canonical", "FEATURES_SCHEMA", "PreprocessConfig", "PreprocessStep",
                  "feature_version", "preprocess"],
})
