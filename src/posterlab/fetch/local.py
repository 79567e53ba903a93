"""Reading a poster from a local file: inside its folder, a regular file, within the size cap."""

from __future__ import annotations

import errno
import fcntl
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
    """The bytes of the local poster ``path``, checked again at every attempt.

    The manifest reader stores a poster's real path (symlinks resolved, inside the
    manifest's folder or ``--poster-dir``). Here, at fetch time, that path must still be
    real: no component of it may have become a symlink since (a file or a folder swapped
    for a link to ``/etc/passwd`` after the run was queued, before a ``retry``). The last
    component is opened with ``O_NOFOLLOW``, and the file actually opened is compared
    with the path (``/proc/self/fd`` where there is one), so a swap between the check and
    the open is caught too.

    Parameters
    ----------
    path : str
        The file, as the manifest reader resolved it.
    max_bytes : int
        Refuse larger files (``fetch-too-large``), also one that grows while read.
    base_dir : str, optional
        Folder ``path`` must also be inside, after symlinks (``fetch-path-escape``).

    Raises
    ------
    FetchError
        ``fetch-path-escape``, ``fetch-not-found``, ``fetch-unreadable``,
        ``fetch-not-a-file`` or ``fetch-too-large``.
    """
    path = os.path.abspath(path)
    _check_real(path, os.path.realpath(path), base_dir)
    with _open_regular(path, max_bytes) as handle:
        _check_real(path, _opened_path(handle.fileno(), path), base_dir)
        data = handle.read(max_bytes + 1)  # +1: a file growing while we read is caught too
    if len(data) > max_bytes:
        raise too_large(path, max_bytes)
    return data


def _check_real(path: str, real: str, base_dir: str | None) -> None:
    """Refuse ``path`` when what it leads to (``real``) is elsewhere or outside ``base_dir``."""
    if real != path and os.path.exists(real):  # a missing file is fetch-not-found, below
        raise FetchError(f"poster file {path} now leads through a symbolic link to {real}; "
                         "refusing to read it (posters are read where the manifest was "
                         "checked: replace the link by the file)", code="fetch-path-escape")
    if base_dir is not None:
        base = os.path.realpath(base_dir)
        if os.path.commonpath([base, real]) != base:
            raise FetchError(f"poster file {path} is outside {base}; refusing to read it",
                             code="fetch-path-escape")


def _opened_path(fd: int, path: str) -> str:
    """The path of the file open as ``fd``, as the kernel knows it (Linux, macOS)."""
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        pass
    f_getpath = getattr(fcntl, "F_GETPATH", None)  # macOS
    if f_getpath is not None:
        try:
            raw = fcntl.fcntl(fd, f_getpath, bytes(1024))
            return os.fsdecode(raw.split(b"\0", 1)[0])
        except OSError:
            pass
    return os.path.realpath(path)  # elsewhere: the check before opening stands alone


def _open_regular(path: str, max_bytes: int) -> io.BufferedReader:
    """Open ``path`` for reading if it is a regular file of at most ``max_bytes``."""
    try:
        # O_NONBLOCK: opening a FIFO must not hang a worker; it is refused just below.
        # O_NOFOLLOW: a symlink swapped in for the file after the checks is not followed.
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0)
                     | getattr(os, "O_NOFOLLOW", 0))
    except FileNotFoundError:
        raise FetchError(f"poster file {path} does not exist; check the manifest's "
                         "poster_file column or --poster-dir", code="fetch-not-found") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise FetchError(f"poster file {path} is now a symbolic link; refusing to "
                             "follow it", code="fetch-path-escape") from None
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
