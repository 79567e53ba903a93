"""Hostile inputs through the real pipeline (``posterlab run``, embedded): images, manifests,
local paths. Every bad case ends ``failed`` with a stable code; every good one ends ``done``;
the rest of the run does not notice."""

from __future__ import annotations

import csv
import io
import os
import shutil
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from posterlab.testing import env_for, rows, run_cli

pytestmark = pytest.mark.slow


def _poster(data_dir: Path, i: int = 0) -> Path:
    return sorted((data_dir / "posters" / "posters").glob("*.jpg"))[i]


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return (struct.pack(">I", len(data)) + kind + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))


def bomb_png(width: int = 30000, height: int = 30000) -> bytes:
    """A 100-byte PNG whose header declares ``width`` x ``height`` pixels."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 1024, 9)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", idat)
            + _png_chunk(b"IEND", b""))


def _save(im: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


def build_image_corpus(data_dir: Path, folder: Path) -> tuple[dict[str, bytes], dict[str, str]]:
    """(good name -> bytes, bad name -> expected error code) written under ``folder``."""
    real = _poster(data_dir).read_bytes()
    base = Image.open(io.BytesIO(real)).convert("RGB")
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 CW to display
    frames = [base.rotate(angle) for angle in (0, 10, 20)]
    good = {
        "real.jpg": real,
        "real2.jpg": _poster(data_dir, 1).read_bytes(),
        "cmyk.jpg": _save(base.convert("CMYK"), "JPEG"),
        "sixteen.png": _save(Image.fromarray(
            np.asarray(base.convert("L"), dtype=np.uint16) * 257), "PNG"),
        "palette.png": _save(base.convert("P", palette=Image.Palette.ADAPTIVE), "PNG"),
        "animated.gif": _save(frames[0], "GIF", save_all=True, append_images=frames[1:],
                              duration=100, loop=0),
        "exif-rotated.jpg": _save(base, "JPEG", exif=exif),
        "png-named.jpg": _save(base, "PNG"),  # the wrong extension for the real format
    }
    svg = (b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="182" '
           b'height="268"><rect width="182" height="268" fill="red"/></svg>')
    bad = {
        "empty.jpg": (b"", "image-empty"),
        "truncated.jpg": (real[: len(real) * 2 // 5], "image-truncated"),
        "html.jpg": (b"<!DOCTYPE html><html><body>Not found</body></html>",
                     "image-not-an-image"),
        "vector.svg.jpg": (svg, "image-not-an-image"),
        "bomb.png": (bomb_png(), "image-too-large"),
        "one-pixel.png": (_save(Image.new("RGB", (1, 1), "red"), "PNG"), "image-too-small"),
    }
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in good.items():
        (folder / name).write_bytes(data)
    for name, (data, _) in bad.items():
        (folder / name).write_bytes(data)
    return good, {name: code for name, (_, code) in bad.items()}


def write_manifest(path: Path, records: list[list[str]], encoding: str = "utf-8") -> Path:
    with open(path, "w", newline="", encoding=encoding) as fh:
        w = csv.writer(fh)
        w.writerow(["imdbId", "Title", "IMDB Score", "Genre", "poster_file"])
        w.writerows(records)
    return path


def test_hostile_images_fail_with_a_code_and_good_odd_formats_are_done(
        data_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "m"
    good, bad = build_image_corpus(data_dir, folder / "posters")
    records = []
    names = {}
    for i, name in enumerate([*good, *bad], start=1001):
        records.append([str(i), name, "6.5", "Drama", f"posters/{name}"])
        names[str(i)] = name
    manifest = write_manifest(folder / "index.csv", records)
    db_url = f"sqlite:///{tmp_path / 'p.db'}"
    env = env_for(db_url, tmp_path / "blobs")
    run_cli("run", str(manifest), "--workers", "2", "--run", "images", "--no-analysis",
            env=env, timeout=120)

    posters = {p["title"]: p for p in rows(db_url, "select * from posters")}
    assert len(posters) == len(good) + len(bad)
    for name in good:
        p = posters[name]
        assert (p["status"], p["error"]) == ("done", None), (name, p["error"])
        assert p["face_count"] is not None and p["sha256"]
    for name, code in bad.items():
        p = posters[name]
        assert p["status"] == "failed", (name, p["status"])
        assert p["error_code"] == code, (name, p["error_code"], p["error"])
        assert p["error"].startswith(code) and len(p["error"]) > len(code) + 10, p["error"]
    # the odd good formats went all the way: features stored for each
    feats = rows(db_url, "select sha256 from features")
    assert {p["sha256"] for n, p in posters.items() if n in good} <= {f["sha256"] for f in feats}
    run = rows(db_url, "select total, pending from runs")[0]
    assert (run["total"], run["pending"]) == (len(good) + len(bad), 0)


def test_hostile_manifest_rows_are_kept_exact_or_refused(data_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "m"
    (folder / "posters").mkdir(parents=True)
    for i in range(3):
        shutil.copyfile(_poster(data_dir, i), folder / "posters" / f"p{i}.jpg")
    tricky = 'He said "no",\nthen, left; \u00e9t\u00e9 \u00e0 la plage'
    records = [
        ["114709", "Am\u00e9lie \u00c0 bient\u00f4t \u00f1", "7.1", "Comedy|Romance",
         "posters/p0.jpg"],
        ["tt0114709", "Duplicate of 114709", "2.0", "Drama", "posters/p1.jpg"],
        ["114709", "Duplicate again", "3.0", "Drama", "posters/p2.jpg"],
        ["tt0000042", tricky, "6.0", "Drama", "posters/p1.jpg"],
        ["abc", "Letters only", "6.0", "Drama", "posters/p2.jpg"],
        ["12x34", "Letters inside", "6.0", "Drama", "posters/p2.jpg"],
    ]
    # latin-1 bytes on disk: the titles must come back as the same characters
    manifest = write_manifest(folder / "index.csv", records, encoding="latin-1")
    db_url = f"sqlite:///{tmp_path / 'p.db'}"
    env = env_for(db_url, tmp_path / "blobs")
    run_cli("run", str(manifest), "--workers", "1", "--run", "manifest", "--no-analysis",
            env=env, timeout=120)

    posters = rows(db_url, "select * from posters order by id")
    by_key = {p["movie_key"]: p for p in posters}
    first = by_key["114709"]
    assert first["title"] == "Am\u00e9lie \u00c0 bient\u00f4t \u00f1"  # no mojibake
    assert first["status"] == "done"
    assert [p["imdb_id"] for p in posters].count("114709") == 1  # one movie, one row
    # a line break inside a quoted title is kept as a space, the rest exact
    assert by_key["42"]["title"] == tricky.replace("\n", " ") and by_key["42"]["status"] == "done"
    refused = [p for p in posters if p["error_code"] == "manifest-bad-id"]
    assert len(refused) == 2 and all(p["imdb_id"] is None for p in refused)
    assert all("not an IMDB id" in p["error"] for p in refused)
    duplicates = [p for p in posters if p["error_code"] == "manifest-duplicate"]
    assert [(p["row"], p["movie_key"], p["status"]) for p in duplicates] == [
        (2, "row:2", "failed"), (3, "row:3", "failed")]
    assert len(posters) == 6
    run = rows(db_url, "select total, pending from runs")[0]
    assert (run["total"], run["pending"]) == (6, 0)


def test_local_paths_leaving_the_manifest_folder_are_refused(
        data_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "m"
    (folder / "posters").mkdir(parents=True)
    outside = tmp_path / "secret"
    outside.mkdir()
    shutil.copyfile(_poster(data_dir), outside / "private.jpg")
    shutil.copyfile(_poster(data_dir, 1), folder / "posters" / "fine.jpg")
    os.symlink(outside / "private.jpg", folder / "posters" / "link-out.jpg")
    os.symlink(outside, folder / "posters" / "dir-link")
    os.symlink(folder / "posters" / "fine.jpg", folder / "posters" / "link-in.jpg")
    records = [
        ["1", "fine", "6.0", "Drama", "posters/fine.jpg"],
        ["2", "dotdot", "6.0", "Drama", "../secret/private.jpg"],
        ["3", "dotdot inside", "6.0", "Drama", "posters/../../secret/private.jpg"],
        ["4", "absolute", "6.0", "Drama", str(outside / "private.jpg")],
        ["5", "symlink out", "6.0", "Drama", "posters/link-out.jpg"],
        ["6", "dir symlink out", "6.0", "Drama", "posters/dir-link/private.jpg"],
        ["7", "etc passwd", "6.0", "Drama", "../../../../../../etc/passwd"],
        ["8", "symlink in", "6.0", "Drama", "posters/link-in.jpg"],
    ]
    manifest = write_manifest(folder / "index.csv", records)
    db_url = f"sqlite:///{tmp_path / 'p.db'}"
    env = env_for(db_url, tmp_path / "blobs")
    run_cli("run", str(manifest), "--workers", "1", "--run", "paths", "--no-analysis",
            env=env, timeout=120)

    posters = {p["title"]: p for p in rows(db_url, "select * from posters")}
    assert posters["fine"]["status"] == "done"
    assert posters["symlink in"]["status"] == "done"  # a link that stays inside is fine
    for title in ("dotdot", "dotdot inside", "absolute", "symlink out", "dir symlink out",
                  "etc passwd"):
        p = posters[title]
        assert (p["status"], p["error_code"]) == ("failed", "manifest-path-escape"), (
            title, p["status"], p["error"])
        assert p["sha256"] is None
    # nothing from outside reached the blob store
    private = (outside / "private.jpg").read_bytes()
    stored = [f.read_bytes() for f in (tmp_path / "blobs").rglob("*") if f.is_file()]
    assert private not in stored
