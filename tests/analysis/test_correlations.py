"""Correlations of poster features with the rating, and rating by face-count bucket."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from posterlab.analysis import correlate, face_buckets, fisher_ci
from posterlab.analysis.correlations import CORRELATION_COLUMNS


def frame(n: int = 200, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    brightness = rng.uniform(size=n)
    face_count = rng.integers(0, 6, size=n)
    score = 6.0 + 2.0 * brightness - 0.3 * face_count + rng.normal(scale=0.3, size=n)
    return pd.DataFrame(
        {"score": score, "face_count": face_count, "brightness": brightness,
         "entropy": rng.normal(size=n)}
    )  # fmt: skip


def test_columns_are_exactly_the_contract_with_one_row_per_default_feature() -> None:
    result = correlate(frame())
    assert tuple(result.columns) == CORRELATION_COLUMNS
    assert result["feature"].tolist() == ["face_count", "brightness", "entropy"]


def test_pearson_and_spearman_agree_with_a_direct_computation() -> None:
    df = frame()
    row = correlate(df, features=["brightness"]).iloc[0]
    assert row["n"] == 200
    assert row["pearson_r"] == pytest.approx(np.corrcoef(df["brightness"], df["score"])[0, 1])
    ranks = np.corrcoef(stats.rankdata(df["brightness"]), stats.rankdata(df["score"]))[0, 1]
    assert row["spearman_rho"] == pytest.approx(ranks)
    assert row["ci_low"] < row["pearson_r"] < row["ci_high"]


def test_signs_follow_how_the_rating_was_built() -> None:
    result = correlate(frame()).set_index("feature")
    assert result.loc["brightness", "pearson_r"] > 0.5
    assert result.loc["face_count", "pearson_r"] < -0.3
    assert result.loc["brightness", "p_adjusted"] < 1e-10
    assert result.loc["entropy", "p_adjusted"] > 0.01


def test_fisher_interval_matches_the_hand_computation() -> None:
    # z = atanh(0.5) = 0.549306, se = 1 / sqrt(100) = 0.1, z +- 1.959964 * 0.1.
    low, high = fisher_ci(0.5, 103)
    assert low == pytest.approx(np.tanh(0.549306144 - 0.195996398), abs=1e-9)
    assert high == pytest.approx(np.tanh(0.549306144 + 0.195996398), abs=1e-9)
    assert fisher_ci(1.0, 10) == (1.0, 1.0)
    assert np.isnan(fisher_ci(0.3, 3)).all()
    with pytest.raises(ValueError, match="confidence"):
        fisher_ci(0.3, 10, confidence=1.0)


def test_adjusted_p_values_are_benjamini_hochberg_by_hand() -> None:
    result = correlate(frame())
    p = result["pearson_p"].to_numpy()
    order = np.argsort(p)
    m = len(p)
    by_hand = np.minimum.accumulate((p[order] * m / np.arange(1, m + 1))[::-1])[::-1]
    expected = np.empty(m)
    expected[order] = np.minimum(by_hand, 1.0)
    np.testing.assert_allclose(result["p_adjusted"], expected)


def test_constant_nan_and_non_numeric_columns_are_skipped_with_reasons() -> None:
    df = frame(50)
    df["thirds"] = 0.25
    df["contrast"] = np.nan
    df["aspect"] = 1e9 + np.r_[0.0, np.zeros(49)]  # constant at large magnitude
    df["grey_hist"] = [np.zeros(20)] * 50
    df.loc[:9, "brightness"] = np.nan
    result = correlate(
        df, features=["brightness", "thirds", "contrast", "aspect", "grey_hist"]
    ).set_index("feature")
    assert result.loc["brightness", "n"] == 40
    assert result.attrs["skipped"] == {
        "thirds": "constant feature",
        "contrast": "only 0 rows with both values (need 3)",
        "aspect": "constant feature",
        "grey_hist": "not numeric",
    }
    assert result.loc[["thirds", "contrast"], "pearson_r"].isna().all()
    # Only the one tested feature counts for the adjustment.
    assert result.loc["brightness", "p_adjusted"] == result.loc["brightness", "pearson_p"]


def test_nan_ratings_and_a_constant_rating_are_handled() -> None:
    df = frame(20)
    df.loc[:4, "score"] = np.nan
    assert correlate(df)["n"].tolist() == [15, 15, 15]
    df["score"] = 7.0
    result = correlate(df)
    assert set(result.attrs["skipped"].values()) == {"constant target"}
    assert result["p_adjusted"].isna().all()


def test_an_empty_frame_gives_rows_of_nan_and_never_raises() -> None:
    df = frame().iloc[:0]
    result = correlate(df)
    assert len(result) == 3 and (result["n"] == 0).all()


def test_unknown_columns_raise_value_error_naming_the_parameter() -> None:
    with pytest.raises(ValueError, match="target"):
        correlate(frame(), target="rating")
    with pytest.raises(ValueError, match="features"):
        correlate(frame(), features=["brightness", "nope"])


def test_face_buckets_give_known_means_and_keep_empty_buckets() -> None:
    df = pd.DataFrame(
        {"score": [6.0, 7.0, 8.0, 5.0, 9.0, np.nan], "face_count": [0, 0, 1, 4, 7, 2]}
    )
    result = face_buckets(df)
    assert result["bucket"].tolist() == ["0", "1", "2", "3", "4+"]
    assert result["n"].tolist() == [2, 1, 0, 0, 2]
    np.testing.assert_allclose(result["mean"], [6.5, 8.0, np.nan, np.nan, 7.0])
    np.testing.assert_allclose(result["std"], [np.sqrt(0.5), np.nan, np.nan, np.nan, np.sqrt(8)])
