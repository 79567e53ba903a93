"""Real ``posterlab`` processes: the environment of a run, the CLI, workers, their CPU.

Everything runs ``python -m posterlab`` with the interpreter of the caller, so a test or a
benchmark measures the installed package exactly as an operator runs it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO

from posterlab.testing._base import (
    CLI_TIMEOUT,
    READY_TIMEOUT,
    RUN_TIMEOUT,
    STOP_TIMEOUT,
    HarnessError,
)

TAIL = 3000  # characters of a process's output quoted in an error


def posterlab_cmd(*args: str) -> list[str]:
    """The argv of ``posterlab ARGS`` run by this interpreter."""
    return [sys.executable, "-m", "posterlab", *args]


def env_for(db_url: str, blob_dir: Path | None = None, broker: str | None = None,
            **extra: str) -> dict[str, str]:
    """The environment of a ``posterlab`` subprocess: this one's, with only these settings.

    Parameters
    ----------
    db_url : str
        ``POSTERLAB_DATABASE_URL``.
    blob_dir : Path, optional
        ``POSTERLAB_BLOB_DIR``.
    broker : str, optional
        ``POSTERLAB_BROKER_URL``.
    **extra : str
        Further variables, e.g. ``POSTERLAB_STUCK_AFTER="2"``.

    Returns
    -------
    dict of str to str
        Every ``POSTERLAB_*`` variable of this process is dropped first, so a developer's
        own settings never leak into a test.

    Examples
    --------
    >>> env_for("sqlite:///x.db", broker="redis://127.0.0.1:6379/1")["POSTERLAB_BROKER_URL"]
    'redis://127.0.0.1:6379/1'
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("POSTERLAB_")}
    env["POSTERLAB_DATABASE_URL"] = db_url
    if blob_dir is not None:
        env["POSTERLAB_BLOB_DIR"] = str(blob_dir)
    if broker:
        env["POSTERLAB_BROKER_URL"] = broker
    env.update(extra)
    return env


def run_cli(*args: str, env: dict[str, str], check: bool = True,
            timeout: float = CLI_TIMEOUT) -> subprocess.CompletedProcess[str]:
    """Run ``posterlab ARGS`` to its end and capture its output.

    Parameters
    ----------
    *args : str
        The command line after ``posterlab``.
    env : dict of str to str
        Its environment (see :func:`env_for`).
    check : bool
        Raise when it exits non-zero.
    timeout : float
        Seconds before ``subprocess.TimeoutExpired``.

    Raises
    ------
    HarnessError
        With ``check``, when it exits non-zero; the message ends with its output.
    """
    proc = subprocess.run(posterlab_cmd(*args), env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)
    if check and proc.returncode != 0:
        raise HarnessError(f"posterlab {' '.join(args)} exited {proc.returncode}:\n"
                           f"{proc.stdout[-TAIL:]}{proc.stderr[-TAIL:]}")
    return proc


