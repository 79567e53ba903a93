"""Process set-up shared by both modes: BLAS threads, preloading, recycling, names.

Celery prefork children and the embedded runner's pool children are set up the same way:
one BLAS thread each, the heavy modules imported before the pool forks, and replaced
after a number of posters because the YuNet binding keeps memory per call.
"""

from __future__ import annotations

import importlib
import os
import socket

# imported before children fork: a recycled child starts in milliseconds instead of
# re-importing scikit-image and the detector (~1 s)
PRELOAD: tuple[str, ...] = ("posterlab.pipeline", "posterlab.imaging.features",
                            "posterlab.faces.local")
# The YuNet binding keeps ~36 KB per detection (measured): a child is replaced after this
# many posters (~36 MB of growth), which costs ~1 s, ~0.1% of their compute.
POSTERS_PER_CHILD = 1000


def single_threaded_blas() -> None:
    """One BLAS thread per process: with one process per core, more threads only contend
    (measured: a 1600x29 @ 29x16 product went from 37 us to 7.5 ms on a busy 2-core host)."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)


def preload() -> None:
    """Import the modules children need, in the parent that forks them."""
    for name in PRELOAD:
        importlib.import_module(name)


def worker_name(prefix: str | None = None) -> str:
    """How this process signs its claims: ``host:pid`` (or ``prefix:pid``)."""
    return f"{prefix or socket.gethostname()}:{os.getpid()}"
