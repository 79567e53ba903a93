"""The dashboard's JSON API, pages and actions over HTTP, on SQLite and PostgreSQL.

A real ``posterlab dashboard`` process each time; the browser tests are in
test_browser.py.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests

from posterlab.testing import run_cli

pytestmark = pytest.mark.data


def test_the_api_answers_the_objects_of_the_command_line(
        seeded: dict[str, Any], start_dashboard, hostile: str) -> None:
    env = seeded["env"]
    base = start_dashboard(env=env).url + "/api/runs"
    listed = requests.get(base, timeout=10).json()
    assert [r["run"] for r in listed] == ["seeded"]
    assert listed[0]["counts"] == {"fetch": 2, "extract": 0, "faces": 0, "done": 3, "failed": 2,
                                  "cancelled": 0}

    status = requests.get(f"{base}/seeded", timeout=10).json()
    cli = json.loads(run_cli("status", "--json", "--run", "seeded", env=env).stdout)
    assert status.keys() == cli.keys()
    assert status["counts"] == cli["counts"] and status["total"] == 7

    groups = requests.get(f"{base}/seeded/failures", timeout=10).json()["groups"]
    assert [(g["code"], g["count"]) for g in groups] == [("http_404", 2)]
    assert {e["title"] for e in groups[0]["examples"]} == {"Movie 5", hostile}

    page = requests.get(f"{base}/seeded/posters", params={"offset": 1, "limit": 2},
                        timeout=10).json()
    assert [p["movie_key"] for p in page["posters"]] == ["101", "102"]
    one = requests.get(f"{base}/seeded/posters/100", timeout=10).json()
    assert one["sha256"] == seeded["sha"] and one["image_size"] == [182, 268]

    speed = requests.get(f"{base}/seeded/speed", timeout=10).json()
    assert speed["run"] == "seeded" and len(speed["points"]) == 60
    ended = sum(p["rate"] for p in speed["points"]) * speed["bucket_seconds"]
    assert round(ended) == 5  # the 3 done and 2 failed, all within the last ten minutes

    bad = requests.get(f"{base}/seeded/posters", params={"limit": 10_000}, timeout=10)
    assert bad.status_code == 400 and "limit" in bad.json()["error"]
    missing = requests.get(f"{base}/nope", timeout=10)
    assert missing.status_code == 404 and "no run called 'nope'" in missing.json()["error"]


def test_pages_escape_manifest_text_and_serve_only_the_blob_store(
        seeded: dict[str, Any], start_dashboard) -> None:
    server = start_dashboard(env=seeded["env"])
    assert server.url.startswith("http://127.0.0.1:")
    assert "http://127.0.0.1:" in server.output()  # the default host, said at start
    failures = requests.get(f"{server.url}/runs/seeded/failures", timeout=10)
    assert failures.status_code == 200
    assert "<script>document" not in failures.text and "<b>bold" not in failures.text
    assert "&lt;script&gt;document.title=&#34;pwned&#34;&lt;/script&gt;" in failures.text
    assert "script-src 'self'" in failures.headers["Content-Security-Policy"]

    image = requests.get(f"{server.url}/blobs/{seeded['sha']}", timeout=10)
    assert image.status_code == 200 and image.headers["content-type"] == "image/jpeg"
    for path in ("/blobs/..%2Fposterlab.db", "/blobs/../posterlab.db", "/blobs/" + "0" * 64,
                 "/blobs/" + seeded["sha"].upper()):
        assert requests.get(server.url + path, timeout=10).status_code == 404, path


def test_actions_are_refused_without_the_token_and_work_with_it(
        seeded: dict[str, Any], start_dashboard, token: str) -> None:
    env = seeded["env"]
    refused = run_cli("dashboard", "--allow-actions", env=env, check=False)
    assert refused.returncode == 2 and "POSTERLAB_DASHBOARD_TOKEN" in refused.stderr

    off = start_dashboard(env=env)
    answer = requests.post(f"{off.url}/runs/seeded/retry", timeout=10)
    assert answer.status_code == 403 and "--allow-actions" in answer.text

    on = start_dashboard("--allow-actions", env={**env, "POSTERLAB_DASHBOARD_TOKEN": token})
    retry = f"{on.url}/runs/seeded/retry"
    bearer = {"Authorization": f"Bearer {token}"}
    assert requests.get(retry, timeout=10).status_code == 405  # POST only
    assert requests.post(retry, timeout=10).status_code == 403  # no token
    wrong = {"Authorization": "Bearer not-the-token"}
    assert requests.post(retry, headers=wrong, timeout=10).status_code == 403
    cross = requests.post(retry, headers={**bearer, "Origin": "https://evil.example"},
                          timeout=10)
    assert cross.status_code == 403 and "another site" in cross.text
    with requests.Session() as browser:  # signed in, but a form without its CSRF token
        login = browser.post(f"{on.url}/login", data={"token": token}, timeout=10)
        assert login.status_code == 200 and "posterlab_session" in browser.cookies
        assert browser.post(retry, data={"reason": "http_404"}, timeout=10).status_code == 403

    done = requests.post(retry, headers=bearer, data={"reason": "http_404"},
                         allow_redirects=False, timeout=10)
    assert done.status_code == 303 and "done=retried" in done.headers["location"]
    status = requests.get(f"{on.url}/api/runs/seeded", timeout=10).json()
    assert status["counts"]["failed"] == 0 and status["counts"]["fetch"] == 4