class WorkerProcess:
    """A real ``posterlab worker ARGS`` in its own process group, logging to ``log``.

    Its own group, so that :meth:`stop` and :meth:`kill` reach the pool children too
    and a test never leaves a worker behind that would consume the next test's messages.
    """

    def __init__(self, args: Sequence[str], env: dict[str, str], log: Path) -> None:
        self.log = log
        self._fh: IO[bytes] = open(log, "wb")  # noqa: SIM115  (open while the worker runs)
        self.proc = subprocess.Popen(posterlab_cmd("worker", *args), env=env, stdout=self._fh,
                                     stderr=subprocess.STDOUT, start_new_session=True)

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> None:
        """Wait for Celery's ``ready.`` line in the log.

        Raises
        ------
        HarnessError
            When the worker exits first or is not ready within ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.log.read_text(errors="replace")
            if " ready." in text:
                return
            if self.proc.poll() is not None:
                raise HarnessError(f"worker exited early:\n{text[-TAIL:]}")
            time.sleep(0.1)
        raise HarnessError(f"worker not ready in {timeout}s:\n"
                           f"{self.log.read_text(errors='replace')[-TAIL:]}")

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """SIGTERM to the group (warm shutdown), SIGKILL after ``timeout`` seconds."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._killpg()
        self._fh.close()

    def kill(self) -> None:
        """SIGKILL to the whole group at once: main process and pool children."""
        self._killpg()
        self._fh.close()

    def _killpg(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def __enter__(self) -> WorkerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def children_of(pid: int) -> list[int]:
    """Child pids of ``pid``, from every thread of it (Celery's pool children among them).

    Returns
    -------
    list of int
        Empty once the process is gone.
    """
    children: list[int] = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(FileNotFoundError):
                children += [int(c) for c in (task / "children").read_text().split()]
    except FileNotFoundError:
        return []
    return children


def pool_children(pid: int) -> list[int]:
    """Celery's prefork pool processes of a worker: the children of ``pid`` forked from it
    (the same command line), not the fetch worker ``posterlab worker`` starts beside them."""
    own = _cmdline(pid)
    return [kid for kid in children_of(pid) if own is not None and _cmdline(kid) == own]


def _cmdline(pid: int) -> bytes | None:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:  # gone meanwhile
        return None


def descendants_of(pid: int) -> list[int]:
    """Every live descendant of ``pid``: children, their children, and so on."""
    found: list[int] = []
    todo = children_of(pid)
    while todo:
        kid = todo.pop()
        found.append(kid)
        todo.extend(children_of(kid))
    return found


def cpu_seconds(pid: int, *, reaped: bool = False) -> float:
    """User + system CPU seconds of a live process (0.0 once it is gone).

    With ``reaped``, also those of the children it has waited for (cutime + cstime).
    """
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    ticks = int(fields[11]) + int(fields[12])
    if reaped:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / os.sysconf("SC_CLK_TCK")


def run_cli_cpu(*args: str, env: dict[str, str], every: float = 0.2,
                timeout: float = RUN_TIMEOUT) -> float:
    """Run ``posterlab ARGS``; the CPU seconds of it and all its descendants.

    The process's own CPU (and that of the children it waited for) comes from wait4;
    processes it did not wait for (the pool children of a forkserver, which are the
    forkserver's children) are sampled from /proc every ``every`` seconds, so each adds
    at most ``every`` seconds of unseen CPU.

    Raises
    ------
    HarnessError
        When it exits non-zero or runs longer than ``timeout`` seconds.
    """
    proc = subprocess.Popen(posterlab_cmd(*args), env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    stderr = _drain(proc)
    seen: dict[int, float] = {}
    deadline = time.monotonic() + timeout
    while True:
        for kid in descendants_of(proc.pid):
            seen[kid] = max(seen.get(kid, 0.0), cpu_seconds(kid))
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if time.monotonic() > deadline:
            proc.kill()
            raise HarnessError(f"posterlab {' '.join(args)} timed out after {timeout}s")
        time.sleep(every)
    proc.returncode = os.waitstatus_to_exitcode(status)
    text = stderr()
    if proc.returncode != 0:
        raise HarnessError(f"posterlab {' '.join(args)} exited {proc.returncode}:\n"
                           f"{text[-TAIL:]}")
    # a forkserver outlives the command and is never waited for by it: no double count
    return usage.ru_utime + usage.ru_stime + sum(seen.values())


def _drain(proc: subprocess.Popen[bytes]) -> Callable[[], str]:
    """Read ``proc``'s stderr in a thread (a full pipe would block it); a call returns it."""
    chunks: list[bytes] = []
    pipe = proc.stderr
    reader = threading.Thread(target=lambda: chunks.append(pipe.read() if pipe else b""),
                              daemon=True)
    reader.start()

    def text() -> str:
        reader.join()
        return b"".join(chunks).decode(errors="replace")

    return text
