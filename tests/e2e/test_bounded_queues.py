"""The queue bound with real ``posterlab worker`` processes on a real Redis: a fetch-only
worker, far faster than anything downstream of it, never puts more than
``POSTERLAB_MAX_QUEUED`` messages in the extract queue; the rest wait in the database and
reach the queue as it drains."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
import redis

from posterlab.testing import env_for, poster_counts, rows, run_cli, sample_manifest

pytestmark = [pytest.mark.slow, pytest.mark.redis, pytest.mark.data]

BOUND = 2
POSTERS = 48


class DepthProbe:
    """Reads the length of some queues every few milliseconds; keeps the peaks."""

    def __init__(self, url: str, queues: tuple[str, ...]) -> None:
        self.client = redis.Redis.from_url(url)
        self.queues = queues
        self.peak = dict.fromkeys(queues, 0)
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            with self.client.pipeline() as pipe:
                for name in self.queues:
                    pipe.llen(name)
                for name, depth in zip(self.queues, pipe.execute(), strict=True):
                    self.peak[name] = max(self.peak[name], int(depth))
            self.samples += 1
            time.sleep(0.005)

    def __enter__(self) -> DepthProbe:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.client.close()


def wait_for(what: str, check, timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.3)


def test_a_fetch_only_worker_never_fills_the_extract_queue_beyond_the_bound(
        data_dir: Path, db_url: str, broker_url: str, tmp_path: Path, start_worker) -> None:
    manifest = sample_manifest(data_dir, tmp_path / "m", POSTERS)
    env = env_for(db_url, tmp_path / "blobs", broker_url, POSTERLAB_MAX_QUEUED=str(BOUND))
    run_cli("db", "upgrade", env=env)
    with DepthProbe(broker_url, ("fetch", "extract")) as probe:
        fetcher = start_worker("-Q", "fetch", "-c", "2", env=env, name="fetch")
        fetcher.wait_ready()
        run_cli("enqueue", str(manifest), "--run", "bounded", env=env)
        # every poster downloaded; only BOUND messages of them may wait for extract
        wait_for("the fetch stage to finish",
                 lambda: poster_counts(db_url, "bounded").get("fetch", 0) == 0)
        assert poster_counts(db_url, "bounded").get("extract") == POSTERS
        # a fetch task moves its posters on, then publishes what fits and defers the rest
        wait_for("the posters beyond the bound to be deferred", lambda: rows(
            db_url, "select count(*) as n from posters where deferred")[0]["n"]
            >= POSTERS - BOUND * 8)  # 8 posters a message
        assert probe.peak["extract"] == BOUND

        rest = start_worker("-Q", "extract,faces,analysis", "-c", "2", env=env, name="rest")
        rest.wait_ready()
        wait_for("every poster to be done",
                 lambda: poster_counts(db_url, "bounded").get("done", 0) == POSTERS)
    assert probe.peak["extract"] <= BOUND and probe.peak["fetch"] <= BOUND
    assert probe.samples > 100  # the probe really watched
    assert rows(db_url, "select count(*) as n from posters where deferred")[0]["n"] == 0
