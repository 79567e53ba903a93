"""Poster URLs served by a real HTTP server on 127.0.0.1: errors, retries, a redirect to the
cloud metadata address, an oversized body; and all of it refused when 127.0.0.1 is not
allowed."""

from __future__ import annotations

import csv
import threading
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from posterlab.testing import env_for, rows, run_cli

pytestmark = pytest.mark.slow

CAP = 100_000  # POSTERLAB_MAX_DOWNLOAD_BYTES for these runs; real posters are ~30 KB


class PosterServer:
    def __init__(self, poster: bytes) -> None:
        self.hits: Counter[str] = Counter()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.hits[self.path] += 1
                if self.path == "/ok.jpg":
                    self._send(200, poster, "image/jpeg")
                elif self.path == "/missing.jpg":
                    self._send(404, b"not here", "text/plain")
                elif self.path == "/broken.jpg":
                    self._send(500, b"oops", "text/plain")
                elif self.path == "/metadata.jpg":
                    self.send_response(302)
                    self.send_header("Location", "http://169.254.169.254/latest/meta-data/")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                elif self.path == "/huge.jpg":
                    self._send(200, poster + b"\0" * (CAP * 3), "image/jpeg")
                elif self.path == "/huge-undeclared.jpg":
                    self.send_response(200)
                    self.send_header("Content-Type", "image/jpeg")
                    self.send_header("Connection", "close")
                    self.end_headers()
                    self.wfile.write(poster + b"\0" * (CAP * 3))
                    self.close_connection = True
                else:
                    self._send(404, b"?", "text/plain")

            def _send(self, code: int, body: bytes, kind: str) -> None:
                self.send_response(code)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def poster_server(data_dir: Path) -> Iterator[PosterServer]:
    poster = sorted((data_dir / "posters" / "posters").glob("*.jpg"))[0].read_bytes()
    server = PosterServer(poster)
    yield server
    server.close()


CASES = {  # path -> (status, error code)
    "/ok.jpg": ("done", None),
    "/missing.jpg": ("failed", "fetch-http-404"),
    "/broken.jpg": ("failed", "fetch-http-500"),
    "/metadata.jpg": ("failed", "fetch-refused-address"),
    "/huge.jpg": ("failed", "fetch-too-large"),
    "/huge-undeclared.jpg": ("failed", "fetch-too-large"),
}


def _manifest(folder: Path, server: PosterServer) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "urls.csv"
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["imdbId", "Title", "IMDB Score", "Genre", "Poster"])
        for i, case in enumerate(CASES, start=1):
            w.writerow([str(i), case, "6.0", "Drama", server.url(case)])
    return path


def test_urls_on_an_allowed_local_server(poster_server: PosterServer, tmp_path: Path) -> None:
    db_url = f"sqlite:///{tmp_path / 'p.db'}"
    env = env_for(db_url, tmp_path / "blobs", POSTERLAB_FETCH_ALLOW="127.0.0.1",
                  POSTERLAB_MAX_DOWNLOAD_BYTES=str(CAP))
    run_cli("run", str(_manifest(tmp_path / "m", poster_server)), "--workers", "2",
            "--run", "urls", "--no-analysis", env=env, timeout=120)

    posters = {p["title"]: p for p in rows(db_url, "select * from posters")}
    for case, (status, code) in CASES.items():
        p = posters[case]
        assert (p["status"], p["error_code"]) == (status, code), (case, p["error"])
    # 500 is retried (4 attempts in all), then the poster fails saying it gave up
    assert poster_server.hits["/broken.jpg"] == 4
    assert "gave up after 4 attempts" in posters["/broken.jpg"]["error"]
    assert posters["/broken.jpg"]["attempts"] == 4
    # 404 and the refused redirect are not retried
    assert poster_server.hits["/missing.jpg"] == 1
    assert poster_server.hits["/metadata.jpg"] == 1
    assert "169.254.169.254" in posters["/metadata.jpg"]["error"]
    assert "link-local" in posters["/metadata.jpg"]["error"]
    # nothing over the cap reached the blob store
    sizes = [f.stat().st_size for f in (tmp_path / "blobs").rglob("*") if f.is_file()]
    assert sizes and max(sizes) <= CAP


def test_the_same_urls_are_refused_when_nothing_is_allowed(
        poster_server: PosterServer, tmp_path: Path) -> None:
    db_url = f"sqlite:///{tmp_path / 'p.db'}"
    env = env_for(db_url, tmp_path / "blobs", POSTERLAB_FETCH_ALLOW="",
                  POSTERLAB_MAX_DOWNLOAD_BYTES=str(CAP))
    refused = run_cli("run", str(_manifest(tmp_path / "m", poster_server)), "--workers", "1",
                      "--run", "urls", "--no-analysis", env=env, timeout=120, check=False)
    assert refused.returncode == 1  # every poster failed
    assert "posterlab failures --run urls" in refused.stderr

    posters = rows(db_url, "select * from posters")
    assert len(posters) == len(CASES)
    for p in posters:
        assert (p["status"], p["error_code"]) == ("failed", "fetch-refused-address"), p
        assert "loopback" in p["error"] and "POSTERLAB_FETCH_ALLOW" in p["error"]
    assert sum(poster_server.hits.values()) == 0  # not one request left the process
