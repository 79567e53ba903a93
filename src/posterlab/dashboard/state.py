"""What every request of the dashboard shares: the store, the action settings, caches,
and the Jinja2 templates."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from urllib.parse import quote

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.requests import Request
from starlette.templating import Jinja2Templates

from posterlab.config import redact_url
from posterlab.service import Store

POLL_SECONDS = 2.0  # how often a run's page asks for fresh figures
QUEUE_TTL = 2.0  # s: queue depths are read from the broker at most this often


@dataclass
class Dashboard:
    """What the routes share: the store, the action settings, small caches."""

    store: Store
    allow_actions: bool = False
    token: str | None = None
    poll_seconds: float = POLL_SECONDS
    secret: bytes = field(default_factory=lambda: secrets.token_bytes(32))
    sessions: set[str] = field(default_factory=set)
    reports: dict[tuple[str, str], str] = field(default_factory=dict)
    _queues: tuple[float, dict[str, int] | None] = (0.0, None)

    @property
    def actions_ready(self) -> bool:
        """Actions are on and a token is set."""
        return self.allow_actions and bool(self.token)

    def queue_depths(self) -> dict[str, int] | None:
        """The broker's queue depths, re-read at most every :data:`QUEUE_TTL` seconds."""
        from posterlab.service.browse import queue_depths

        at, depths = self._queues
        if time.monotonic() - at > QUEUE_TTL:
            depths = queue_depths(self.store.settings)
            self._queues = (time.monotonic(), depths)
        return depths

    @property
    def database(self) -> str:
        return redact_url(self.store.settings.database_url)


def templates() -> Jinja2Templates:
    """Jinja2 templates from the package, every value escaped (titles are data)."""
    env = Environment(loader=PackageLoader("posterlab.dashboard", "templates"),
                      autoescape=select_autoescape(default=True, default_for_string=True))
    env.filters["seconds"] = _seconds
    env.filters["part"] = lambda v: quote(str(v), safe="")  # a path segment of a URL
    env.filters["num"] = lambda v: "" if v is None else f"{v:.3g}" if isinstance(v, float) \
        else str(v)
    env.filters["when"] = lambda v: v[:19].replace("T", " ") if v else ""
    return Jinja2Templates(env=env)


def _seconds(value: float | None) -> str:
    """An ETA as ``1h 02m``, ``3m 20s`` or ``45s``; empty when unknown."""
    if value is None:
        return ""
    s = int(value)
    if s >= 3600:
        return f"{s // 3600}h {s % 3600 // 60:02d}m"
    return f"{s // 60}m {s % 60:02d}s" if s >= 60 else f"{s}s"


def state_of(request: Request) -> Dashboard:
    """The dashboard state of the app serving ``request``."""
    state: Dashboard = request.app.state.dashboard
    return state
