"""Controlled slopes, families and FDR, face effects and the detector thresholds, each
against statsmodels, scipy or a hand computation on fixed data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
from scipy import stats
from statsmodels.stats.multitest import multipletests

from posterlab.analysis.controls import adjust_within, controlled_slopes, with_year
from posterlab.analysis.correlations import correlate
from posterlab.analysis.detector import counts_at, threshold_effects
from posterlab.analysis.effects import face_effects
from posterlab.manifest.fields import parse_year


def _films(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    genres = rng.choice(["Drama", "Comedy", "Drama|Horror", "Action"], size=n)
    year = rng.integers(1960, 2015, size=n)
    faces = rng.poisson(1.2, size=n).astype(float)
    score = (6 + 0.2 * faces + 0.02 * (year - 1990) + 0.5 * np.char.find(genres, "Drama").clip(0, 1)
             + rng.normal(size=n))
    return pd.DataFrame({"face_count": faces, "mean_r": rng.uniform(size=n), "genres": genres,
                         "title": [f"Film {i} ({y})" for i, y in enumerate(year)],
                         "score": score})


def test_year_is_parsed_from_the_title_or_taken_from_a_year_column() -> None:
    assert parse_year("The Flyboys (2008)") == 2008.0
    assert np.isnan(parse_year("No year here")) and np.isnan(parse_year(None))
    frame = pd.DataFrame({"title": ["A (1999)", "B"], "release": ["2001-05-01", None]})
    assert with_year(frame)["year"].tolist()[0] == 2001.0
    assert with_year(frame.drop(columns="release"))["year"].tolist()[0] == 1999.0


def test_controlled_slope_matches_statsmodels_formula_ols() -> None:
    films = _films(300, 0)
    row = next(r for r in controlled_slopes(films, ["face_count"]) if r["feature"] == "face_count")
    data = with_year(films)
    for g in ("Drama", "Comedy", "Horror", "Action"):
        data[f"g_{g}"] = data["genres"].str.contains(g).astype(float)
    # Every film has one of Action, Comedy, Drama: Drama is the reference level.
    fit = smf.ols("score ~ face_count + g_Action + g_Comedy + g_Horror + year",
                  data=data).fit()
    assert row["controls"] == ["genre", "year"] and row["n"] == 300
    assert row["slope"] == pytest.approx(fit.params["face_count"], rel=1e-8)
    low, high = fit.conf_int().loc["face_count"]
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((low, high), rel=1e-8)
    assert row["p"] == pytest.approx(fit.pvalues["face_count"], rel=1e-6)
    assert row["slope_per_sd"] == pytest.approx(row["slope"] * films["face_count"].std())


def test_partial_r_is_the_correlation_of_residuals_after_the_controls() -> None:
    films = with_year(_films(200, 1))
    row = controlled_slopes(films, ["face_count"], controls=["year"])[0]
    rx = smf.ols("face_count ~ year", data=films).fit().resid
    ry = smf.ols("score ~ year", data=films).fit().resid
    assert row["partial_r"] == pytest.approx(np.corrcoef(rx, ry)[0, 1], rel=1e-8)


def test_benjamini_hochberg_is_applied_within_each_family_and_to_spearman_too() -> None:
    p = pd.Series([0.01, 0.04, 0.03, 0.2, 0.001])
    fam = pd.Series(["primary", "primary", "exploratory", "exploratory", "exploratory"])
    out = adjust_within(p, fam)
    np.testing.assert_allclose(out[:2], multipletests([0.01, 0.04], method="fdr_bh")[1])
    np.testing.assert_allclose(out[2:], multipletests([0.03, 0.2, 0.001], method="fdr_bh")[1])
    table = correlate(_films(120, 2).assign(entropy=np.linspace(0, 1, 120)), n_boot=50)
    primary = table[table["family"] == "primary"]
    np.testing.assert_allclose(primary["spearman_p_adjusted"],
                               multipletests(primary["spearman_p"], method="fdr_bh")[1])
    assert set(table["family"]) == {"primary", "exploratory"}


def test_the_primary_family_keeps_its_false_discovery_rate_under_a_true_null() -> None:
    rejected_any = 0
    for seed in range(200):
        rng = np.random.default_rng(seed)
        frame = pd.DataFrame(rng.uniform(size=(80, 4)), columns=["face_count", "mean_r",
                                                                 "mean_g", "mean_b"])
        frame["score"] = rng.normal(6, 1, size=80)
        rows = controlled_slopes(frame, list(frame.columns[:4]), controls=[])
        rejected_any += any(r["p_adjusted"] < 0.05 for r in rows)
    # Under the global null FDR equals the chance of any rejection: 5%, here <= 9% of 200.
    assert rejected_any <= 18


def test_face_effects_match_scipy_and_the_hand_formulas() -> None:
    faces = np.array([0, 0, 0, 0, 1, 1, 2, 2, 3, 6], float)
    y = np.array([5.0, 6.0, 5.5, 6.5, 6.0, 7.0, 6.5, 7.5, 7.0, 8.0])
    out = face_effects(faces, y)
    line = stats.linregress(faces, y)
    assert out["per_face"]["slope"] == pytest.approx(line.slope)
    assert out["per_face"]["p"] == pytest.approx(line.pvalue)
    some, none = y[faces >= 1], y[faces == 0]
    welch = stats.ttest_ind(some, none, equal_var=False)
    assert out["none_vs_some"]["difference"] == pytest.approx(some.mean() - none.mean())
    assert out["none_vs_some"]["p"] == pytest.approx(welch.pvalue)
    pooled = np.sqrt((5 * some.var(ddof=1) + 3 * none.var(ddof=1)) / 8)
    assert out["none_vs_some"]["cohens_d"] == pytest.approx((some.mean() - none.mean()) / pooled)
    buckets = np.minimum(faces, 5)
    groups = [y[buckets == b] for b in (0, 1, 2)]  # buckets 3 and 5 have one film each
    assert out["trend"]["anova_p"] == pytest.approx(stats.f_oneway(*groups).pvalue)
    assert out["trend"]["trend_p"] == pytest.approx(stats.linregress(buckets, y).pvalue)


def test_detector_thresholds_recount_faces_and_give_the_effect_at_each() -> None:
    scores = [[0.95, 0.62], [0.71], [], [0.99, 0.9, 0.55], None, [0.8, 0.8], [0.52]]
    ratings = [7.0, 6.5, 5.0, 8.0, 6.0, 7.5, 5.5]
    assert counts_at(scores, 0.7)[:4].tolist() == [1.0, 1.0, 0.0, 2.0]
    rows = threshold_effects(scores, ratings, thresholds=[0.5, 0.75])
    for row, threshold in zip(rows, [0.5, 0.75], strict=True):
        counts = counts_at(scores, threshold)
        known = np.isfinite(counts)
        line = stats.linregress(counts[known], np.array(ratings)[known])
        assert row["n"] == 6 and row["slope"] == pytest.approx(line.slope)
    by_provider = threshold_effects(scores, ratings, thresholds=[0.5],
                                    providers=["a", "a", "a", "b", "b", "b", "b"])
    assert [r["provider"] for r in by_provider] == ["a", "b"]
