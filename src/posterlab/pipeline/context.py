"""What a process needs to compute and record stages, built once per process (after fork)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

from posterlab.config import Settings
from posterlab.fetch import FetchPolicy
from posterlab.fetch.many import Downloader
from posterlab.imaging.preprocess import PreprocessConfig, feature_version
from posterlab.storage import runs
from posterlab.storage.blobs import BlobStore
from posterlab.storage.models import Run, utcnow

if TYPE_CHECKING:
    import redis
    from sqlalchemy.orm import Session

    from posterlab.faces.base import FaceDetector


@dataclass
class StageContext:
    """Settings and the lazily built resources of one process: blob store, fetch policy,
    preprocessing configs, the face detector, and the runs it has seen (cached)."""

    settings: Settings
    redis_client: redis.Redis | None = None
    worker: str | None = None
    # distributed workers claim with a lease they renew; the embedded runner, the only
    # writer of its run, claims without
    leased: bool = False
    # told the poster this process computes now (None: none), before each; a distributed
    # worker keeps it where its main process reads it should this process die
    working_on: Callable[[int | None], None] | None = field(default=None, repr=False)
    _detector: FaceDetector | None = field(default=None, repr=False)
    _configs: dict[str, tuple[PreprocessConfig, str]] = field(default_factory=dict, repr=False)
    _runs: dict[int, Run] = field(default_factory=dict, repr=False)

    def computing(self, poster_id: int | None) -> None:
        """Say which poster this process computes from now on (None: none)."""
        if self.working_on is not None:
            self.working_on(poster_id)

    def lease_until(self, after: float = 0.0) -> datetime | None:
        """When a claim made now (or ``after`` seconds from now) expires; None when this
        process claims without lease."""
        if not self.leased:
            return None
        return utcnow() + timedelta(seconds=after + self.settings.lease_seconds)

    @cached_property
    def blobs(self) -> BlobStore:
        return BlobStore(self.settings.blob_dir)

    @cached_property
    def policy(self) -> FetchPolicy:
        return FetchPolicy.from_settings(self.settings)

    @cached_property
    def downloader(self) -> Downloader:
        """This process's downloads (threads and pooled connections, built on first use,
        after any fork). One try per download: the pipeline retries a poster itself, later,
        holding nothing meanwhile (a delayed message or heap entry), and counts the tries
        in its ``attempts``."""
        return Downloader(replace(self.policy, attempts=1))

    def close(self) -> None:
        """Stop the threads and close the connections this context opened."""
        if "downloader" in self.__dict__:
            self.downloader.close()

    @cached_property
    def preprocess(self) -> PreprocessConfig:
        """This process's own preprocessing (used to create runs)."""
        return PreprocessConfig.from_mapping(self.settings.preprocess_overrides())

    @cached_property
    def feature_version(self) -> str:
        return feature_version(self.preprocess)

    def run(self, session: Session, run_id: int) -> Run:
        """The run, cached: planning reads only what never changes (settings, versions)."""
        if run_id not in self._runs:
            run = runs.get_run(session, run_id)
            session.expunge(run)
            self._runs[run_id] = run
        return self._runs[run_id]

    def preprocess_for(self, overrides: dict[str, Any]) -> tuple[PreprocessConfig, str]:
        """The run's preprocessing (runs carry theirs, workers follow) and its version."""
        key = repr(sorted(overrides.items()))
        if key not in self._configs:
            config = PreprocessConfig.from_mapping(overrides)
            self._configs[key] = (config, feature_version(config))
        return self._configs[key]

    @property
    def detector(self) -> FaceDetector:
        if self._detector is None:
            from posterlab.faces import build_detector

            self._detector = build_detector(self.settings, redis_client=self.redis_client)
        return self._detector

    @cached_property
    def face_key(self) -> str:
        return self.detector.cache_key

    @property
    def chains_faces(self) -> bool:
        """Do faces run right after extract in the same process, unplanned? Only for the
        local detector: a paid API's answers are looked up in the cache first."""
        return self.settings.face_provider == "local"
