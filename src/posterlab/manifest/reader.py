"""Streaming a manifest file into :class:`PosterRef` records, one a row, in constant memory."""

from __future__ import annotations

import csv
import os
from collections import deque
from collections.abc import Generator, Iterable, Iterator
from dataclasses import dataclass

from posterlab.errors import InputError
from posterlab.manifest.columns import Columns, map_columns
from posterlab.manifest.fields import (
    MAX_TITLE_CHARS,
    RowProblem,
    check_url,
    existing_dir,
    find_in_dir,
    parse_id,
    parse_rating,
    resolve_inside,
)
from posterlab.manifest.lines import BOM_UTF8, SNIFF_BYTES, Records, sniff_encoding
from posterlab.text import clean_text

MAX_REPAIRED_NAMED = 1000  # rows named in ``repaired_rows``; ``repaired`` counts them all


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


class ManifestReader(Iterator[PosterRef]):
    """An iterator of :class:`PosterRef` over a manifest file; see :func:`read_manifest`.

    Attributes: ``path``, ``encoding`` (``utf-8``, ``utf-8-sig`` or ``latin-1``),
    ``columns`` (canonical field -> header name as written), ``rows_read`` (rows yielded
    so far: 0 after a full pass means the manifest has no data rows), ``rows_failed``
    (rows yielded with an ``error``), ``repaired`` (rows with a line that was not in the
    file's main encoding and was read in the other one) and ``repaired_rows`` (their
    numbers, the first :data:`MAX_REPAIRED_NAMED`).
    """

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
        self.poster_dir = existing_dir(poster_dir) if poster_dir is not None else None
        self._base = os.path.realpath(os.path.dirname(self.path))
        self.rows_read = 0
        self.rows_failed = 0
        self.repaired = 0
        self.repaired_rows: list[int] = []
        self.encoding, self._data_offset, self._columns = self._read_header()
        # canonical field -> header name as written; empty for an empty file
        self.columns: dict[str, str] = dict(self._columns.names) if self._columns else {}
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

    def _read_header(self) -> tuple[str, int, Columns | None]:
        """Decide the encoding, map the columns; return them and the offset of row 1.

        The file is closed again: rows are read by a generator that owns its handle, so
        an abandoned reader never leaks an open file.
        """
        with open(self.path, "rb") as handle:
            encoding = sniff_encoding(handle.read(SNIFF_BYTES), self.path)
            handle.seek(len(BOM_UTF8) if encoding == "utf-8-sig" else 0)
            records = Records(handle, encoding)
            header: list[str] = []
            for lines, _repaired, problem in records:
                if problem is not None:
                    raise InputError(f"the header of manifest {self.path} cannot be read as "
                                     f"CSV ({problem})", code="manifest-bad-header")
                try:
                    header = next(csv.reader(lines), [])
                except csv.Error as exc:
                    raise InputError(f"the header of manifest {self.path} cannot be read as "
                                     f"CSV ({exc})", code="manifest-bad-header") from None
                if any(cell.strip() for cell in header):
                    break
            columns = map_columns(header, path=self.path, poster_dir=self.poster_dir is not None)
            return encoding, records.offset, columns

    # -- rows -----------------------------------------------------------------------

    def _iterate(self) -> Generator[PosterRef, None, None]:
        columns = self._columns
        if columns is None or self.limit == 0:
            return  # empty file: no header, no rows, nothing to complain about
        feed = Feed()
        records = csv.reader(feed)  # one reader for the file: one per record costs more
        with open(self.path, "rb") as handle:
            handle.seek(self._data_offset)
            for lines, repaired, problem in Records(handle, self.encoding):
                for ref in self._refs(lines, problem, columns, feed, records):
                    if repaired:
                        self._note_repaired(ref.row)
                    yield ref
                    if self.limit is not None and self.rows_read >= self.limit:
                        return

    def _refs(self, lines: list[str], problem: str | None, columns: Columns, feed: Feed,
              records: Iterator[list[str]]) -> list[PosterRef]:
        """The rows of one record: one, or none for a blank line (or only commas)."""
        if problem is not None:
            return [self._failed(f"manifest-bad-row: {problem}")]
        feed.lines.extend(lines)
        refs: list[PosterRef] = []
        while feed.lines:  # one pass but for a record csv sees as several
            try:
                cells = next(records)
            except csv.Error as exc:  # e.g. a field over the csv module's limit: this row
                feed.lines.clear()
                return [*refs, self._failed(f"manifest-bad-row: the row is not valid CSV "
                                            f"({exc})")]
            except StopIteration:
                break
            if any(cell.strip() for cell in cells):
                refs.append(self._parse(cells, columns))
        return refs

    def _note_repaired(self, row: int) -> None:
        self.repaired += 1
        if len(self.repaired_rows) < MAX_REPAIRED_NAMED:
            self.repaired_rows.append(row)

    def _failed(self, reason: str) -> PosterRef:
        self.rows_read += 1
        self.rows_failed += 1
        return PosterRef(self.rows_read, None, None, None, (), None, reason)

    def _parse(self, cells: list[str], columns: Columns) -> PosterRef:
        self.rows_read += 1
        if len(cells) < columns.width:  # a short row: its missing fields are empty
            cells = cells + [""] * (columns.width - len(cells))
        raw_id, title, rating_text, genres_text, poster_file, poster_url = (
            cell.strip() for cell in columns.cells(cells))
        imdb_id = rating = source = error = None
        try:  # the first problem is the row's error; fields after it stay None
            imdb_id = parse_id(raw_id)
            rating = parse_rating(rating_text)
            source = self._poster_source(imdb_id, raw_id, poster_file, poster_url)
        except RowProblem as problem:
            error = problem.reason
            self.rows_failed += 1
        if not (title.isprintable() and genres_text.isprintable()):  # C speed: nearly always
            title, genres_text = clean_text(title), clean_text(genres_text)
        genres = tuple(g.strip() for g in genres_text.split("|") if g.strip())
        title = title[:MAX_TITLE_CHARS]
        return PosterRef(self.rows_read, imdb_id, title or None, rating, genres, source, error)

    def _poster_source(
        self, imdb_id: str, raw_id: str, poster_file: str, poster_url: str
    ) -> str:
        if self.poster_dir is not None:
            return find_in_dir(self.poster_dir, imdb_id, raw_id)
        if poster_file:
            return resolve_inside(self._base, poster_file)
        if poster_url:
            return check_url(poster_url)
        raise RowProblem("manifest-no-poster",
                         "no poster: the row has neither poster_file nor Poster URL")


class Feed(Iterator[str]):
    """The lines of the current record, for a ``csv.reader`` kept for the whole file; it
    ends a record where :class:`Records` ends it (csv reads to the end of its input)."""

    def __init__(self) -> None:
        self.lines: deque[str] = deque()

    def __next__(self) -> str:
        if not self.lines:
            raise StopIteration
        return self.lines.popleft()


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
        mojibake comes through as it is in the file). Each line is then decoded alone,
        utf-8 if it is valid utf-8, else latin-1: the rows of a mixed file whose line was
        not in the main encoding are ``reader.repaired_rows``.
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
        are (see :func:`duplicate_ids`); the store keeps the first row of a movie and
        fails the others (``manifest-duplicate``). Titles and genres are cleaned of
        control characters (line breaks become spaces; NUL, escapes and bidi overrides
        go); a control character in a URL or a path fails its row.

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
