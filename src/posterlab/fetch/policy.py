"""What a fetch may reach and how long and how much it may read."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from posterlab.errors import FetchError

if TYPE_CHECKING:
    from posterlab.config import Settings


@dataclass(frozen=True)
class FetchPolicy:
    """What :func:`~posterlab.fetch.fetch_bytes` may reach and how long and how much it may read.

    ``allow`` holds hostnames (exact, case-insensitive) and addresses or CIDRs
    (``127.0.0.1``, ``10.0.0.0/8``, ``::1``) that may be reached although they are
    loopback or private (``POSTERLAB_FETCH_ALLOW``). A CIDR matches addresses of its own
    family only: allowing ``127.0.0.1`` does not allow ``::ffff:127.0.0.1``.
    ``total_timeout`` bounds a whole fetch, redirects included; ``None`` means
    ``connect_timeout + 3 * read_timeout``.

    For :func:`~posterlab.fetch.fetch_many`: ``concurrency`` downloads at once in all
    (``POSTERLAB_FETCH_CONCURRENCY``), ``per_host`` at once to one host
    (``POSTERLAB_FETCH_PER_HOST``); a transient failure is tried up to ``attempts`` times
    in all, and no retry starts later than ``retry_budget`` seconds after the batch began.
    """

    allow: tuple[str, ...] = ()
    connect_timeout: float = 5.0
    read_timeout: float = 20.0
    max_bytes: int = 20 * 1024 * 1024
    max_redirects: int = 5
    total_timeout: float | None = None
    concurrency: int = 32
    per_host: int = 8
    attempts: int = 4  # a 503 once in 50 posters gets through; a dead host is left soon
    retry_budget: float = 90.0  # a batch does not wait longer than this to retry its posters

    def __post_init__(self) -> None:
        positive = ("connect_timeout", "read_timeout", "max_bytes", "total_timeout",
                    "retry_budget")
        for name in positive:
            value = getattr(self, name)
            if value is not None and not value > 0:  # "not >": refuses nan as well
                raise ValueError(f"FetchPolicy.{name} must be positive, got {value}")
        for name in ("concurrency", "per_host", "attempts"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"FetchPolicy.{name} must be an integer >= 1, got {value!r}")
        if self.max_redirects < 0:
            raise ValueError(f"FetchPolicy.max_redirects must be >= 0, got {self.max_redirects}")

    @classmethod
    def from_settings(cls, settings: Settings) -> FetchPolicy:
        """The policy of ``settings`` (``fetch_allow``, timeouts, ``max_download_bytes``,
        ``fetch_concurrency``, ``fetch_per_host``)."""
        return cls(
            allow=tuple(settings.fetch_allow),
            connect_timeout=settings.fetch_connect_timeout,
            read_timeout=settings.fetch_read_timeout,
            max_bytes=settings.max_download_bytes,
            concurrency=settings.fetch_concurrency,
            per_host=settings.fetch_per_host,
        )

    @property
    def deadline_seconds(self) -> float:
        """Wall-clock budget of one fetch, redirects included."""
        if self.total_timeout is not None:
            return self.total_timeout
        return self.connect_timeout + 3 * self.read_timeout


def too_large(shown: str, max_bytes: int) -> FetchError:
    """The ``fetch-too-large`` error for the poster ``shown`` (a path or a URL without query)."""
    return FetchError(f"{shown} is larger than {max_bytes} bytes (max_download_bytes); "
                      "raise POSTERLAB_MAX_DOWNLOAD_BYTES if it is a real poster",
                      code="fetch-too-large")
