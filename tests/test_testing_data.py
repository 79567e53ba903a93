"""The harness's sample manifests: what the benchmarks' scale runs are made of."""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path

from posterlab.testing import sample_manifest


def _data(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    (data / "posters" / "posters").mkdir(parents=True)
    with open(data / "posters" / "index.csv", "w", newline="", encoding="latin-1") as f:
        writer = csv.writer(f)
        writer.writerow(["imdbId", "Imdb Link", "Title", "IMDB Score", "Genre", "Poster",
                         "poster_file"])
        for i, title in ((11, "Amélie (2001)"), (22, "B (1999)")):
            writer.writerow([i, f"http://www.imdb.com/title/tt{i}", title, "7", "Drama",
                             f"https://x/{i}.jpg", f"posters/{i}.jpg"])
            (data / "posters" / "posters" / f"{i}.jpg").write_bytes(b"\xff\xd8jpeg%d\xff\xd9" % i)
    return data


def test_a_cycled_manifest_has_new_ids_and_a_file_of_its_own_for_every_row(
        tmp_path: Path) -> None:
    manifest = sample_manifest(_data(tmp_path), tmp_path / "m", 5, distinct=True, cycle=True)
    with open(manifest, newline="", encoding="latin-1") as f:
        rows = list(csv.DictReader(f))
    ids = [r["imdbId"] for r in rows]
    assert ids == ["11", "22", str(11 + 10**8), str(22 + 10**8), str(11 + 2 * 10**8)]
    files = [manifest.parent / r["poster_file"] for r in rows]
    assert all(p.is_file() for p in files)
    digests = {hashlib.sha256(p.read_bytes()).hexdigest() for p in files}
    assert len(digests) == 5  # distinct bytes each, none overwritten by a later round
    assert rows[2]["Title"] == "Amélie (2001)"  # latin-1 kept byte for byte


def test_without_cycle_the_manifest_stops_at_the_index(tmp_path: Path) -> None:
    manifest = sample_manifest(_data(tmp_path), tmp_path / "m", 5)
    with open(manifest, newline="", encoding="latin-1") as f:
        assert [r["imdbId"] for r in csv.DictReader(f)] == ["11", "22"]
