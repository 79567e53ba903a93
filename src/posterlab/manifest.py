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
"""

from __future__ import annotations

import codecs
import csv
import operator
import os
import re
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

from posterlab.errors import InputError

SNIFF_BYTES = 1 << 20  # the encoding is decided on the first MiB: ~2,500 MovieGenre rows
MAX_LINE_BYTES = 1 << 20  # a real row is ~250 bytes; a longer line is garbage, not a movie
MAX_TITLE_CHARS = 500  # the longest real title is ~200 chars; longer ones are cut, not refused
MAX_ID_CHARS = 20  # IMDB ids have 7-8 digits; 20 leaves room for zero padding
MAX_URL_CHARS = 4096  # poster URLs are ~200 chars; many servers refuse anything over 8 KiB
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".gif", ".bmp", ".webp")

# Canonical field -> accepted header names, compared after _header_key() folding.
COLUMN_ALIASES: dict[str, tuple[str, ...]] = {
    "id": ("imdbId", "imdb_id", "id"),
    "title": ("Title", "title"),
    "rating": ("IMDB Score", "score", "rating"),
    "genres": ("Genre", "genres"),
    "poster_file": ("poster_file", "poster_path"),
    "poster_url": ("Poster", "poster_url"),
}

_FIELD_ORDER = ("id", "title", "rating", "genres", "poster_file", "poster_url")
_ID_RE = re.compile(r"(?:tt)?([0-9]+)", re.IGNORECASE)
_BOM_UTF8 = codecs.BOM_UTF8
_BOMS_UTF16 = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)


@dataclass(frozen=True)
class PosterRef:
    """One manifest row, checked and normalised; what the producer queues.

    ``imdb_id`` is the normalised id (digits, no ``tt``, no leading zeros), or ``None``
    when the row's id is missing or invalid: the store then keys that failed row by
    ``(run, row)``, the only identity such a row has. ``source`` is an absolute local
    path or an http(s) URL. ``error`` is ``"code: message"`` when the row cannot be
    processed; the other fields keep whatever could be read, for the failure listing.
    """

    row: int  # 1-based record number in the file; header and blank rows not counted
    imdb_id: str | None
    title: str | None
    rating: float | None
    genres: tuple[str, ...]
    source: str | None
    error: str | None = None

    @property
    def ok(self) -> bool:
        """True when the row can be processed (``error`` is ``None``)."""
        return self.error is None


class _RowProblem(Exception):
    """One field of one row is unusable; becomes ``PosterRef.error``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.reason = f"{code}: {message}"


class _LineTooLong(Exception):
    """Raised through csv.reader by _Lines; the reader starts afresh on the next line."""


