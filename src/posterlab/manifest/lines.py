"""The bytes of a manifest as lines of text: the encoding decided once, each line decoded alone.

utf-8, utf-8 with a BOM or latin-1 (any byte decodes); UTF-16 is refused. Decoding line by
line is what lets a utf-8 file with one stray latin-1 byte be read rather than refused.
"""

from __future__ import annotations

import codecs
from collections.abc import Iterator
from typing import BinaryIO

from posterlab.errors import InputError

SNIFF_BYTES = 1 << 20  # the encoding is decided on the first MiB: ~2,500 MovieGenre rows
MAX_LINE_BYTES = 1 << 20  # a real row is ~250 bytes; a longer line is garbage, not a movie
BOM_UTF8 = codecs.BOM_UTF8
_BOMS_UTF16 = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)


class LineTooLong(Exception):
    """Raised through csv.reader by :class:`Lines`; the reader starts afresh on the next line."""


class Lines(Iterator[str]):
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
            self._refuse_long_line()
        if self._latin1_only:
            return line.decode("latin-1")
        try:
            return line.decode("utf-8")
        except UnicodeDecodeError:
            self.latin1_lines += 1
            return line.decode("latin-1")

    def _refuse_long_line(self) -> None:
        """Skip to the end of an overlong line, then say so (the line is one bad row)."""
        while (rest := self._handle.readline(MAX_LINE_BYTES)) and not rest.endswith(b"\n"):
            self.offset += len(rest)
        self.offset += len(rest)
        raise LineTooLong(f"line longer than {MAX_LINE_BYTES} bytes")


def sniff_encoding(head: bytes, path: str) -> str:
    """The encoding of a manifest whose first :data:`SNIFF_BYTES` are ``head``.

    Parameters
    ----------
    head : bytes
        The start of the file.
    path : str
        The file, for the error message.

    Returns
    -------
    str
        ``"utf-8-sig"`` (a BOM), ``"utf-8"`` (valid utf-8) or ``"latin-1"`` (anything else).

    Raises
    ------
    InputError
        ``manifest-encoding`` for a UTF-16 file.

    >>> title = "Amélie"
    >>> sniff_encoding(title.encode(), "m.csv"), sniff_encoding(title.encode("latin-1"), "m.csv")
    ('utf-8', 'latin-1')
    """
    if head.startswith(BOM_UTF8):
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
