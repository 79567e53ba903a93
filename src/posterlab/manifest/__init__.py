"""Reading manifests: one movie a row, streamed from a CSV file into :class:`PosterRef` records.

A manifest is a CSV file (utf-8, utf-8 with BOM, or latin-1) whose header names the
columns, case-insensitively, with the aliases of :data:`COLUMN_ALIASES`; other columns are
ignored. Posters are ``poster_file``/``poster_path`` (relative to the manifest's folder)
or ``Poster``/``poster_url`` (http(s)); the local file wins when a row has both. The
Kaggle ``MovieGenre.csv`` and the shared posters' ``index.csv`` are manifests as they are.

Reading streams in constant memory (no row is kept; a line is capped at
:data:`MAX_LINE_BYTES`, a field at the csv module's default limit, which we leave alone
because it is process-wide). Only whole-file problems raise
:class:`~posterlab.errors.InputError`; a bad row comes out as a :class:`PosterRef` with
``error`` set, so that every row ends as a poster ``done`` or ``failed``.

The rooms: :mod:`~posterlab.manifest.lines` (bytes to lines, encodings),
:mod:`~posterlab.manifest.columns` (header names and aliases),
:mod:`~posterlab.manifest.fields` (checking one row's fields) and
:mod:`~posterlab.manifest.reader` (the streaming reader and its records).
"""

from __future__ import annotations

from posterlab.manifest.columns import COLUMN_ALIASES
from posterlab.manifest.fields import (
    IMAGE_EXTENSIONS,
    MAX_ID_CHARS,
    MAX_TITLE_CHARS,
    MAX_URL_CHARS,
)
from posterlab.manifest.lines import MAX_LINE_BYTES, SNIFF_BYTES
from posterlab.manifest.reader import (
    ManifestReader,
    PosterRef,
    count_rows,
    duplicate_ids,
    read_manifest,
)

__all__ = [
    "COLUMN_ALIASES",
    "IMAGE_EXTENSIONS",
    "MAX_ID_CHARS",
    "MAX_LINE_BYTES",
    "MAX_TITLE_CHARS",
    "MAX_URL_CHARS",
    "SNIFF_BYTES",
    "ManifestReader",
    "PosterRef",
    "count_rows",
    "duplicate_ids",
    "read_manifest",
]
