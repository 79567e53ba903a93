"""Correlations of poster features with the rating, their intervals, and grouped means."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from posterlab.analysis import bootstrap_ci, color_groups, correlate, face_buckets, fisher_ci
from posterlab.analysis.correlations import CORRELATION_COLUMNS, EXTRA_COLUMNS
from posterlab.analysis.groups import common_genres, genre_mask


def frame(n: int = 200, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    brightness = rng.uniform(size=n)
    face_count = rng.integers(0, 6, size=n)
    score = 6.0 + 2.0 * brightness - 0.3 * face_count + rng.normal(scale=0.3, size=n)
    return pd.DataFrame(
        {"score": score, "face_count": face_count, "brightness": brightness,
         "entropy": rng.normal(size=n)}
    )  # fmt: skip


def test_columns_are_the_contract_then_fishers_interval_with_one_row_per_feature() -> None:
    result = correlate(frame())
    assert tuple(result.columns) == (*CORRELATION_COLUMNS, *EXTRA_COLUMNS)
    assert EXTRA_COLUMNS == ("fisher_low", "fisher_high", "spearman_p_adjusted", "family")
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


def test_adjusted_p_values_are_benjamini_hochberg_by_hand_within_each_family() -> None:
    result = correlate(frame())
    for _, part in result.groupby("family"):
        p = part["pearson_p"].to_numpy()
        order = np.argsort(p)
        m = len(p)
        by_hand = np.minimum.accumulate((p[order] * m / np.arange(1, m + 1))[::-1])[::-1]
        expected = np.empty(m)
        expected[order] = np.minimum(by_hand, 1.0)
        np.testing.assert_allclose(part["p_adjusted"], expected)


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


def test_bootstrap_interval_is_seeded_and_holds_r_and_agrees_with_fisher() -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(size=400)
    y = 0.3 * x + rng.normal(size=400)
    r = np.corrcoef(x, y)[0, 1]
    low, high = bootstrap_ci(x, y, seed=7)
    assert low < r < high
    assert bootstrap_ci(x, y, seed=7) == (low, high)
    assert bootstrap_ci(x, y, seed=8) != (low, high)
    # For roughly normal data the two intervals nearly coincide.
    np.testing.assert_allclose((low, high), fisher_ci(r, 400), atol=0.03)


def test_bootstrap_is_the_percentile_of_resampled_correlations_done_by_hand() -> None:
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=30), rng.normal(size=30)
    low, high = bootstrap_ci(x, y, n_boot=300, seed=5)
    idx = np.random.default_rng(5).integers(0, 30, size=(300, 30))
    by_hand = [np.corrcoef(x[i], y[i])[0, 1] for i in idx]
    np.testing.assert_allclose((low, high), np.quantile(by_hand, [0.025, 0.975]), rtol=1e-12)


def test_bootstrap_leaves_out_resamples_without_a_correlation() -> None:
    # Three pairs: many resamples repeat one point and have a constant x.
    low, high = bootstrap_ci(np.array([0.0, 1.0, 2.0]), np.array([1.0, 3.0, 2.0]), seed=0)
    assert -1.0 <= low <= high <= 1.0
    with pytest.raises(ValueError, match="n_boot"):
        bootstrap_ci(np.arange(5.0), np.arange(5.0), n_boot=0)
    with pytest.raises(ValueError, match="same length"):
        bootstrap_ci(np.arange(5.0), np.arange(4.0))


def test_a_features_bootstrap_interval_does_not_depend_on_the_others() -> None:
    df = frame()
    alone = correlate(df, features=["brightness"], n_boot=500, seed=2).iloc[0]
    together = correlate(df, n_boot=500, seed=2).set_index("feature").loc["brightness"]
    assert (alone["ci_low"], alone["ci_high"]) == (together["ci_low"], together["ci_high"])
    other_seed = correlate(df, features=["brightness"], n_boot=500, seed=3).iloc[0]
    assert other_seed["ci_low"] != alone["ci_low"]


def test_face_buckets_give_known_means_and_keep_empty_buckets() -> None:
    df = pd.DataFrame(
        {"score": [6.0, 7.0, 8.0, 5.0, 9.0, 4.0, np.nan], "face_count": [0, 0, 1, 4, 7, 5, 2]}
    )
    result = face_buckets(df)
    assert result["bucket"].tolist() == ["0", "1", "2", "3", "4", "5+"]
    assert result["n"].tolist() == [2, 1, 0, 0, 1, 2]
    np.testing.assert_allclose(result["mean"], [6.5, 8.0, np.nan, np.nan, 5.0, 6.5])
    np.testing.assert_allclose(
        result["std"], [np.sqrt(0.5), np.nan, np.nan, np.nan, np.nan, np.sqrt(12.5)]
    )


def test_group_intervals_are_student_t_intervals_of_the_mean() -> None:
    df = pd.DataFrame({"score": [6.0, 7.0, 8.0, 9.0], "face_count": [0, 0, 0, 1]})
    row = face_buckets(df).iloc[0]
    half = stats.t.ppf(0.975, 2) * 1.0 / np.sqrt(3)  # sd 1, n 3
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((7.0 - half, 7.0 + half))
    single = face_buckets(df).iloc[1]
    assert single["n"] == 1 and np.isnan(single["ci_low"])
    narrow = face_buckets(df, confidence=0.5).iloc[0]
    assert row["ci_low"] < narrow["ci_low"] < narrow["ci_high"] < row["ci_high"]


def test_colour_groups_round_each_channel_on_the_0_1_scale() -> None:
    df = pd.DataFrame(
        {"score": [6.0, 8.0, 7.0, 5.0], "mean_r": [0.5, 0.51, 0.1, np.nan],
         "mean_g": [0.0, 0.0, 1.0, 0.0], "mean_b": [0.02, 0.02, 0.02, 0.02]}
    )  # fmt: skip
    result = color_groups(df)
    assert list(result.columns) == [
        "channel", "level", "n", "mean", "median", "std", "sem", "ci_low", "ci_high",
    ]  # fmt: skip
    rows = {(c, lvl): (n, m) for c, lvl, n, m in result[["channel", "level", "n", "mean"]]
            .itertuples(index=False)}  # fmt: skip
    # Levels of 0.05: 0.5 and 0.51 -> 0.5, 0.1 -> 0.1, 0.02 -> 0.0.
    assert rows == {
        ("r", 0.1): (1, 7.0), ("r", 0.5): (2, 7.0),
        ("g", 0.0): (3, 6.0 + 1 / 3), ("g", 1.0): (1, 7.0),
        ("b", 0.0): (4, 6.5),
    }  # fmt: skip
    assert color_groups(df, step=0.2).query("channel == 'r'")["level"].tolist() == [0.2, 0.6]
    small = color_groups(df, min_n=2)
    assert (small["n"] >= 2).all() and small.attrs["left_out"] == 2
    assert color_groups(df[["score"]]).empty
    with pytest.raises(ValueError, match="step"):
        color_groups(df, step=0)


def test_grouped_means_can_be_restricted_to_one_genre() -> None:
    df = pd.DataFrame(
        {"score": [6.0, 8.0, 7.0, 5.0], "face_count": [0, 0, 1, 1], "mean_r": [0.1] * 4,
         "genres": ["Drama", "Drama|War", "Comedy", None]}
    )  # fmt: skip
    assert genre_mask(df, "Drama").tolist() == [True, True, False, False]
    drama = face_buckets(df, genre="Drama")
    assert drama["n"].tolist() == [2, 0, 0, 0, 0, 0] and drama["mean"].iloc[0] == 7.0
    assert color_groups(df, genre="Comedy")["mean"].tolist() == [7.0]
    assert common_genres(df, min_rows=1) == ["Drama", "Comedy", "War"]
    with pytest.raises(ValueError, match="genres"):
        face_buckets(df.drop(columns="genres"), genre="Drama")