class ManifestReader(Iterator[PosterRef]):
    """An iterator of :class:`PosterRef` over a manifest file; see :func:`read_manifest`.

    Attributes: ``path``, ``encoding`` (``utf-8``, ``utf-8-sig`` or ``latin-1``),
    ``columns`` (canonical field -> header name as written), ``rows_read`` (rows yielded
    so far: 0 after a full pass means the manifest has no data rows), ``rows_failed``
    (rows yielded with an ``error``) and ``latin1_lines`` (lines of a utf-8 file that were
    not utf-8 and were read as latin-1).
    """

    _width: int  # header columns + 1 padding cell; both set when the header is read
    _fields: Callable[[list[str]], tuple[str, ...]]  # cells -> the cells of _FIELD_ORDER

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        poster_dir: str | os.PathLike[str] | None = None,
        limit: int | None = None,
    ) -> None:
        if limit is not None and limit < 0:
            raise ValueError(f"limit must be None or >= 0, got {limit}")
        self.path = os.path.abspath(os.fspath(path))
        if not os.path.isfile(self.path):
            raise InputError(f"manifest {self.path} does not exist or is not a file; "
                             "check the path", code="manifest-not-found")
        self.limit = limit
        self.poster_dir = _existing_dir(poster_dir) if poster_dir is not None else None
        self._base = os.path.realpath(os.path.dirname(self.path))
        self.rows_read = 0
        self.rows_failed = 0
        self.latin1_lines = 0
        self.columns: dict[str, str] = {}
        self._indexes: dict[str, int] = {}
        self.encoding, self._data_offset = self._read_header()
        self._rows = self._iterate()

    def __next__(self) -> PosterRef:
        return next(self._rows)

    def close(self) -> None:
        """Stop reading and close the file (also done when the rows run out)."""
        self._rows.close()

    def __enter__(self) -> ManifestReader:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- header ---------------------------------------------------------------------

    def _read_header(self) -> tuple[str, int]:
        """Decide the encoding, map the columns; return (encoding, offset of row 1).

        The file is closed again: rows are read by a generator that owns its handle, so
        an abandoned reader never leaks an open file.
        """
        with open(self.path, "rb") as handle:
            encoding = _sniff_encoding(handle.read(SNIFF_BYTES), self.path)
            handle.seek(len(_BOM_UTF8) if encoding == "utf-8-sig" else 0)
            lines = _Lines(handle, encoding)
            header: list[str] = []
            try:
                for header in csv.reader(lines):
                    if any(cell.strip() for cell in header):
                        break
            except (csv.Error, _LineTooLong) as exc:
                raise InputError(f"the header of manifest {self.path} cannot be read as CSV "
                                 f"({exc})", code="manifest-bad-header") from None
            self._map_columns(header)
            return encoding, lines.offset

    def _map_columns(self, header: list[str]) -> None:
        if not any(cell.strip() for cell in header):
            return  # empty file: no header, no rows, nothing to complain about
        keys: dict[str, tuple[int, str]] = {}
        for index, name in enumerate(header):
            keys.setdefault(_header_key(name), (index, name.strip()))
        for field, aliases in COLUMN_ALIASES.items():
            for alias in aliases:
                if _header_key(alias) in keys:
                    self._indexes[field], self.columns[field] = keys[_header_key(alias)]
                    break
        # absent columns read the padding cell after the last column: always ""
        self._width = len(header) + 1
        self._fields = operator.itemgetter(
            *(self._indexes.get(field, len(header)) for field in _FIELD_ORDER))
        if "id" not in self._indexes:
            raise InputError(
                f"manifest {self.path} has no id column (header: {', '.join(header)[:200]}); "
                f"name it one of {', '.join(COLUMN_ALIASES['id'])}",
                code="manifest-missing-id-column",
            )
        if self.poster_dir is None and not {"poster_file", "poster_url"} & self._indexes.keys():
            accepted = COLUMN_ALIASES["poster_file"] + COLUMN_ALIASES["poster_url"]
            raise InputError(
                f"manifest {self.path} has no poster column; add one of "
                f"{', '.join(accepted)}, or give a poster folder (--poster-dir)",
                code="manifest-missing-poster-column",
            )

    # -- rows -----------------------------------------------------------------------

    def _iterate(self) -> Generator[PosterRef, None, None]:
        if not self._indexes or self.limit == 0:
            return
        with open(self.path, "rb") as handle:
            handle.seek(self._data_offset)
            lines = _Lines(handle, self.encoding)
            records = csv.reader(lines)
            while True:
                try:
                    cells = next(records)
                except StopIteration:
                    break
                except (csv.Error, _LineTooLong) as exc:
                    # csv.reader resets its state on the next call: one bad row, not a crash
                    ref = self._failed(f"manifest-bad-row: the row is not valid CSV ({exc})")
                else:
                    if not any(cell.strip() for cell in cells):
                        continue  # blank lines (or only commas) carry no movie: not rows
                    ref = self._parse(cells)
                self.latin1_lines = lines.latin1_lines
                yield ref
                if self.limit is not None and self.rows_read >= self.limit:
                    break

    def _failed(self, reason: str) -> PosterRef:
        self.rows_read += 1
        self.rows_failed += 1
        return PosterRef(self.rows_read, None, None, None, (), None, reason)

    def _parse(self, cells: list[str]) -> PosterRef:
        self.rows_read += 1
        if len(cells) < self._width:  # a short row: its missing fields are empty
            cells = cells + [""] * (self._width - len(cells))
        raw_id, title, rating_text, genres_text, poster_file, poster_url = (
            cell.strip() for cell in self._fields(cells))
        imdb_id = rating = source = error = None
        try:  # the first problem is the row's error; fields after it stay None
            imdb_id = _parse_id(raw_id)
            rating = _parse_rating(rating_text)
            source = self._poster_source(imdb_id, raw_id, poster_file, poster_url)
        except _RowProblem as problem:
            error = problem.reason
            self.rows_failed += 1
        genres = tuple(g.strip() for g in genres_text.split("|") if g.strip())
        return PosterRef(self.rows_read, imdb_id, title[:MAX_TITLE_CHARS] or None, rating,
                         genres, source, error)

    def _poster_source(
        self, imdb_id: str, raw_id: str, poster_file: str, poster_url: str
    ) -> str:
        if self.poster_dir is not None:
            return _find_in_dir(self.poster_dir, imdb_id, raw_id)
        if poster_file:
            return _resolve_inside(self._base, poster_file)
        if poster_url:
            return _check_url(poster_url)
        raise _RowProblem("manifest-no-poster",
                          "no poster: the row has neither poster_file nor Poster URL")


