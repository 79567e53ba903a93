"""The fields of one manifest row, checked: id, rating, poster URL or path inside a folder.

Each function returns the normalised value or raises :class:`RowProblem`, which the
reader turns into the row's ``error``: a bad row is a failed poster, not a failed file.
"""

from __future__ import annotations

import os
import re

from posterlab.errors import InputError
from posterlab.text import has_controls, visible

MAX_TITLE_CHARS = 500  # the longest real title is ~200 chars; longer ones are cut, not refused
MAX_ID_CHARS = 20  # IMDB ids have 7-8 digits; 20 leaves room for zero padding
MAX_URL_CHARS = 4096  # poster URLs are ~200 chars; many servers refuse anything over 8 KiB
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".gif", ".bmp", ".webp")
_ID_RE = re.compile(r"(?:tt)?([0-9]+)", re.IGNORECASE)


class RowProblem(Exception):
    """One field of one row is unusable; ``reason`` (``code: message``) becomes its error."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.reason = f"{code}: {message}"


def parse_id(raw: str) -> str:
    """The normalised IMDB id of ``raw``: digits, no ``tt``, no leading zeros.

    >>> parse_id("tt0114709")
    '114709'
    """
    if not raw:
        raise RowProblem("manifest-missing-id",
                         "the row has no imdb id; fill the id column (e.g. 114709 or tt0114709)")
    if len(raw) > MAX_ID_CHARS:
        raise RowProblem("manifest-bad-id",
                         f"id {raw[:MAX_ID_CHARS]!r}... is longer than {MAX_ID_CHARS} characters")
    match = _ID_RE.fullmatch(raw)
    if match is None or int(match.group(1)) == 0:
        raise RowProblem("manifest-bad-id",
                         f"id {raw!r} is not an IMDB id; write digits, optionally after 'tt'")
    return str(int(match.group(1)))


def parse_rating(raw: str) -> float | None:
    """The rating in ``raw`` (0..10), or ``None`` when the cell is empty."""
    if not raw:
        return None  # no score: the poster is still analysed, the statistics drop it
    try:
        rating = float(raw)
    except ValueError:
        raise RowProblem("manifest-bad-rating",
                         f"rating {raw[:40]!r} is not a number; write e.g. 7.5") from None
    if not 0.0 <= rating <= 10.0:  # also refuses nan and inf
        raise RowProblem("manifest-bad-rating", f"rating {raw[:40]!r} is outside 0..10")
    return rating


def check_url(url: str) -> str:
    """``url`` if it is an http(s) URL of a sane length."""
    if len(url) > MAX_URL_CHARS:
        raise RowProblem("manifest-bad-url",
                         f"poster URL is longer than {MAX_URL_CHARS} characters")
    if has_controls(url):
        raise RowProblem("manifest-bad-url",
                         f"poster URL {visible(url[:80])!r} contains control characters "
                         "(NUL, escapes, line breaks); write the URL as plain text")
    if not url.lower().startswith(("http://", "https://")):
        raise RowProblem("manifest-bad-url",
                         f"poster URL {url[:80]!r} is not http(s); only web URLs are fetched")
    return url


def resolve_inside(base: str, relative: str) -> str:
    """Resolve ``relative`` under the real folder ``base``; refuse anything that leaves it."""
    if has_controls(relative):
        raise RowProblem("manifest-bad-path",
                         f"poster path {visible(relative[:200])!r} contains control characters "
                         "(NUL, escapes, line breaks); rename the file")
    if os.path.isabs(relative) or os.path.splitdrive(relative)[0]:
        raise RowProblem("manifest-path-escape",
                         f"poster path {relative[:200]!r} is absolute; "
                         "write it relative to the manifest's folder")
    try:
        real = os.path.realpath(os.path.join(base, relative))
    except (ValueError, OSError) as exc:  # NUL byte, name too long, symlink loop
        raise RowProblem("manifest-bad-path",
                         f"poster path {relative[:200]!r} is unusable ({exc})") from None
    if os.path.commonpath([base, real]) != base:
        raise RowProblem("manifest-path-escape",
                         f"poster path {relative[:200]!r} leads out of {base}; "
                         "posters must be inside the manifest's folder")
    return real


def find_in_dir(folder: str, imdb_id: str, raw_id: str) -> str:
    """The poster ``folder/<id>.<ext>``: normalised id first, then the id as written."""
    stems = dict.fromkeys(stem for stem in (imdb_id, raw_id) if stem)
    for stem in stems:
        for extension in IMAGE_EXTENSIONS:
            for name in (stem + extension, stem + extension.upper()):
                if os.path.isfile(os.path.join(folder, name)):
                    return resolve_inside(folder, name)
    raise RowProblem("manifest-no-poster",
                     f"no poster for id {raw_id!r} in {folder} "
                     f"(looked for {imdb_id}{{{','.join(IMAGE_EXTENSIONS)}}})")


def existing_dir(path: str | os.PathLike[str]) -> str:
    """The real path of the poster folder ``path``; ``InputError`` if it is not a folder."""
    folder = os.path.realpath(os.fspath(path))
    if not os.path.isdir(folder):
        raise InputError(f"poster folder {os.fspath(path)} does not exist or is not a folder",
                         code="manifest-poster-dir-not-found")
    return folder


_YEAR = re.compile(r"\((1[89]\d\d|20\d\d)\)")


def parse_year(title: object) -> float:
    """The release year: the last ``(YYYY)`` (1800-2099) in a title, or NaN.

    Examples
    --------
    >>> parse_year("The Flyboys (2008)"), parse_year("1984 (1956)"), parse_year(None)
    (2008.0, 1956.0, nan)
    """
    found = _YEAR.findall(title) if isinstance(title, str) else []
    return float(found[-1]) if found else float("nan")
