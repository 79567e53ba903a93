"""Where an analysis comes from: the ``provenance`` block of its JSON and report."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["PROVENANCE_KEYS", "provenance"]

PROVENANCE_KEYS = ("posterlab_version", "created_at", "run", "n", "feature_version",
                   "face_detector", "settings", "synthetic")  # fmt: skip


def provenance(*, posterlab_version: str, created_at: str, run: str | None = None,
               n: int = 0, feature_version: str | None = None,
               face_detector: Mapping[str, Any] | str | None = None,
               settings: Mapping[str, Any] | None = None,
               synthetic: bool = False) -> dict[str, Any]:  # fmt: skip
    """The provenance block: every key of :data:`PROVENANCE_KEYS`, plain JSON.

    The caller supplies the version and the time (this module does no I/O and reads no
    clock); ``settings`` are the run's and the analysis's settings; ``synthetic`` is true
    for made-up data (the demo), and every report of it then says so.

    Examples
    --------
    >>> provenance(posterlab_version="0.1.0", created_at="2026-01-01T00:00:00Z")["synthetic"]
    False
    """
    return {"posterlab_version": posterlab_version, "created_at": created_at, "run": run,
            "n": int(n), "feature_version": feature_version,
            "face_detector": dict(face_detector) if isinstance(face_detector, Mapping)
            else face_detector, "settings": dict(settings or {}),
            "synthetic": bool(synthetic)}  # fmt: skip
