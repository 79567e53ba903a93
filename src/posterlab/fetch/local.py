"""Reading a poster from a local file: inside its folder, a regular file, within the size cap."""

from __future__ import annotations

import io
import os
import re
import stat

from posterlab.errors import FetchError
from posterlab.fetch.policy import too_large

_URL_RE = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")  # RFC 3986 scheme: not a local path


def is_local(source: str) -> bool:
    """Is ``source`` a path (read from disk) rather than a URL (``scheme://...``)?

    >>> is_local("posters/1.jpg"), is_local("https://example.org/1.jpg")
    (True, False)
    """
    return not _URL_RE.match(source)


def read_local(path: str, *, max_bytes: int, base_dir: str | None) -> bytes:
    """The bytes of the local poster ``path``.

    Parameters
    ----------
    path : str
        The file; opened without following a swap made after the checks.
    max_bytes : int
        Refuse larger files (``fetch-too-large``), also one that grows while read.
    base_dir : str, optional
        Folder ``path`` must be inside, after symlinks (``fetch-path-escape``).

    Raises
    ------
    FetchError
        ``fetch-path-escape``, ``fetch-not-found``, ``fetch-unreadable``,
        ``fetch-not-a-file`` or ``fetch-too-large``.
    """
    if base_dir is not None:
        base = os.path.realpath(base_dir)
        if os.path.commonpath([base, os.path.realpath(path)]) != base:
            raise FetchError(f"poster file {path} is outside {base}; refusing to read it",
                             code="fetch-path-escape")
    with _open_regular(path, max_bytes) as handle:
        data = handle.read(max_bytes + 1)  # +1: a file growing while we read is caught too
    if len(data) > max_bytes:
        raise too_large(path, max_bytes)
    return data


def _open_regular(path: str, max_bytes: int) -> io.BufferedReader:
    """Open ``path`` for reading if it is a regular file of at most ``max_bytes``."""
    try:
        # O_NONBLOCK: opening a FIFO must not hang a worker; it is refused just below
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise FetchError(f"poster file {path} does not exist; check the manifest's "
                         "poster_file column or --poster-dir", code="fetch-not-found") from None
    except OSError as exc:
        raise FetchError(f"poster file {path} cannot be opened ({exc.strerror})",
                         code="fetch-unreadable") from None
    try:
        info = os.fstat(fd)  # of what was opened: no window for a swap after a stat()
        if not stat.S_ISREG(info.st_mode):
            raise FetchError(f"poster {path} is not a regular file", code="fetch-not-a-file")
        if info.st_size > max_bytes:
            raise too_large(path, max_bytes)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
