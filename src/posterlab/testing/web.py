"""A real ``posterlab dashboard`` on a free port, and where the system's Chromium is.

Only the standard library is imported here (``urllib`` polls the server until it
answers), like the rest of the harness.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import IO

from posterlab.testing._base import READY_TIMEOUT, STOP_TIMEOUT, HarnessError
from posterlab.testing.processes import posterlab_cmd
from posterlab.testing.services import free_port

TAIL = 3000
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")


def chromium_path() -> str | None:
    """The system's Chromium (``/usr/bin/chromium`` on Debian), or None when absent."""
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


class DashboardServer:
    """``posterlab dashboard --port <free> ARGS`` in its own process group.

    ``url`` is its base URL (``http://127.0.0.1:PORT``); the constructor returns once it
    answers HTTP, and :meth:`stop` ends it.
    """

    def __init__(self, args: Sequence[str], env: dict[str, str], log: Path, *,
                 timeout: float = READY_TIMEOUT) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        self._fh: IO[bytes] = open(log, "wb")  # noqa: SIM115  (open while it runs)
        self.proc = subprocess.Popen(
            posterlab_cmd("dashboard", "--port", str(self.port), *args), env=env,
            stdout=self._fh, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            self._wait_ready(timeout)
        except HarnessError:
            self.stop()
            raise

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise HarnessError(f"dashboard exited early:\n{self.output()}")
            try:
                with urllib.request.urlopen(f"{self.url}/api/runs", timeout=2):
                    return
            except urllib.error.HTTPError:
                return  # it answers: ready, whatever it thinks of the request
            except OSError:
                time.sleep(0.2)
        raise HarnessError(f"dashboard not answering in {timeout}s:\n{self.output()}")

    def output(self) -> str:
        """The tail of its log."""
        return self.log.read_text(errors="replace")[-TAIL:]

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """SIGTERM to its group, SIGKILL after ``timeout`` seconds."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self._fh.close()

    def __enter__(self) -> DashboardServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
