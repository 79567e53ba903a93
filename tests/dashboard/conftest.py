"""Fixtures of the dashboard tests: a seeded run, real dashboard servers, a real browser."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from posterlab.manifest import PosterRef
from posterlab.storage import posters, runs
from posterlab.storage.blobs import BlobStore
from posterlab.storage.engine import make_engine, session_factory, transaction
from posterlab.storage.schema import ensure_schema
from posterlab.testing import DashboardServer, chromium_path, env_for

from support import unavailable

HOSTILE = '<script>document.title="pwned"</script><b>bold</b>'
TOKEN = "a-dashboard-token-of-some-length"


@pytest.fixture
def hostile() -> str:
    """A title that would run a script and bold text if a page did not escape it."""
    return HOSTILE


@pytest.fixture
def token() -> str:
    """The ``POSTERLAB_DASHBOARD_TOKEN`` of the tests."""
    return TOKEN


@pytest.fixture
def seeded(db_url: str, tmp_path: Path, data_dir: Path) -> dict[str, Any]:
    """A run ``seeded`` made through the storage layer: 3 done (one image stored), 2 at
    fetch, 2 failed by reason (one titled with markup), and its environment."""
    blobs = BlobStore(tmp_path / "blobs")
    image = next((data_dir / "posters" / "posters").glob("*.jpg")).read_bytes()
    sha = blobs.put(image)
    engine = make_engine(db_url)
    ensure_schema(engine)
    try:
        with transaction(session_factory(engine)) as s:
            run, _ = runs.get_or_create_run(s, name="seeded", manifest="m.csv",
                                            mode="embedded", feature_version="v1",
                                            face_key="local", settings={})
            refs = [PosterRef(row=i, imdb_id=str(100 + i), title=f"Movie {i}", rating=float(i),
                              genres=("Drama",), source=f"/p/{i}.jpg") for i in range(6)]
            refs.append(PosterRef(row=6, imdb_id="106", title=HOSTILE, rating=5.0, genres=(),
                                  source="/p/6.jpg"))
            ids = posters.add_posters(s, run.id, refs).queued
            for i, pid in enumerate(ids[:3]):
                posters.finish(s, pid, "fetch", status="done", sha256=sha, face_count=i)
            for pid, code in ((ids[5], "http_404"), (ids[6], "http_404")):
                posters.finish(s, pid, "fetch", status="failed", error=f"{code}: not found",
                               error_code=code)
    finally:
        engine.dispose()
    return {"env": env_for(db_url, tmp_path / "blobs"), "ids": ids, "sha": sha}


@pytest.fixture
def start_dashboard(tmp_path: Path) -> Iterator[Callable[..., DashboardServer]]:
    """``start_dashboard(*args, env=...)``: real dashboard servers, stopped after the test."""
    servers: list[DashboardServer] = []

    def start(*args: str, env: dict[str, str]) -> DashboardServer:
        server = DashboardServer(args, env, tmp_path / f"dashboard-{len(servers)}.log")
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Headless Chromium from the system packages, driven by Playwright (no download)."""
    path = chromium_path()
    if path is None:
        unavailable("Chromium", "not installed: `apt-get install -y chromium`")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        unavailable("Playwright", str(exc))
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=path, args=["--no-sandbox"])
        yield chromium
        chromium.close()
