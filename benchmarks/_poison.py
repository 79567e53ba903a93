"""Poison for benchmarks/chaos.py: posters that decode huge or kill their process, and a
watcher that samples the peak RSS of every process and SIGKILLs a worker process that
grows past a limit (as a tight OOM killer would)."""

from __future__ import annotations

import contextlib
import io
import os
import random
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PIL import Image

from posterlab import testing as h

SIDE = 7000
BOMB, KILLER = "decode-bomb", "kills-its-process"


def _png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def plant(manifest: Path, share: float, seed: int | None) -> dict[int, str]:
    """Replace ``share`` of the manifest's poster files by poison, half of each kind;
    manifest row number (1-based, as ``posters.row``) -> kind."""
    paths = h.manifest_posters(manifest)
    count = round(len(paths) * share)
    if count == 0:
        return {}
    rng = random.Random(seed)
    chosen = sorted(rng.sample(range(len(paths)), count))
    files = {BOMB: _png(Image.new("1", (SIDE, SIDE), 1)),
             KILLER: _png(Image.new("RGBA", (SIDE, SIDE), (10, 200, 30, 128)))}
    planted: dict[int, str] = {}
    for n, index in enumerate(chosen):
        kind = BOMB if n % 2 == 0 else KILLER
        paths[index].write_bytes(files[kind])
        planted[index + 1] = kind
    return planted


def check(posters: list[dict[str, Any]], planted: dict[int, str]) -> list[tuple[str, bool, str]]:
    """Exactness checks of the poison posters: killers ``worker-crashed``, bombs ended,
    and no other poster charged with a crash."""
    by_row = {p["row"]: p for p in posters}
    killers = [by_row[r] for r, kind in planted.items() if kind == KILLER and r in by_row]
    bombs = [by_row[r] for r, kind in planted.items() if kind == BOMB and r in by_row]
    healthy_crashed = [p for p in posters if p["error_code"] == "worker-crashed"
                       and p["row"] not in planted]
    return [
        ("posters that kill their process end worker-crashed",
         all(p["status"] == "failed" and p["error_code"] == "worker-crashed" for p in killers),
         f"{sum(p['error_code'] == 'worker-crashed' for p in killers)} of {len(killers)}"),
        # a bomb takes seconds to decode on a loaded machine: a worker killed every few
        # seconds may die holding one twice, and it then rightly ends worker-crashed
        ("decode bombs ended (done reduced, refused, or crashed by the chaos)",
         all(p["status"] in ("done", "failed") for p in bombs),
         f"{sum(p['status'] == 'done' for p in bombs)} done, "
         f"{sum(p['error_code'] == 'image-too-large' for p in bombs)} refused, "
         f"{sum(p['error_code'] == 'worker-crashed' for p in bombs)} worker-crashed, "
         f"of {len(bombs)}"),
        ("no healthy poster ended worker-crashed", not healthy_crashed,
         f"{len(healthy_crashed)} rows {[p['row'] for p in healthy_crashed][:10]}"),
    ]


class Watch:
    """Every ``every`` seconds: the peak RSS of every process ``roles()`` names (pid ->
    role), and SIGKILL for a process of a role in ``killable`` past ``limit_mb``."""

    def __init__(self, roles: Callable[[], dict[int, str]], limit_mb: float,
                 killable: tuple[str, ...] = ("worker child",), every: float = 0.03) -> None:
        self.roles, self.limit_mb, self.killable, self.every = roles, limit_mb, killable, every
        self.peaks: dict[int, tuple[str, float]] = {}
        self.kills: list[tuple[int, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> Watch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _loop(self) -> None:
        while not self._stop.wait(self.every):
            with contextlib.suppress(Exception):  # a process gone between two reads
                self.sample()

    def sample(self) -> None:
        for pid, role in self.roles().items():
            hwm, rss = h.status_kb(pid, "VmHWM"), h.status_kb(pid, "VmRSS")
            if hwm is None or rss is None:
                continue
            self.peaks[pid] = (role, max(self.peaks.get(pid, (role, 0.0))[1], hwm / 1024))
            if role in self.killable and rss / 1024 > self.limit_mb:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                    self.kills.append((pid, rss / 1024))

    def by_role(self) -> list[tuple[str, int, float]]:
        """(role, processes seen, highest peak MB) per role."""
        roles: dict[str, list[float]] = {}
        for role, mb in self.peaks.values():
            roles.setdefault(role, []).append(mb)
        return [(role, len(mbs), round(max(mbs), 1)) for role, mbs in sorted(roles.items())]
