"""The bytes of a manifest as CSV records: lines grouped by quotes, each line decoded alone.

utf-8, utf-8 with a BOM or latin-1 (Windows-1252 where it defines the byte); UTF-16 is
refused. Every line is decoded by itself: utf-8 when it is valid utf-8, latin-1
otherwise, so a file that mixes the two reads each line right. The file's main encoding
(decided on its first MiB) only says which lines were *repaired*: read in the other one.

Records are found here rather than by ``csv.reader`` over the whole file: a record is
the lines up to the one that closes every quoted field (scanned as the csv module's
default dialect does). A record too long to be a row, or a field over the csv module's
limit, is then one bad row, and the next record starts where the bad one really ends,
not inside its quotes.
"""

from __future__ import annotations

import codecs
from collections.abc import Iterator
from typing import BinaryIO

from posterlab.errors import InputError

SNIFF_BYTES = 1 << 20  # the encoding is decided on the first MiB: ~2,500 MovieGenre rows
MAX_LINE_BYTES = 1 << 20  # a real row is ~250 bytes; a longer line is garbage, not a movie
MAX_RECORD_BYTES = MAX_LINE_BYTES  # the same for a record of several lines
BOM_UTF8 = codecs.BOM_UTF8
_BOMS_UTF16 = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)
_QUOTE, _COMMA = ord('"'), b","
# latin-1 -> Windows-1252 for 0x80-0x9f (C1 controls in latin-1, punctuation in 1252)
_WINDOWS_1252 = str.maketrans({chr(b): bytes([b]).decode("cp1252") for b in range(0x80, 0xA0)
                               if b not in (0x81, 0x8D, 0x8F, 0x90, 0x9D)})


# One CSV record: (its decoded lines, whether one of them was read in the encoding other
# than the file's, the reason it cannot be a row or None). A plain tuple: made once a
# row, it is on the reading speed's path.
Record = tuple[list[str], bool, "str | None"]


def open_quotes(line: bytes, inside: bool) -> bool:
    """Is a quoted field still open at the end of ``line``, given whether one was at its
    start? The csv module's default dialect, not strict: a quote opens a field only at the
    field's start, ``""`` inside one is a quote, anything after the closing quote is text.

    >>> open_quotes(b'1,"a\\n', False), open_quotes(b'b",2\\n', True)
    (True, False)
    >>> open_quotes(b'1,a"b\\n', False)
    False
    """
    i, n = 0, len(line)
    while i < n:
        if inside:
            j = line.find(b'"', i)
            if j < 0:
                return True
            if j + 1 < n and line[j + 1] == _QUOTE:
                i = j + 2  # "" is a quote inside the field
                continue
            inside, i = False, j + 1  # closed; the rest up to the comma is plain text
        elif line[i] == _QUOTE:
            inside, i = True, i + 1
            continue
        k = line.find(_COMMA, i)
        if k < 0:
            return False
        i = k + 1
    return inside


class Records(Iterator[Record]):
    """The records of a binary file, each at most :data:`MAX_RECORD_BYTES`, in order.

    ``offset`` is the byte offset after the last record read (where the header ends);
    ``lines_read`` the lines read so far.
    """

    def __init__(self, handle: BinaryIO, encoding: str) -> None:
        self._handle = handle
        self._main_is_utf8 = encoding != "latin-1"
        self.offset = handle.tell()
        self.lines_read = 0

    def __next__(self) -> Record:
        raw = self._handle.readline(MAX_LINE_BYTES)
        if _QUOTE in raw or not raw.endswith(b"\n"):
            return self._long_record(raw, self.lines_read + 1)
        # most rows: one line, no quotes (this path is the reading speed of a manifest)
        self.offset += len(raw)
        self.lines_read += 1
        try:
            return [raw.decode("utf-8")], not self._main_is_utf8 and not raw.isascii(), None
        except UnicodeDecodeError:
            return [latin1(raw)], self._main_is_utf8, None

    def _long_record(self, raw: bytes, first: int) -> Record:
        """A record with quotes, over several lines, or too long (``raw``: its first line)."""
        lines: list[str] = []
        size, inside, repaired, problem = 0, False, False, None
        while True:
            if not raw:
                if not lines and problem is None:
                    raise StopIteration
                if inside:  # EOF inside quotes: the rest of the file is not one movie
                    problem = (f"a quoted field opened on line {first} is never closed "
                               f"(lines {first}-{self.lines_read} were read as this row)")
                break
            self.offset += len(raw)
            if raw.endswith(b"\n"):
                self.lines_read += 1
            inside = open_quotes(raw, inside)
            size += len(raw)
            if size > MAX_RECORD_BYTES:
                problem = f"the row is longer than {MAX_RECORD_BYTES} bytes"
                lines = []
            if problem is None:
                text, other = self._decode(raw)
                lines.append(text)
                repaired |= other
            if not inside and raw.endswith(b"\n"):
                break
            raw = self._handle.readline(MAX_LINE_BYTES)
        if problem is not None:
            return [], repaired, problem
        return lines, repaired, None

    def _decode(self, raw: bytes) -> tuple[str, bool]:
        """The line as text, and whether it was not in the file's main encoding."""
        try:
            return raw.decode("utf-8"), not self._main_is_utf8 and not raw.isascii()
        except UnicodeDecodeError:
            return latin1(raw), self._main_is_utf8


def latin1(raw: bytes) -> str:
    """Bytes that are not utf-8 as text: Windows-1252 (what "latin-1" files from Windows
    are), latin-1 for the five bytes Windows-1252 leaves undefined.

    >>> latin1(b"caf\\xe9 \\x93quoted\\x94")
    'café “quoted”'
    """
    return raw.decode("latin-1").translate(_WINDOWS_1252)


def sniff_encoding(head: bytes, path: str) -> str:
    """The main encoding of a manifest whose first :data:`SNIFF_BYTES` are ``head``.

    Parameters
    ----------
    head : bytes
        The start of the file.
    path : str
        The file, for the error message.

    Returns
    -------
    str
        ``"utf-8-sig"`` (a BOM), ``"latin-1"`` (lines that are not ascii, and none of them
        valid utf-8) or ``"utf-8"`` (anything else: a mixed file is utf-8 with repairs).

    Raises
    ------
    InputError
        ``manifest-encoding`` for a UTF-16 file.

    >>> title = "Amélie\\n"
    >>> sniff_encoding(title.encode(), "m.csv"), sniff_encoding(title.encode("latin-1"), "m.csv")
    ('utf-8', 'latin-1')
    """
    if head.startswith(BOM_UTF8):
        return "utf-8-sig"
    if head.startswith(_BOMS_UTF16):
        raise InputError(f"manifest {path} is UTF-16; save it as UTF-8 (or latin-1) CSV",
                         code="manifest-encoding")
    lines = head.split(b"\n")
    if len(head) >= SNIFF_BYTES and len(lines) > 1:
        lines.pop()  # the first MiB may end in the middle of a line (and of a character)
    utf8 = latin = 0
    for line in lines:
        if line.isascii():
            continue
        try:
            line.decode("utf-8")
        except UnicodeDecodeError:
            latin += 1
        else:
            utf8 += 1
    return "latin-1" if latin and not utf8 else "utf-8"