def read_manifest(
    path: str | os.PathLike[str],
    *,
    poster_dir: str | os.PathLike[str] | None = None,
    limit: int | None = None,
) -> ManifestReader:
    """Stream the rows of a manifest as :class:`PosterRef` records, in file order.

    Parameters
    ----------
    path : str or PathLike
        The CSV manifest. The encoding is decided on the first MiB: a utf-8 BOM or bytes
        that are valid utf-8 mean utf-8, anything else latin-1 (which decodes any byte:
        mojibake comes through as it is in the file). A line of a utf-8 file that turns
        out not to be utf-8 is read as latin-1, that line only (``reader.latin1_lines``).
    poster_dir : str or PathLike, optional
        Take every poster from ``poster_dir/<id>.<ext>`` (:data:`IMAGE_EXTENSIONS`, first
        that exists; normalised id, then the id as written) instead of the poster
        columns; no such file is a ``manifest-no-poster`` row error.
    limit : int, optional
        Stop after this many rows (failed rows count).

    Returns
    -------
    ManifestReader
        The header is read and checked at once; rows lazily. ``reader.rows_read`` is 0
        after a pass over an empty or header-only file. Duplicate ids come out as they
        are (see :func:`duplicate_ids`); the store keeps one row per movie.

    Raises
    ------
    InputError
        No such file; UTF-16; unreadable header; no id column; no poster column and no
        ``poster_dir``; ``poster_dir`` not a folder.

    Local poster paths are resolved with ``os.path.realpath`` and must stay inside the
    manifest's folder (or ``poster_dir``): absolute paths, ``../`` escapes and symlinks
    leading out are ``manifest-path-escape`` row errors. Existence is checked when the
    file is fetched (``fetch-not-found``).

    Examples
    --------
    >>> with read_manifest("index.csv") as rows:  # doctest: +SKIP
    ...     good = [ref for ref in rows if ref.ok]
    """
    return ManifestReader(path, poster_dir=poster_dir, limit=limit)


def count_rows(path: str | os.PathLike[str]) -> int:
    """Count the data rows of a manifest quickly, for a progress bar's total.

    Counts lines, minus the header: exact for ordinary files, an overestimate when fields
    contain newlines or the file has blank lines. ~1 s per GB; never decodes anything.
    """
    lines = 0
    last = b"\n"
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            lines += chunk.count(b"\n")
            last = chunk[-1:]
    if last != b"\n":
        lines += 1  # a last line without a line break
    return max(0, lines - 1)


def duplicate_ids(refs: Iterable[PosterRef]) -> dict[str, list[int]]:
    """Map each id that occurs on more than one row to the row numbers it occurs on.

    The reader reports duplicates as they are (the store keeps one row per movie); this
    is for reports and checks. Memory grows with the number of distinct ids.

    >>> refs = [PosterRef(1, "7", None, None, (), None), PosterRef(2, "7", None, None, (), None)]
    >>> duplicate_ids(refs)
    {'7': [1, 2]}
    """
    rows: dict[str, list[int]] = {}
    for ref in refs:
        if ref.imdb_id is not None:
            rows.setdefault(ref.imdb_id, []).append(ref.row)
    return {imdb_id: found for imdb_id, found in rows.items() if len(found) > 1}


class _Lines(Iterator[str]):
    """Decoded lines of a binary file, each at most MAX_LINE_BYTES, for csv.reader.

    Decoding line by line (rather than through a TextIOWrapper) is what lets a utf-8
    file with one stray latin-1 byte on line 900,000 be read instead of crashing, and
    lets ``offset`` say exactly where the header ends. Line breaks are kept, as csv
    wants them (``newline=""``).
    """

    def __init__(self, handle: BinaryIO, encoding: str) -> None:
        self._handle = handle
        self._latin1_only = encoding == "latin-1"
        self.offset = handle.tell()
        self.latin1_lines = 0

    def __next__(self) -> str:
        line = self._handle.readline(MAX_LINE_BYTES)
        if not line:
            raise StopIteration
        self.offset += len(line)
        if len(line) == MAX_LINE_BYTES and not line.endswith(b"\n"):
            while (rest := self._handle.readline(MAX_LINE_BYTES)) and not rest.endswith(b"\n"):
                self.offset += len(rest)
            self.offset += len(rest)
            raise _LineTooLong(f"line longer than {MAX_LINE_BYTES} bytes")
        if self._latin1_only:
            return line.decode("latin-1")
        try:
            return line.decode("utf-8")
        except UnicodeDecodeError:
            self.latin1_lines += 1
            return line.decode("latin-1")


