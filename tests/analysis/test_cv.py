"""Repeated k-fold: folds, corrected intervals, the linear baselines, AUCs, and the
calibration of the out-of-fold figures under a true null."""

from __future__ import annotations

import numpy as np
import pytest
import statsmodels.api as sm
from scipy import stats
from sklearn.linear_model import Ridge
from sklearn.metrics import roc_auc_score

from posterlab.analysis.cv import column_aucs, corrected_interval, fold_score, repeated_folds
from posterlab.analysis.ensemble import TrainingPlan
from posterlab.analysis.linear import PENALTIES, linear_fold
from posterlab.analysis.models import CvSettings, cross_validated, ridge_permutation_p

FAST = TrainingPlan(hidden_sizes=(4,), l2_choices=(0.03, 0.3), epochs=40, ensemble=2)


def test_each_repeat_puts_every_row_in_exactly_one_test_fold() -> None:
    splits = repeated_folds(23, folds=5, repeats=3, seed=1)
    for r in range(3):
        tests = np.concatenate([test for _, test in splits[5 * r : 5 * r + 5]])
        assert sorted(tests.tolist()) == list(range(23))
    for train, test in splits:
        assert not np.intersect1d(train, test).size and len(train) + len(test) == 23


def test_stratified_folds_deal_each_class_evenly() -> None:
    strata = np.array([1] * 10 + [0] * 40)
    for _, test in repeated_folds(50, folds=5, repeats=2, seed=0, strata=strata):
        assert strata[test].sum() == 2


def test_corrected_interval_matches_the_nadeau_bengio_formula_by_hand() -> None:
    scores = np.array([0.02, -0.01, 0.05, 0.00, 0.03, 0.01])
    mean, low, high = corrected_interval(scores, n_train=80, n_test=20)
    se = np.sqrt(scores.var(ddof=1) * (1 / 6 + 20 / 80))
    assert mean == pytest.approx(scores.mean())
    assert high - mean == pytest.approx(stats.t.ppf(0.975, 5) * se)
    assert mean - low == pytest.approx(high - mean)


def test_ridge_matches_scikit_learn_at_the_chosen_penalty_and_ols_matches_statsmodels() -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 4)) * [1, 3, 0.5, 2] + 5
    y = X @ [0.3, -0.1, 0.0, 0.2] + rng.normal(size=120)
    fold = linear_fold(X[:90], y[:90], X[90:])
    assert fold.penalty[0] in PENALTIES
    Xs = (X - X[:90].mean(axis=0)) / X[:90].std(axis=0)
    ridge = Ridge(alpha=fold.penalty[0] * 90).fit(Xs[:90], y[:90])
    np.testing.assert_allclose(fold.ridge[:, 0], ridge.predict(Xs[90:]), rtol=1e-8)
    ols = sm.OLS(y[:90], sm.add_constant(X[:90])).fit()
    np.testing.assert_allclose(fold.ols[:, 0], ols.predict(sm.add_constant(X[90:])), rtol=1e-8)
    assert fold.mean[:, 0] == pytest.approx(np.full(30, y[:90].mean()))


def test_gcv_picks_the_penalty_with_the_smallest_generalised_cv_score() -> None:
    rng = np.random.default_rng(2)
    X, y = rng.normal(size=(60, 8)), rng.normal(size=60)
    chosen = linear_fold(X, y, X[:2]).penalty[0]
    Xs = (X - X.mean(axis=0)) / X.std(axis=0)

    def gcv(alpha: float) -> float:
        hat = Xs @ np.linalg.solve(Xs.T @ Xs + alpha * 60 * np.eye(8), Xs.T)
        resid = (y - y.mean()) - hat @ (y - y.mean())
        return float(np.mean(resid**2) / (1 - (1 + np.trace(hat)) / 60) ** 2)

    assert chosen == PENALTIES[int(np.argmin([gcv(a) for a in PENALTIES]))]


def test_aucs_and_r2_match_scikit_learn() -> None:
    rng = np.random.default_rng(3)
    truth = rng.random((50, 3)) < 0.3
    scores = rng.normal(size=(50, 3)) + truth
    expected = [roc_auc_score(truth[:, b], scores[:, b]) for b in range(3)]
    np.testing.assert_allclose(column_aucs(truth, scores), expected)
    y, p = rng.normal(size=40), rng.normal(size=40)
    r2 = 1 - np.sum((y - p) ** 2) / np.sum((y - y.mean()) ** 2)
    assert fold_score("regression", y, p[:, None])[0] == pytest.approx(r2)


def test_permutation_p_falls_under_005_in_about_5_percent_of_null_datasets() -> None:
    settings = CvSettings(folds=5, repeats=1, permutations=200)
    hits = 0
    for seed in range(100):
        rng = np.random.default_rng(seed)
        X, y = rng.normal(size=(60, 3)), rng.normal(size=60)
        hits += ridge_permutation_p(X, y, settings=settings) < 0.05
    assert hits <= 12  # nominal 5 of 100; binomial 99.9% upper bound is about 12


def test_permutation_p_is_small_when_the_inputs_carry_the_rating() -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(80, 3))
    y = X[:, 0] + 0.5 * rng.normal(size=80)
    assert ridge_permutation_p(X, y, settings=CvSettings(repeats=1)) < 0.01


def test_out_of_fold_r2_interval_covers_zero_when_the_rating_is_noise() -> None:
    rng = np.random.default_rng(11)
    X, y = rng.normal(size=(120, 4)), rng.normal(6, 1, size=120)
    settings = CvSettings(folds=3, repeats=2, permutations=50, plan=FAST)
    out = cross_validated(X, y, settings=settings, inputs=list("abcd"), band=False)
    for model in ("mlp", "ridge", "ols"):
        scores = out.entry["cv"]["models"][model]
        assert scores["r2_ci_low"] <= 0 <= scores["r2_ci_high"] or scores["r2_ci_high"] < 0
    assert out.entry["cv"]["models"]["mlp"]["r2_ci_low"] < 0
    assert out.entry["permutation_p"] > 0.05
    diff = out.entry["cv"]["mlp_minus_ridge"]
    assert diff["ci_low"] <= diff["mean"] <= diff["ci_high"]


def test_cross_validation_finds_a_real_signal_and_scores_the_band_from_the_same_fits() -> None:
    rng = np.random.default_rng(4)
    X = rng.normal(size=(200, 3))
    y = 6 + X[:, 0] + 0.5 * rng.normal(size=200)
    settings = CvSettings(folds=3, repeats=1, permutations=50, plan=FAST)
    out = cross_validated(X, y, settings=settings, inputs=list("abc"))
    assert out.entry["cv"]["models"]["mlp"]["r2_mean"] > 0.6
    assert out.entry["cv"]["models"]["mlp"]["r2_ci_low"] > 0.2
    assert out.entry["cv"]["models"]["ridge"]["r2_mean"] > 0.6
    assert out.band_entry is not None
    assert out.band_entry["cv"]["models"]["mlp"]["auc_mean"] > 0.8
    assert out.band_entry["cv"]["models"]["mean_baseline"]["auc_mean"] == 0.5
    assert np.isfinite(out.oof).all() and out.oof.shape == (200,)
