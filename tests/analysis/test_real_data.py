"""The analysis on the IMDB 5000 face-count reference (../shared/data), when present."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from posterlab.analysis import analyze, correlate, face_buckets

INDEX = Path(__file__).resolve().parents[3] / "shared" / "data" / "face_reference" / "index.csv"

pytestmark = [
    pytest.mark.data,
    pytest.mark.skipif(not INDEX.exists(), reason=f"{INDEX} not found (shared data absent)"),
]


@pytest.fixture(scope="module")
def reference() -> pd.DataFrame:
    df = pd.read_csv(INDEX, encoding="latin-1")  # titles keep the original's latin-1 bytes
    return df.rename(
        columns={"imdbId": "imdb_id", "IMDB Score": "score", "Genre": "genres",
                 "facenumber_in_poster": "face_count"}
    )  # fmt: skip


def test_face_buckets_of_the_reference_set(reference: pd.DataFrame) -> None:
    buckets = face_buckets(reference)
    assert buckets["n"].tolist() == [124, 79, 39, 25, 13, 20]
    expected = [reference.loc[reference["face_count"] == k, "score"].mean() for k in range(5)]
    np.testing.assert_allclose(buckets["mean"].iloc[:5], expected)
    assert (buckets["ci_low"] < buckets["mean"]).all()


def test_face_count_correlation_on_the_reference_set(reference: pd.DataFrame) -> None:
    row = correlate(reference, features=["face_count"]).iloc[0]
    assert row["n"] == 300
    assert row["pearson_r"] == pytest.approx(
        np.corrcoef(reference["face_count"], reference["score"])[0, 1]
    )
    assert row["ci_low"] < 0 < row["ci_high"]  # a weak association, not significant at n=300
    assert row["fisher_low"] < 0 < row["fisher_high"]


def test_analyze_runs_on_real_ratings_with_face_counts_and_genres(reference: pd.DataFrame) -> None:
    result = analyze(reference[["imdb_id", "score", "genres", "face_count"]], n_boot=500,
                     folds=3, repeats=1, permutations=50)
    regression = result.model["regression"]
    assert regression["n"] == 300 and regression["n_train"] + regression["n_test"] == 300
    assert "genre_Drama" in regression["inputs"]
    json.dumps(result.to_dict(), allow_nan=False)
