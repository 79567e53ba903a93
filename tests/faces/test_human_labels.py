"""The human-labelled face counts: the file's format, its consistency with its two passes,
and the counting rules beside it."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parents[2] / "benchmarks" / "data"
COLUMNS = ["imdb_id", "faces", "prominent", "pass_a_faces", "pass_b_faces",
           "pass_a_prominent", "pass_b_prominent", "resolved"]


@pytest.fixture(scope="module")
def labels() -> list[dict[str, str]]:
    with (DATA / "faces_human.csv").open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        assert reader.fieldnames == COLUMNS
        return list(reader)


def test_the_set_has_at_least_200_distinct_posters_with_whole_counts(labels) -> None:
    assert len(labels) >= 200
    assert len({r["imdb_id"] for r in labels}) == len(labels)
    for row in labels:
        assert row["imdb_id"].isdigit()
        numbers = [int(row[c]) for c in COLUMNS[1:]]  # ValueError if not whole numbers
        assert all(n >= 0 for n in numbers)
        assert int(row["prominent"]) <= int(row["faces"])
        assert row["resolved"] in ("0", "1")


def test_agreeing_passes_stand_and_disagreements_were_resolved(labels) -> None:
    for row in labels:
        a = (row["pass_a_faces"], row["pass_a_prominent"])
        b = (row["pass_b_faces"], row["pass_b_prominent"])
        if a == b:
            assert row["resolved"] == "0" and (row["faces"], row["prominent"]) == a, row
        else:
            assert row["resolved"] == "1", row
    assert any(r["resolved"] == "1" for r in labels)


def test_every_labelled_poster_is_in_the_shared_posters(labels, data_dir: Path) -> None:
    with (data_dir / "posters" / "index.csv").open(newline="", encoding="latin-1") as f:
        shared = {r["imdbId"] for r in csv.DictReader(f)}
    assert {r["imdb_id"] for r in labels} <= shared


def test_the_counting_rules_and_the_agreement_are_written_beside_the_set() -> None:
    rules = (DATA / "FACES_RULES.md").read_text(encoding="utf-8")
    for phrase in ("at least one eye", "nose and mouth", "profile", "collage",
                   "backs of heads", "1/10 of the poster's height", "Cohen", "Spearman",
                   "within one"):
        assert phrase in rules, phrase
