"""The dashboard in a real browser (headless Chromium, Playwright) while real workers
process a real distributed run, on SQLite and on PostgreSQL.

One test per database, lean: the runs page lists the run, the run's page updates its
counts without a reload, failures show their reasons and examples with a hostile title
shown as text, and actions are refused without the token and work with it.
"""

from __future__ import annotations

import csv
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from posterlab.testing import env_for, run_cli, sample_manifest

pytestmark = [pytest.mark.slow, pytest.mark.redis, pytest.mark.data]

POSTERS = 60  # enough that a one-process worker is still busy when the page opens
WAIT_MS = 120_000


def _add_unfetchable(manifest: Path, title: str) -> None:
    """Two rows whose poster URL is on loopback (refused: they fail at fetch, retriably)."""
    with open(manifest, newline="", encoding="latin-1") as fh:
        fields = csv.DictReader(fh).fieldnames or []
    with open(manifest, "a", newline="", encoding="latin-1") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields)
        for i, name in enumerate((title, "Plain title")):
            writer.writerow({**dict.fromkeys(fields, ""), "imdbId": str(9_900_000 + i),
                             "Title": name, "IMDB Score": "5.0", "Genre": "Drama",
                             "Poster": f"http://127.0.0.1:9/poster-{i}.jpg"})


def _failures(url: str, at_least: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + WAIT_MS / 1000
    while time.monotonic() < deadline:
        groups = requests.get(f"{url}/api/runs/watched/failures", timeout=10).json()["groups"]
        if sum(g["count"] for g in groups) >= at_least:
            return groups
        time.sleep(0.5)
    raise AssertionError(f"fewer than {at_least} failures after {WAIT_MS} ms")


def test_a_run_is_watched_live_and_acted_on_in_the_browser(
        data_dir: Path, db_url: str, broker_url: str, tmp_path: Path, start_worker,
        start_dashboard, browser: Any, hostile: str, token: str) -> None:
    manifest = sample_manifest(data_dir, tmp_path / "m", POSTERS)
    _add_unfetchable(manifest, hostile)
    env = env_for(db_url, tmp_path / "blobs", broker_url, POSTERLAB_DASHBOARD_TOKEN=token)
    run_cli("db", "upgrade", env=env)
    worker = start_worker("-Q", "fetch,extract,faces", "-c", "1", "-n", "w1@test", env=env)
    server = start_dashboard("--allow-actions", env=env)
    worker.wait_ready()
    run_cli("enqueue", str(manifest), "--run", "watched", env=env)

    page = browser.new_page()
    page.goto(server.url + "/")
    page.click("a.run-link:text-is('watched')")
    page.wait_for_url(f"{server.url}/runs/watched")
    page.evaluate("window.stillTheSamePage = true")
    done = int(page.text_content('[data-count="done"]') or "0")
    assert done < POSTERS
    page.wait_for_function(
        "n => Number(document.querySelector('[data-count=\"done\"]').textContent) > n",
        arg=done, timeout=WAIT_MS)
    assert page.evaluate("window.stillTheSamePage") is True  # updated without a reload
    # the speed chart starts from the run's last minutes in the database, then grows
    page.wait_for_function("Number(document.getElementById('speed').dataset.points) >= 60",
                           timeout=WAIT_MS)

    groups = _failures(server.url, 2)
    page.goto(f"{server.url}/runs/watched/failures")
    code = groups[0]["code"]
    assert page.locator(f"section.failure[data-reason='{code}'] .count").text_content() == "2"
    titles = page.locator(f"section.failure[data-reason='{code}'] td.title").all_text_contents()
    assert sorted(titles) == sorted([hostile, "Plain title"])  # shown as text, not run
    assert page.title() != "pwned" and page.locator("b:text('bold')").count() == 0
    assert "127.0.0.1:9" in (page.locator("td.err").first.text_content() or "")

    page.goto(f"{server.url}/runs/watched")
    page.click("#retry-form button")
    assert "sign in with the dashboard token" in page.text_content("#message")
    page.goto(f"{server.url}/login?next=/runs/watched")
    page.fill("input[name=token]", token)
    page.click("form[action='/login'] button")
    page.wait_for_url(f"{server.url}/runs/watched")
    page.fill("#retry-form input[name=reason]", code)
    page.click("#retry-form button")
    assert "2 failed posters sent back" in page.text_content("#note")
    page.close()
