"""Settings: one typed, immutable object built once at start-up from env and flags.

Nothing here runs at import time. Build it with :func:`load_settings` in the CLI or a
worker's bootstrap, pass it down explicitly.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from posterlab.errors import ConfigError
from posterlab.features_schema import DEFAULT_PROFILE, PROFILES

FACE_PROVIDERS = ("local", "http", "azure")
_RATE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*/\s*(\d*)\s*(s|sec|second|m|min|minute|h|hour)s?\s*$")
_PERIODS = {"s": 1.0, "sec": 1.0, "second": 1.0, "m": 60.0, "min": 60.0, "minute": 60.0,
            "h": 3600.0, "hour": 3600.0}


@dataclass(frozen=True)
class Rate:
    """A quota: ``count`` calls per ``period`` seconds, with ``burst`` calls allowed at once."""

    count: float
    period: float
    burst: int = 1

    @property
    def interval(self) -> float:
        """Seconds between two calls at the steady rate."""
        return self.period / self.count

    @property
    def per_second(self) -> float:
        return self.count / self.period

    def __str__(self) -> str:
        return f"{self.count:g}/{self.period:g}s"


def parse_rate(text: str, *, burst: int | None = None) -> Rate:
    """Parse ``"10/s"``, ``"20/m"``, ``"100/5m"``, ``"1000/h"`` into a :class:`Rate`.

    >>> parse_rate("20/m")
    Rate(count=20.0, period=60.0, burst=1)
    """
    m = _RATE_RE.match(text or "")
    if not m:
        raise ConfigError(
            f"face API rate {text!r} is not a rate; write it like '10/s', '20/m' or '1000/h'"
        )
    count = float(m.group(1))
    if count <= 0:
        raise ConfigError(f"face API rate {text!r} must be positive")
    period = float(m.group(2) or 1) * _PERIODS[m.group(3)]
    return Rate(count=count, period=period, burst=max(1, int(burst if burst is not None else 1)))


# query parameters that carry a credential: password=, sslpassword=, key=, api_key=,
# token=, access_token=, secret=, client_secret=, sig=, X-Amz-Signature=, auth=, ...
_SECRET_PARAM_RE = re.compile(r"pass|pwd|key|token|secret|sig|auth|credential|session",
                              re.IGNORECASE)
_URL_RE = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://[^\s'\"<>`\x00-\x1f\x7f]+")
_SECRET_PAIR_RE = re.compile(
    r"(?i)\b((?:ssl)?pass(?:word|wd)?|pwd|secret|token|api[_-]?key|access[_-]?key|key)"
    r"(\s*[=:]\s*)(?!\*\*\*)([^\s&;,'\")\]]+)")
REDACTED = "***"


def redact_url(url: str) -> str:
    """``url`` with every credential hidden: the userinfo's password and the values of
    query parameters that carry one (``password=``, ``key=``, ``token=``, ...).

    >>> redact_url("redis://:secret@host:6379/0")
    'redis://:***@host:6379/0'
    >>> redact_url("postgresql://u@db/x?sslmode=require&password=pw&api_key=k")
    'postgresql://u@db/x?sslmode=require&password=***&api_key=***'
    >>> redact_url("sqlite:////var/lib/posterlab.db")
    'sqlite:////var/lib/posterlab.db'
    """
    try:
        parts = urlsplit(url)
        password = parts.password
        host, port = parts.hostname or "", parts.port
    except ValueError:
        return "<unparseable url>"
    if password is not None:
        user = parts.username or ""
        netloc = f"{user}:{REDACTED}@{host}" + (f":{port}" if port else "")
        parts = parts._replace(netloc=netloc)
    if parts.query:
        parts = parts._replace(query="&".join(_redact_param(p) for p in parts.query.split("&")))
    # unchanged, the URL is returned as given: urlunsplit would turn sqlite:////abs/path
    # (an empty host, then an absolute path) into sqlite://abs/path, another database
    return url if parts == urlsplit(url) else urlunsplit(parts)


def _redact_param(param: str) -> str:
    name, eq, _value = param.partition("=")
    return f"{name}={REDACTED}" if eq and _SECRET_PARAM_RE.search(name) else param


def redact_text(text: str) -> str:
    """``text`` (an error message, a log line) with the credentials of every URL in it
    hidden, and ``password=...``-like pairs outside URLs too.

    >>> redact_text("cannot connect to postgresql://u:pw@h/db?password=pw2 (password=pw3)")
    'cannot connect to postgresql://u:***@h/db?password=*** (password=***)'
    """
    if "=" not in text and "@" not in text and ":" not in text:
        return text
    text = _URL_RE.sub(lambda m: redact_url(m.group()), text)
    return _SECRET_PAIR_RE.sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}", text)


@dataclass(frozen=True)
class Settings:
    """Everything a posterlab process needs to know. Immutable; derive with :meth:`with_`."""

    database_url: str = "sqlite:///posterlab.db"
    broker_url: str = "redis://localhost:6379/0"
    blob_dir: Path = Path("posterlab-blobs")
    face_provider: str = "local"
    face_api_url: str | None = None
    face_api_key: str | None = field(default=None, repr=False)
    face_api_rate: Rate = field(default_factory=lambda: Rate(10.0, 1.0, 1))
    face_api_max_retries: int = 8
    fetch_allow: tuple[str, ...] = ()
    fetch_connect_timeout: float = 5.0
    fetch_read_timeout: float = 20.0
    fetch_concurrency: int = 32  # downloads at once per process: a thread each, mostly waiting
    fetch_per_host: int = 8  # at once to one host: polite to a CDN, still 8x one at a time
    # messages waiting in any one queue; the rest wait in the database (deferred) until the
    # queue has room, so the broker's memory stays flat however big the run
    max_queued: int = 1000
    max_download_bytes: int = 20 * 1024 * 1024  # posters are ~30 KB; 20 MB is generous
    max_pixels: int = 50_000_000  # decompression-bomb guard, checked before decoding
    # memory one image's decode may take (width x height x bytes a pixel, every conversion
    # to float RGB counted), checked before decoding; keeps a process far under 1 GB
    max_image_bytes: int = 384 * 1024 * 1024
    # a poster whose processing killed its process this many times fails `worker-crashed`
    max_crashes: int = 2
    # a claim's lease: renewed by a living worker every third of it, re-queued once expired
    lease_seconds: int = 10
    stuck_after_seconds: float = 900.0  # a claimed stage untouched this long is re-queued
    # Redis redelivers a message left unacknowledged this long (a worker died holding it);
    # longer than any task and retry countdown, so a slow task is not run twice
    visibility_timeout: int = 2 * 3600
    preprocess: Mapping[str, Any] = field(default_factory=dict)  # overrides of PreprocessConfig
    # overrides of the local detector's parameters (LocalParams fields)
    face_params: Mapping[str, Any] = field(default_factory=dict)
    # which features a new run computes: course | standard | full (features_schema.PROFILES)
    profile: str = DEFAULT_PROFILE

    def preprocess_overrides(self) -> dict[str, Any]:
        """The preprocessing a new run carries: ``preprocess`` with the profile in it."""
        overrides = dict(self.preprocess)
        if self.profile != DEFAULT_PROFILE:
            overrides["profile"] = self.profile
        return overrides
    synthetic: bool = False  # made-up data (the demo): kept with the run, said by every report

    def with_(self, **changes: Any) -> Settings:
        """A copy with some fields changed; ``None`` values are ignored (unset CLI flags)."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})

    def redacted(self) -> dict[str, Any]:
        """The settings as a dict fit for logs and ``status``: no key, no passwords."""
        return {
            "database_url": redact_url(self.database_url),
            "broker_url": redact_url(self.broker_url),
            "blob_dir": str(self.blob_dir),
            "face_provider": self.face_provider,
            "face_api_url": redact_url(self.face_api_url) if self.face_api_url else None,
            "face_api_key": "***" if self.face_api_key else None,
            "face_api_rate": str(self.face_api_rate),
            "fetch_allow": list(self.fetch_allow),
            "profile": self.profile,
            "max_queued": self.max_queued,
            "synthetic": self.synthetic,
            "face_params": dict(self.face_params),
        }


