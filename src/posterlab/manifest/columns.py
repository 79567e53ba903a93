"""Which cell of a manifest row holds which field: header names, case-insensitive, with aliases."""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from dataclasses import dataclass

from posterlab.errors import InputError

# Canonical field -> accepted header names, compared after header_key() folding.
COLUMN_ALIASES: dict[str, tuple[str, ...]] = {
    "id": ("imdbId", "imdb_id", "id"),
    "title": ("Title", "title"),
    "rating": ("IMDB Score", "score", "rating"),
    "genres": ("Genre", "genres"),
    "poster_file": ("poster_file", "poster_path"),
    "poster_url": ("Poster", "poster_url"),
}
FIELD_ORDER = ("id", "title", "rating", "genres", "poster_file", "poster_url")


@dataclass(frozen=True)
class Columns:
    """Where the fields of a manifest are: what :func:`map_columns` read from its header.

    ``names`` maps each canonical field found to its header name as written, ``indexes``
    to its column. ``cells`` picks the cells of :data:`FIELD_ORDER` from a row of at least
    ``width`` cells (the header's columns and one padding cell, which absent fields read).
    """

    names: dict[str, str]
    indexes: dict[str, int]
    width: int
    cells: Callable[[list[str]], tuple[str, ...]]


def header_key(name: str) -> str:
    """Fold a header name: ``IMDB Score``, ``imdb_score`` and ``imdbscore`` match.

    >>> header_key("IMDB Score") == header_key("imdb_score") == header_key("\\ufeffimdbscore")
    True
    """
    return re.sub(r"[\s_\-]+", "", name.replace("\ufeff", "")).lower()


def map_columns(header: list[str], *, path: str, poster_dir: bool) -> Columns | None:
    """The :class:`Columns` of a manifest with this header row, or ``None`` if it is blank.

    Parameters
    ----------
    header : list of str
        The first non-blank row; a blank one means an empty file (no rows, no complaint).
    path : str
        The manifest, for error messages.
    poster_dir : bool
        Whether posters come from a folder, so that no poster column is needed.

    Raises
    ------
    InputError
        ``manifest-missing-id-column``; ``manifest-missing-poster-column`` when there is
        no poster column and no ``poster_dir``.
    """
    if not any(cell.strip() for cell in header):
        return None
    names, indexes = _find_fields(header)
    if "id" not in indexes:
        raise InputError(
            f"manifest {path} has no id column (header: {', '.join(header)[:200]}); "
            f"name it one of {', '.join(COLUMN_ALIASES['id'])}",
            code="manifest-missing-id-column",
        )
    if not poster_dir and not {"poster_file", "poster_url"} & indexes.keys():
        accepted = COLUMN_ALIASES["poster_file"] + COLUMN_ALIASES["poster_url"]
        raise InputError(
            f"manifest {path} has no poster column; add one of "
            f"{', '.join(accepted)}, or give a poster folder (--poster-dir)",
            code="manifest-missing-poster-column",
        )
    # absent columns read the padding cell after the last column: always ""
    cells = operator.itemgetter(*(indexes.get(field, len(header)) for field in FIELD_ORDER))
    return Columns(names, indexes, len(header) + 1, cells)


def _find_fields(header: list[str]) -> tuple[dict[str, str], dict[str, int]]:
    """(field -> header name as written, field -> column) for the fields ``header`` has."""
    keys: dict[str, tuple[int, str]] = {}
    for index, name in enumerate(header):
        keys.setdefault(header_key(name), (index, name.strip()))
    names: dict[str, str] = {}
    indexes: dict[str, int] = {}
    for field, aliases in COLUMN_ALIASES.items():
        for alias in aliases:
            if header_key(alias) in keys:
                indexes[field], names[field] = keys[header_key(alias)]
                break
    return names, indexes
