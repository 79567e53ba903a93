"""Hostile text, swapped paths, outputs and secrets through the real command line.

Each case is a real ``posterlab`` process on SQLite and, where text meets the database,
on PostgreSQL too: what the rows hold is cleaned or refused row by row, never the run.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import requests
import sqlalchemy as sa
from PIL import Image

from posterlab.testing import env_for, free_port, posterlab_cmd, rows, run_cli

pytestmark = pytest.mark.slow

HEADER = b"imdbId,Title,IMDB Score,Genre,poster_file,Poster\n"


def jpeg(seed: int) -> bytes:
    """A small poster-sized JPEG of noise (distinct bytes per seed)."""
    pixels = np.random.default_rng(seed).integers(0, 255, (268, 182, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG", quality=80)
    return buffer.getvalue()


def poster_folder(folder: Path, count: int) -> Path:
    (folder / "posters").mkdir(parents=True)
    for i in range(1, count + 1):
        (folder / "posters" / f"{i}.jpg").write_bytes(jpeg(i))
    return folder


def by_row(db_url: str) -> dict[int, dict]:
    return {p["row"]: p for p in rows(db_url, "select * from posters order by id")}


# ------------------------------------------------------------------------------ text


def hostile_text_manifest(folder: Path) -> Path:
    """Rows 1-8; what each must become is asserted in the test below."""
    inside = b"".join(b"%d,Inside %d,5,Drama,posters/1.jpg,\n" % (n, n) for n in range(900, 6000))
    lines = [
        b"1,Am\xc3\xa9lie,8.3,Comedy|Romance,posters/1.jpg,\n",  # utf-8
        b"2,Caf\xe9 noir,6.2,Drama,posters/2.jpg,\n",  # latin-1 in a utf-8 file
        b"3,Nul\x00 title\x1b[31m,7,Dra\x00ma|\x1b]8;;http://evil\x07Comedy,posters/3.jpg,\n",
        b'4,"' + inside + b'",7,Drama,posters/4.jpg,\n',  # a quoted field over csv's limit
        b"5,Real next row,6,Drama,posters/5.jpg,\n",
        b"6,Url with NUL,6,Drama,,https://img.example.org/a\x00b.jpg\n",
        b"tt0000001,Duplicate of row 1,2,Drama,posters/6.jpg,\n",
        b"7,Fine,6,Drama,posters/7.jpg,\n",
    ]
    manifest = folder / "index.csv"
    manifest.write_bytes(HEADER + b"".join(lines))
    assert manifest.stat().st_size < 1 << 20  # the whole file is what decides the encoding
    return manifest


def test_hostile_text_is_cleaned_or_refused_row_by_row_on_both_databases(
        db_url: str, tmp_path: Path) -> None:
    folder = poster_folder(tmp_path / "m", 7)
    manifest = hostile_text_manifest(folder)
    env = env_for(db_url, tmp_path / "blobs")
    out = run_cli("run", str(manifest), "--workers", "1", "--run", "text", "--no-analysis",
                  env=env, timeout=180)
    said = out.stdout + out.stderr
    assert "Traceback" not in said
    assert "rows 2 were read as latin-1" in said  # the repaired row, named
    assert "1 duplicate id" in said

    posters = by_row(db_url)
    assert sorted(posters) == [1, 2, 3, 4, 5, 6, 7, 8]
    assert (posters[1]["title"], posters[1]["status"]) == ("Am\u00e9lie", "done")
    assert (posters[2]["title"], posters[2]["status"]) == ("Caf\u00e9 noir", "done")
    assert posters[3]["title"] == "Nul title[31m" and posters[3]["status"] == "done"
    assert posters[3]["genres"] == "Drama|]8;;http://evilComedy"
    assert (posters[4]["status"], posters[4]["error_code"]) == ("failed", "manifest-bad-row")
    assert (posters[5]["title"], posters[5]["imdb_id"], posters[5]["status"]) == (
        "Real next row", "5", "done")
    assert posters[6]["error_code"] == "manifest-bad-url" and "\\x00" in posters[6]["error"]
    dup = posters[7]
    assert (dup["status"], dup["error_code"], dup["imdb_id"], dup["movie_key"]) == (
        "failed", "manifest-duplicate", None, "row:7")
    assert "already on row 1" in dup["error"]
    assert posters[1]["imdb_id"] == "1" and posters[1]["sha256"]  # the first one untouched
    assert posters[8]["status"] == "done"
    assert not any("Inside" in (p["title"] or "") for p in posters.values())
    for p in posters.values():
        for value in (p["title"], p["genres"], p["error"], p["source"]):
            assert value is None or not any(ord(c) < 32 for c in value), (p["row"], value)
    run = rows(db_url, "select total, pending from runs")[0]
    assert (run["total"], run["pending"]) == (8, 0)

    found = json.loads(run_cli("failures", "--json", env=env).stdout)
    groups = {g["code"]: g for g in found["groups"]}
    assert groups["manifest-duplicate"]["count"] == 1
    assert groups["manifest-duplicate"]["examples"][0]["row"] == 7
    if not db_url.startswith("sqlite"):
        return  # what follows is not about the database: once is enough
    # the same manifest again adds nothing: the duplicate is not counted twice
    again = run_cli("run", str(manifest), "--workers", "1", "--run", "text", "--no-analysis",
                    env=env, timeout=180)
    assert "0 to process" in again.stderr
    assert len(by_row(db_url)) == 8


# ----------------------------------------------------------------------------- paths


def test_a_symlink_swapped_in_after_the_run_is_refused_by_retry(tmp_path: Path) -> None:
    folder = poster_folder(tmp_path / "m", 1)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "2.jpg").write_bytes(jpeg(2))  # a valid poster: followed, it would be done
    (outside / "3.jpg").write_bytes(jpeg(3))
    manifest = folder / "index.csv"
    manifest.write_bytes(HEADER + b"1,One,6,Drama,posters/1.jpg,\n"
                         b"2,Two,6,Drama,posters/2.jpg,\n3,Three,6,Drama,sub/3.jpg,\n")
    db_url = f"sqlite:///{tmp_path / 'p.db'}"
    env = env_for(db_url, tmp_path / "blobs")
    run_cli("run", str(manifest), "--workers", "1", "--run", "paths", "--no-analysis",
            env=env, timeout=120)
    assert [p["error_code"] for p in by_row(db_url).values()] == [
        None, "fetch-not-found", "fetch-not-found"]

    (folder / "posters" / "2.jpg").symlink_to(outside / "2.jpg")  # the file, swapped
    (folder / "sub").symlink_to(outside)  # a folder on the path, swapped
    run_cli("retry", "--run", "paths", env=env, timeout=120)
    posters = by_row(db_url)
    assert posters[1]["status"] == "done"
    for row in (2, 3):
        assert (posters[row]["status"], posters[row]["error_code"]) == (
            "failed", "fetch-path-escape"), posters[row]["error"]
        assert posters[row]["sha256"] is None
    stored = {p.name for p in (tmp_path / "blobs").rglob("*") if p.is_file()}
    for name in ("2.jpg", "3.jpg"):
        assert hashlib.sha256((outside / name).read_bytes()).hexdigest() not in "".join(stored)


# --------------------------------------------------------------------------- outputs


def test_exports_reports_and_failures_show_hostile_text_inertly(tmp_path: Path) -> None:
    folder = poster_folder(tmp_path / "m", 6)
    titles = ["=HYPERLINK(\"http://evil\",\"x\")", "+1+1", "-2-2", "@SUM(A1)",
              "<script>alert(1)</script> [x](http://evil) *b*", "Plain"]
    lines = [f'{i},"{t.replace(chr(34), chr(34) * 2)}",6,<b>Drama</b>,posters/{i}.jpg,\n'
             for i, t in enumerate(titles, start=1)]
    lines.append("[/bold],Bad id,6,Drama,posters/1.jpg,\n")
    manifest = folder / "index.csv"
    manifest.write_bytes(HEADER + "".join(lines).encode())
    db_url = f"sqlite:///{tmp_path / 'p.db'}"
    env = env_for(db_url, tmp_path / "blobs")
    name = "r_<i>un</i>*[x](http://e)"
    run_cli("run", str(manifest), "--workers", "1", "--run", name, "--no-analysis",
            env=env, timeout=180)
    # an error text from elsewhere (an older version, a server) with terminal escapes
    engine = sa.create_engine(db_url)
    with engine.begin() as conn:
        conn.execute(sa.text("update posters set error = :e where title = 'Bad id'"),
                     {"e": "manifest-bad-id: [/bold] \x1b]8;;http://evil\x1b\\link\x1b]8;;"
                           "\x1b\\ \x1b[2J\x1b]0;title\x07 end"})
    engine.dispose()

    failures = run_cli("failures", env=env)
    assert "[/bold]" in failures.stdout and "link" in failures.stdout
    assert "\x1b" not in failures.stdout and "\x07" not in failures.stdout

    neutral = list(csv.DictReader(io.StringIO(run_cli("export", "--format", "csv",
                                                      env=env).stdout)))
    raw = list(csv.DictReader(io.StringIO(run_cli("export", "--format", "csv", "--raw",
                                                  env=env).stdout)))
    assert [r["title"] for r in neutral][:6] == ["'" + t for t in titles[:4]] + titles[4:]
    assert [r["title"] for r in raw][:6] == titles
    assert float(neutral[0]["score"]) == 6.0  # numbers are numbers still

    run_cli("report", "--run", name, "--out", str(tmp_path / "report"), env=env, timeout=180)
    md = (tmp_path / "report" / "report.md").read_text()
    html = (tmp_path / "report" / "report.html").read_text()
    assert "<i>" not in md and "&lt;i&gt;" in md and "\\[x\\]\\(http://e)" in md
    assert "<i>un</i>" not in html and "&lt;i&gt;un&lt;/i&gt;" in html


# --------------------------------------------------------------------------- secrets


@pytest.mark.postgres
def test_a_password_in_the_query_of_a_database_url_is_never_shown(
        pg_server: str, tmp_path: Path) -> None:
    from posterlab.testing import pg_schema

    secret = "hunter2pw"
    folder = poster_folder(tmp_path / "m", 2)
    manifest = folder / "index.csv"
    # refused at reading (a control character), its error quoting the URL
    signed = f"https://img.example.org/p.jpg?X-Amz-Signature={secret}&token={secret}\x07"
    manifest.write_bytes(HEADER + b"1,One,6,Drama,posters/1.jpg,\n2,Two,6,Drama,posters/2.jpg,\n"
                         + f"3,Signed,6,Drama,,{signed}\n".encode())
    with pg_schema(pg_server) as url:
        db = f"{url}&password={secret}"  # trust authentication: any password is taken
        env = env_for(url, tmp_path / "blobs")
        out = run_cli("run", str(manifest), "--workers", "1", "--no-analysis", "--db", db,
                      env=env, timeout=180)
        said = out.stdout + out.stderr
        assert "password=***" in said and secret not in said
        stored = rows(url, "select settings from runs")[0]["settings"]
        assert secret not in json.dumps(stored)
        (signed_row,) = rows(url, "select error from posters where title = 'Signed'")
        assert "token=***" in signed_row["error"] and secret not in signed_row["error"], \
            signed_row["error"]
        for cmd in (["failures"], ["export", "--format", "csv"]):
            got = run_cli(*cmd, "--db", db, env=env)
            assert secret not in got.stdout + got.stderr, cmd
    missing = pg_server.rsplit("/", 1)[0] + f"/no_such_database?password={secret}"
    for cmd in (["status"], ["db", "upgrade"]):
        got = run_cli(*cmd, "--db", missing, env=env_for(missing), check=False, timeout=60)
        said = got.stdout + got.stderr
        assert got.returncode == 1 and "Traceback" not in said, said
        assert secret not in said and "password=***" in said, said


def test_the_face_api_key_never_goes_on_the_command_line(tmp_path: Path) -> None:
    refused = run_cli("faceapi", "serve", "--key", "visible-key", env=env_for("sqlite://"),
                      check=False)
    assert refused.returncode == 2
    assert "POSTERLAB_FACE_API_KEY" in refused.stderr and "--key-file" in refused.stderr

    key_file = tmp_path / "key"
    key_file.write_text("f1le-key\n")
    for how, extra, env_key in (("env", [], "env-key-123"), ("file", ["--key-file",
                                                                      str(key_file)], None)):
        port = free_port()
        env = env_for("sqlite://")
        if env_key:
            env["POSTERLAB_FACE_API_KEY"] = env_key
        key = env_key or "f1le-key"
        proc = subprocess.Popen(posterlab_cmd("faceapi", "serve", "--port", str(port), *extra),
                                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            url = f"http://127.0.0.1:{port}"
            _wait_healthy(url)
            assert key.encode() not in Path(f"/proc/{proc.pid}/cmdline").read_bytes(), how
            detect = f"{url}/face/v1.0/detect"
            assert requests.post(detect, data=jpeg(1), timeout=30, headers={
                "Content-Type": "application/octet-stream"}).status_code == 401, how
            assert requests.post(detect, data=jpeg(1), timeout=60, headers={
                "Content-Type": "application/octet-stream",
                "Ocp-Apim-Subscription-Key": key}).status_code == 200, how
        finally:
            proc.terminate()
            proc.wait(10)


def _wait_healthy(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{url}/health", timeout=1).ok:
                return
        except requests.ConnectionError:
            time.sleep(0.2)
    raise AssertionError(f"the face API at {url} did not answer")