def load_settings(env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """Build :class:`Settings` from the environment, then apply non-``None`` overrides.

    Environment: ``POSTERLAB_DATABASE_URL``, ``POSTERLAB_BROKER_URL``,
    ``POSTERLAB_BLOB_DIR``, ``POSTERLAB_FACE_PROVIDER``, ``POSTERLAB_FACE_API_URL``,
    ``POSTERLAB_FACE_API_KEY``, ``POSTERLAB_FACE_API_RATE`` (``10/s``), ``POSTERLAB_PROFILE``
    (``course``, ``standard`` or ``full``: the features a new run computes),
    ``POSTERLAB_FACE_API_BURST``, ``POSTERLAB_FETCH_ALLOW`` (comma-separated hosts or CIDRs),
    ``POSTERLAB_FETCH_CONCURRENCY`` (downloads at once, 32), ``POSTERLAB_FETCH_PER_HOST``
    (downloads at once to one host, 8), ``POSTERLAB_MAX_QUEUED`` (messages waiting in any
    one queue, 1000),
    ``POSTERLAB_MAX_PIXELS``, ``POSTERLAB_MAX_IMAGE_BYTES`` (memory budget of one decode,
    384 MiB), ``POSTERLAB_MAX_CRASHES`` (2), ``POSTERLAB_LEASE_SECONDS`` (10),
    ``POSTERLAB_MAX_DOWNLOAD_BYTES``, ``POSTERLAB_STUCK_AFTER``
    (seconds), ``POSTERLAB_VISIBILITY_TIMEOUT`` (seconds), ``POSTERLAB_PREPROCESS`` (a JSON
    object of :class:`~posterlab.imaging.preprocess.PreprocessConfig` overrides, e.g.
    ``{"resize.height": 160}``; it changes the feature version, so features are recomputed),
    ``POSTERLAB_FACE_PARAMS`` (a JSON object of
    :class:`~posterlab.face_params.LocalParams` overrides for the local detector, e.g.
    ``{"conf_threshold": 0.7}``, or a preset's name: ``accurate``; they enter the face
    cache key, so faces are recounted).
    """
    env = os.environ if env is None else env
    values: dict[str, Any] = {}
    for name, key, convert in _TEXT_SETTINGS:
        if env.get(key):
            values[name] = convert(env[key])
    rate = _rate_from_env(env)
    if rate is not None:
        values["face_api_rate"] = rate
    for name, key in _INT_SETTINGS:
        number = _int(env.get(key), key)
        if number is not None:
            values[name] = number
    if env.get("POSTERLAB_PREPROCESS"):
        values["preprocess"] = _json_object(env["POSTERLAB_PREPROCESS"], "POSTERLAB_PREPROCESS")
    if env.get("POSTERLAB_FACE_PARAMS"):
        from posterlab.face_params import PRESETS

        text = env["POSTERLAB_FACE_PARAMS"].strip()
        values["face_params"] = dict(PRESETS[text]) if text in PRESETS else \
            _json_object(text, "POSTERLAB_FACE_PARAMS")
    settings = Settings(**values).with_(**overrides)
    if isinstance(settings.face_api_rate, str):
        settings = replace(settings, face_api_rate=parse_rate(settings.face_api_rate))
    validate(settings)
    return settings


def split_list(text: str) -> tuple[str, ...]:
    """The non-empty items of a comma-separated list, stripped: ``"a, b,"`` -> ``("a", "b")``."""
    return tuple(part.strip() for part in text.split(",") if part.strip())


# Settings field, environment variable, text -> value: the settings no text can make invalid.
_TEXT_SETTINGS: tuple[tuple[str, str, Callable[[str], Any]], ...] = (
    ("database_url", "POSTERLAB_DATABASE_URL", str),
    ("broker_url", "POSTERLAB_BROKER_URL", str),
    ("blob_dir", "POSTERLAB_BLOB_DIR", Path),
    ("face_provider", "POSTERLAB_FACE_PROVIDER", lambda text: text.strip().lower()),
    ("face_api_url", "POSTERLAB_FACE_API_URL", str),
    ("face_api_key", "POSTERLAB_FACE_API_KEY", str),
    ("fetch_allow", "POSTERLAB_FETCH_ALLOW", split_list),
    ("profile", "POSTERLAB_PROFILE", lambda text: text.strip().lower()),
)
_INT_SETTINGS = (
    ("max_pixels", "POSTERLAB_MAX_PIXELS"),
    ("max_image_bytes", "POSTERLAB_MAX_IMAGE_BYTES"),
    ("max_crashes", "POSTERLAB_MAX_CRASHES"),
    ("lease_seconds", "POSTERLAB_LEASE_SECONDS"),
    ("max_download_bytes", "POSTERLAB_MAX_DOWNLOAD_BYTES"),
    ("stuck_after_seconds", "POSTERLAB_STUCK_AFTER"),
    ("visibility_timeout", "POSTERLAB_VISIBILITY_TIMEOUT"),
    ("fetch_concurrency", "POSTERLAB_FETCH_CONCURRENCY"),
    ("fetch_per_host", "POSTERLAB_FETCH_PER_HOST"),
    ("max_queued", "POSTERLAB_MAX_QUEUED"),
)
# Settings that count something and must be at least one, with the variable that sets them.
_AT_LEAST_ONE = (
    ("max_image_bytes", "POSTERLAB_MAX_IMAGE_BYTES"),
    ("max_crashes", "POSTERLAB_MAX_CRASHES"),
    ("lease_seconds", "POSTERLAB_LEASE_SECONDS"),
    ("fetch_concurrency", "POSTERLAB_FETCH_CONCURRENCY"),
    ("fetch_per_host", "POSTERLAB_FETCH_PER_HOST"),
    ("max_queued", "POSTERLAB_MAX_QUEUED"),
)


def _rate_from_env(env: Mapping[str, str]) -> Rate | None:
    """``POSTERLAB_FACE_API_RATE`` with ``POSTERLAB_FACE_API_BURST``; a burst alone is 10/s."""
    burst = _int(env.get("POSTERLAB_FACE_API_BURST"), "POSTERLAB_FACE_API_BURST")
    if env.get("POSTERLAB_FACE_API_RATE"):
        return parse_rate(env["POSTERLAB_FACE_API_RATE"], burst=burst)
    return Rate(10.0, 1.0, burst) if burst is not None else None


def validate(settings: Settings) -> None:
    """Raise :class:`ConfigError` naming the setting that cannot work."""
    if settings.face_provider not in FACE_PROVIDERS:
        raise ConfigError(
            f"face provider {settings.face_provider!r} is unknown; "
            f"use one of {', '.join(FACE_PROVIDERS)} (POSTERLAB_FACE_PROVIDER or --face-provider)"
        )
    if settings.profile not in PROFILES:
        raise ConfigError(f"profile {settings.profile!r} is unknown; use one of "
                          f"{', '.join(PROFILES)} (POSTERLAB_PROFILE or --profile)")
    if settings.preprocess:
        from posterlab.imaging.preprocess import PreprocessConfig

        try:
            PreprocessConfig.from_mapping(settings.preprocess)
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"POSTERLAB_PREPROCESS: {exc}") from None
    if settings.face_params:
        from posterlab.face_params import LocalParams

        try:
            LocalParams.from_mapping(settings.face_params)
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"POSTERLAB_FACE_PARAMS: {exc}") from None
    for name, key in _AT_LEAST_ONE:
        value = getattr(settings, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"{key} must be a whole number of at least 1, got {value!r}")
    check_broker_url(settings.broker_url)
    if settings.face_provider in ("http", "azure") and not settings.face_api_url:
        raise ConfigError(
            f"face provider {settings.face_provider!r} needs POSTERLAB_FACE_API_URL "
            "(e.g. http://127.0.0.1:5005 for `posterlab faceapi serve`)"
        )


