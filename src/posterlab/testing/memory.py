"""Memory of a process tree read from /proc: peak RSS of every process, and a reaper that
SIGKILLs whichever process grows past a size (what the kernel's OOM killer would do).

Both sample on a thread: :class:`PeakRss` reads ``VmHWM`` (the kernel's own high-water
mark, so a sample taken any time before a process exits sees its peak) of a root and
all its descendants; :class:`Reaper` kills a descendant whose ``VmRSS`` passes
``limit_mb``, as a poster that blows a process up gets it killed.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from pathlib import Path

from posterlab.testing.processes import descendants_of


def status_kb(pid: int, field: str) -> int | None:
    """A ``kB`` field (``VmRSS``, ``VmHWM``) of /proc/<pid>/status; None once gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def command_of(pid: int) -> str:
    """A short description of a process: its command line, cut at 80 characters."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return "?"
    return raw.replace(b"\0", b" ").decode(errors="replace").strip()[:80]


class _Sampler:
    """A thread that calls :meth:`sample` every ``every`` seconds until stopped."""

    def __init__(self, root: int, every: float) -> None:
        self.root, self.every = root, every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> _Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def pids(self) -> list[int]:
        return [self.root, *descendants_of(self.root)]

    def sample(self) -> None:
        raise NotImplementedError

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.every)


class PeakRss(_Sampler):
    """The peak RSS (MB) of a root process and every descendant seen, by pid."""

    def __init__(self, root: int, every: float = 0.05) -> None:
        super().__init__(root, every)
        self.peaks: dict[int, float] = {}
        self.commands: dict[int, str] = {}

    def sample(self) -> None:
        for pid in self.pids():
            kb = status_kb(pid, "VmHWM")
            if kb is not None:
                self.peaks[pid] = max(self.peaks.get(pid, 0.0), kb / 1024)
                self.commands.setdefault(pid, command_of(pid))

    @property
    def highest(self) -> float:
        return max(self.peaks.values(), default=0.0)


class Reaper(_Sampler):
    """SIGKILL any descendant of ``root`` (never ``root`` itself) whose RSS passes
    ``limit_mb``; ``kills`` lists (pid, RSS MB, monotonic time) of each kill."""

    def __init__(self, root: int, limit_mb: float, every: float = 0.02) -> None:
        super().__init__(root, every)
        self.limit_mb = limit_mb
        self.kills: list[tuple[int, float, float]] = []

    def sample(self) -> None:
        for pid in descendants_of(self.root):
            kb = status_kb(pid, "VmRSS")
            if kb is not None and kb / 1024 > self.limit_mb:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                    self.kills.append((pid, kb / 1024, time.monotonic()))
