"""Process set-up shared by both modes: BLAS threads, malloc, preloading, recycling, names.

Celery prefork children and the embedded runner's pool children are set up the same way
(:func:`set_up_compute_process`): one BLAS thread each, a steady malloc, the heavy modules
imported before the pool forks, and replaced after a number of posters because the YuNet
binding keeps memory per call.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import importlib
import multiprocessing
import multiprocessing.context
import multiprocessing.forkserver
import os
import socket

# imported before children fork: a recycled child starts in milliseconds instead of
# re-importing scikit-image and the detector (~1 s); the packages load their modules on
# first use, so the modules a poster's stages run are named one by one
PRELOAD: tuple[str, ...] = (
    "posterlab.pipeline.claim", "posterlab.pipeline.compute", "posterlab.pipeline.record",
    "posterlab.pipeline.drive", "posterlab.imaging.features", "skimage.transform",
    "skimage.exposure", "posterlab.faces.local")
# The YuNet binding keeps ~36 KB per detection (measured): a child is replaced after this
# many posters (~36 MB of growth), which costs ~1 s, ~0.1% of their compute.
POSTERS_PER_CHILD = 1000


def single_threaded_blas() -> None:
    """One BLAS thread per process: with one process per core, more threads only contend
    (measured: a 1600x29 @ 29x16 product went from 37 us to 7.5 ms on a busy 2-core host)."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)


# glibc's mallopt parameters, and the values set for a process that computes posters
_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3
MALLOC_SETTINGS = {_M_MMAP_THRESHOLD: 4 << 20, _M_TRIM_THRESHOLD: 16 << 20,
                   _M_TOP_PAD: 4 << 20}


def steady_malloc() -> bool:
    """Keep a poster's arrays on the heap instead of a fresh ``mmap`` each.

    Each poster allocates and frees several arrays of a few MB (the float image, the
    detector's upscaled copy); with glibc's default thresholds each is an ``mmap``, or
    the heap is trimmed after it, and the kernel zeroes fresh pages again: ~5 ms of system CPU
    per poster, 10 % of the work (measured; 0.1 ms with these settings). Arrays up to
    4 MB are taken from the heap, and up to 16 MB freed at its top stay mapped: a
    process holds at most that much more than it uses, and a big image's arrays (a
    decode past the canonical size) still get their own mapping, returned at once.
    Whether the settings took (False where the C library is not glibc).
    """
    name = ctypes.util.find_library("c")
    try:
        mallopt = ctypes.CDLL(name).mallopt if name else None
    except (OSError, AttributeError):
        mallopt = None
    if mallopt is None:
        return False
    return all(mallopt(param, value) == 1 for param, value in MALLOC_SETTINGS.items())


def set_up_compute_process() -> None:
    """What every process that computes posters does first: one BLAS thread, and a malloc
    that does not map and unmap each poster's arrays (:func:`steady_malloc`)."""
    single_threaded_blas()
    steady_malloc()


def preload() -> None:
    """Import the modules children need, in the parent that forks them."""
    for name in PRELOAD:
        importlib.import_module(name)


def pool_size(workers: int | None) -> int:
    """The embedded pool's processes: ``workers``, or one per core when not given."""
    return max(1, workers or os.cpu_count() or 1)


def pool_context(workers: int) -> multiprocessing.context.BaseContext | None:
    """The context the embedded pool's children start from: a forkserver that has
    imported :data:`PRELOAD`, started now (None when ``workers`` is 1: no pool).

    Called early (``posterlab run`` does so before its checks), the server imports the
    heavy modules (~1 s) while this process still has its own start-up to do.
    """
    if workers <= 1:
        return None
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(list(PRELOAD))
    multiprocessing.forkserver.ensure_running()
    return context


def worker_name(prefix: str | None = None) -> str:
    """How this process signs its claims: ``host:pid`` (or ``prefix:pid``)."""
    return f"{prefix or socket.gethostname()}:{os.getpid()}"
