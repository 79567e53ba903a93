"""posterlab: what in a movie poster goes with how well the movie is rated."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