BROKER_SCHEMES = ("redis", "rediss", "unix")


def check_broker_url(url: str) -> None:
    """Raise :class:`ConfigError` unless ``url`` is a Redis URL posterlab can use.

    >>> check_broker_url("redis://localhost:6379/0")
    """
    try:
        parts = urlsplit(url)
        scheme, port = parts.scheme.lower(), parts.port  # a port that is not a number raises
    except ValueError:
        scheme, port = "", None
    fine = scheme in BROKER_SCHEMES and (scheme == "unix" or bool(parts.hostname))
    if not fine or (port is not None and not 0 < port < 65536):
        raise ConfigError(
            f"broker URL {redact_url(url)!r} is not a Redis URL: Redis is the supported "
            "broker; set POSTERLAB_BROKER_URL or --broker to e.g. redis://localhost:6379/0 "
            "(rediss:// for TLS)")


def _json_object(text: str, name: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        example = ('{"conf_threshold": 0.7}' if name == "POSTERLAB_FACE_PARAMS"
                   else '{"resize.height": 160, "grey_bins": 32}')
        raise ConfigError(f"{name} is not valid JSON ({exc.msg}); write e.g. '{example}'"
                          ) from None
    if not isinstance(value, dict):
        raise ConfigError(f"{name} must be a JSON object of parameters")
    return value


def _int(text: str | None, name: str) -> int | None:
    if text is None or text.strip() == "":
        return None
    try:
        return int(text)
    except ValueError:
        raise ConfigError(f"{name}={text!r} is not an integer") from None
