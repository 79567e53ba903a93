"""What only the tests need beyond :mod:`posterlab.testing`: the rule for missing services,
and the room that lets timing tests run alone in a parallel run.

Workers, the CLI, environments, schemas, Redis servers, manifests and database reads
are the harness's, shared with the benchmarks: import them from ``posterlab.testing``.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn

import pytest


def unavailable(what: str, why: str) -> NoReturn:
    """Skip a test whose service is missing on a laptop; fail it under CI (``CI`` set).

    So a broken CI machine can never pass by skipping.
    """
    if os.environ.get("CI"):
        pytest.fail(f"{what} is required in CI but unavailable: {why}")
    pytest.skip(f"{what} unavailable: {why}")


@contextmanager
def room(folder: Path, *, exclusive: bool) -> Iterator[None]:
    """Hold the test room of the processes of one parallel run: shared, or all to oneself.

    Tests that measure time (a rate, a sweep after two seconds) go wrong when the other
    test processes take the CPU, so they run alone. Two locks in ``folder``: everyone
    passes the turnstile to enter, and an exclusive test holds it while it waits for the
    room to empty, so that a stream of shared tests cannot keep it waiting forever.
    """
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "room.lock", "a+b") as room_fh, \
            open(folder / "turnstile.lock", "a+b") as gate_fh:
        fcntl.flock(gate_fh, fcntl.LOCK_EX)
        try:
            fcntl.flock(room_fh, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        finally:
            if not exclusive:
                fcntl.flock(gate_fh, fcntl.LOCK_UN)
        try:
            yield
        finally:
            fcntl.flock(room_fh, fcntl.LOCK_UN)
            fcntl.flock(gate_fh, fcntl.LOCK_UN)