def _sniff_encoding(head: bytes, path: str) -> str:
    if head.startswith(_BOM_UTF8):
        return "utf-8-sig"
    if head.startswith(_BOMS_UTF16):
        raise InputError(f"manifest {path} is UTF-16; save it as UTF-8 (or latin-1) CSV",
                         code="manifest-encoding")
    try:
        # final=False: the first MiB may end in the middle of a multi-byte character
        codecs.getincrementaldecoder("utf-8")().decode(head, final=len(head) < SNIFF_BYTES)
    except UnicodeDecodeError:
        return "latin-1"
    return "utf-8"


def _header_key(name: str) -> str:
    """Fold a header name: ``IMDB Score``, ``imdb_score`` and ``imdbscore`` match."""
    return re.sub(r"[\s_\-]+", "", name.replace("\ufeff", "")).lower()


def _parse_id(raw: str) -> str:
    if not raw:
        raise _RowProblem("manifest-missing-id",
                          "the row has no imdb id; fill the id column (e.g. 114709 or tt0114709)")
    if len(raw) > MAX_ID_CHARS:
        raise _RowProblem("manifest-bad-id",
                          f"id {raw[:MAX_ID_CHARS]!r}... is longer than {MAX_ID_CHARS} characters")
    match = _ID_RE.fullmatch(raw)
    if match is None or int(match.group(1)) == 0:
        raise _RowProblem("manifest-bad-id",
                          f"id {raw!r} is not an IMDB id; write digits, optionally after 'tt'")
    return str(int(match.group(1)))


def _parse_rating(raw: str) -> float | None:
    if not raw:
        return None  # no score: the poster is still analysed, the statistics drop it
    try:
        rating = float(raw)
    except ValueError:
        raise _RowProblem("manifest-bad-rating",
                          f"rating {raw[:40]!r} is not a number; write e.g. 7.5") from None
    if not 0.0 <= rating <= 10.0:  # also refuses nan and inf
        raise _RowProblem("manifest-bad-rating", f"rating {raw[:40]!r} is outside 0..10")
    return rating


def _check_url(url: str) -> str:
    if len(url) > MAX_URL_CHARS:
        raise _RowProblem("manifest-bad-url",
                          f"poster URL is longer than {MAX_URL_CHARS} characters")
    if not url.lower().startswith(("http://", "https://")):
        raise _RowProblem("manifest-bad-url",
                          f"poster URL {url[:80]!r} is not http(s); only web URLs are fetched")
    return url


def _resolve_inside(base: str, relative: str) -> str:
    """Resolve ``relative`` under the real folder ``base``; refuse anything that leaves it."""
    if os.path.isabs(relative) or os.path.splitdrive(relative)[0]:
        raise _RowProblem("manifest-path-escape",
                          f"poster path {relative[:200]!r} is absolute; "
                          "write it relative to the manifest's folder")
    try:
        real = os.path.realpath(os.path.join(base, relative))
    except (ValueError, OSError) as exc:  # NUL byte, name too long, symlink loop
        raise _RowProblem("manifest-bad-path",
                          f"poster path {relative[:200]!r} is unusable ({exc})") from None
    if os.path.commonpath([base, real]) != base:
        raise _RowProblem("manifest-path-escape",
                          f"poster path {relative[:200]!r} leads out of {base}; "
                          "posters must be inside the manifest's folder")
    return real


def _find_in_dir(folder: str, imdb_id: str, raw_id: str) -> str:
    stems = dict.fromkeys(stem for stem in (imdb_id, raw_id) if stem)
    for stem in stems:
        for extension in IMAGE_EXTENSIONS:
            for name in (stem + extension, stem + extension.upper()):
                if os.path.isfile(os.path.join(folder, name)):
                    return _resolve_inside(folder, name)
    raise _RowProblem("manifest-no-poster",
                      f"no poster for id {raw_id!r} in {folder} "
                      f"(looked for {imdb_id}{{{','.join(IMAGE_EXTENSIONS)}}})")


def _existing_dir(path: str | os.PathLike[str]) -> str:
    folder = os.path.realpath(os.fspath(path))
    if not os.path.isdir(folder):
        raise InputError(f"poster folder {os.fspath(path)} does not exist or is not a folder",
                         code="manifest-poster-dir-not-found")
    return folder
