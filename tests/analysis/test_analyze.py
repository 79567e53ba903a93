"""analyze(): the whole analysis on frames shaped like an export."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from posterlab.analysis import AnalysisResult, TrainingPlan, analyze, design_matrix
from posterlab.analysis.ensemble import FittedModel
from posterlab.analysis.synthetic import TRUE_EFFECTS, synthetic_frame

# one test process builds the module's expensive fixture once for all of its tests
pytestmark = pytest.mark.xdist_group("analyze")

FAST = TrainingPlan(hidden_sizes=(4,), l2_choices=(0.03,), epochs=40, ensemble=2)
QUICK = {"plan": FAST, "folds": 3, "repeats": 2, "permutations": 50}


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    df = synthetic_frame(600, seed=11)
    df.loc[df.index[:25], "score"] = np.nan  # unrated films are dropped, not fatal
    df["title"] = [f"Film {i} ({1970 + i % 45})" for i in range(len(df))]
    return df


@pytest.fixture(scope="module")
def result(frame: pd.DataFrame) -> AnalysisResult:
    return analyze(frame, seed=0, n_boot=300, **QUICK)


def test_correlation_signs_follow_the_effects_the_rating_was_built_from(
    result: AnalysisResult,
) -> None:
    table = result.correlations.set_index("feature")
    for feature, effect in TRUE_EFFECTS.items():
        assert np.sign(table.loc[feature, "pearson_r"]) == np.sign(effect), feature
    assert table.loc["colorfulness", "p_adjusted"] < 1e-6
    assert table.loc["face_count", "family"] == "primary"
    assert table.loc["entropy", "family"] == "exploratory"


def test_every_model_is_scored_out_of_fold_with_intervals(result: AnalysisResult) -> None:
    for task, key in (("regression", "r2"), ("regression_poster_only", "r2"),
                      ("classification", "auc")):
        cv = result.model[task]["cv"]
        assert (cv["folds"], cv["repeats"]) == (3, 2)
        assert set(cv["models"]) == {"mlp", "ridge", "ols", "mean_baseline"}
        for scores in cv["models"].values():
            assert scores[f"{key}_ci_low"] <= scores[f"{key}_mean"] <= scores[f"{key}_ci_high"]
        assert set(cv["mlp_minus_ridge"]) == {"mean", "ci_low", "ci_high"}
        assert 0 < result.model[task]["permutation_p"] < 0.05
    regression = result.model["regression"]["cv"]["models"]
    assert regression["mlp"]["r2_ci_low"] > 0.2 > regression["mean_baseline"]["r2_mean"]


def test_predictions_are_out_of_fold_for_every_row_with_their_actual_ratings(
    result: AnalysisResult, frame: pd.DataFrame
) -> None:
    predictions = result.predictions
    assert len(predictions) == result.n == 575
    actual = frame.set_index("imdb_id").loc[predictions["imdb_id"], "score"].to_numpy()
    np.testing.assert_array_equal(predictions["actual"], actual)
    assert predictions["predicted"].notna().all()


def test_the_poster_only_model_has_no_genre_inputs_and_explains_less(
    result: AnalysisResult,
) -> None:
    poster, genre = result.model["regression_poster_only"], result.model["regression"]
    assert not any(name.startswith("genre_") for name in poster["inputs"])
    assert set(poster["inputs"]) == {n for n in genre["inputs"] if not n.startswith("genre_")}
    assert poster["cv"]["models"]["mlp"]["r2_mean"] < genre["cv"]["models"]["mlp"]["r2_mean"]


def test_controls_importance_effects_and_provenance_are_reported(result: AnalysisResult) -> None:
    controls = {row["feature"]: row for row in result.controls}
    assert controls["face_count"]["controls"] == ["genre", "year"]
    assert controls["face_count"]["slope"] < 0 < controls["colorfulness"]["slope"]
    assert "width" not in controls and result.constant_features == ["width", "height", "aspect"]
    assert {row["feature"] for row in result.importance} == set(
        result.model["regression_poster_only"]["inputs"])
    assert result.importance[0]["feature"] in ("colorfulness", "face_count", "entropy",
                                               "contrast")
    assert result.face_effects["per_face"]["slope"] < 0
    assert result.provenance["n"] == 575
    assert result.provenance["settings"]["analysis_options"]["folds"] == 3
    assert "skipped" in result.detector


def test_face_buckets_merge_small_top_buckets_and_respect_the_rating_scale(
    result: AnalysisResult,
) -> None:
    buckets = result.face_buckets
    assert buckets["n"].sum() == result.n and (buckets["n"] >= 10).all()
    assert buckets["bucket"].iloc[-1].endswith("+")
    assert (buckets["ci_low"] >= 1).all() and (buckets["ci_high"] <= 10).all()
    assert set(result.face_buckets_by_genre) >= {"Drama", "Horror"}


def test_colour_groups_are_on_the_0_1_scale_with_at_least_min_n_posters(
    result: AnalysisResult,
) -> None:
    groups = result.color_groups
    assert set(groups["channel"]) == {"r", "g", "b"}
    assert groups["level"].between(0, 1).all() and (groups["n"] >= 10).all()
    left_out = groups.attrs["left_out"]
    assert (groups.groupby("channel")["n"].sum() <= result.n).all() and left_out >= 0


def test_the_stored_network_is_the_final_model_of_the_chosen_settings(
    result: AnalysisResult, frame: pd.DataFrame
) -> None:
    stored = json.loads(json.dumps(result.to_dict(), allow_nan=False))["model"]["regression"]
    network = stored["network"]
    assert network["inputs"] == stored["inputs"]
    assert network["plan"]["hidden_size"] == stored["hidden_size"] == network["layer_sizes"][1]
    assert len(network["members"]) == stored["ensemble"] == 2
    model = FittedModel.from_dict(network)
    X = design_matrix(frame, histograms=False).loc[:, stored["inputs"]].dropna()
    assert np.isfinite(model.predict(X.to_numpy())).all()


def test_to_dict_is_strict_json_with_the_contract_keys(result: AnalysisResult) -> None:
    data = json.loads(json.dumps(result.to_dict(), allow_nan=False))
    assert {"provenance", "correlations", "controls", "importance", "model"} <= set(data)
    assert {"n", "settings"} <= set(data["provenance"])  # the rest comes from the run
    width = next(row for row in data["correlations"] if row["feature"] == "width")
    assert width["pearson_r"] is None and data["skipped_features"]["width"] == "constant feature"
    assert {"feature", "n", "pearson_r", "p_adjusted", "family", "spearman_p_adjusted"} <= set(
        data["correlations"][0])
    assert set(data["controls"][0]) == {"feature", "n", "slope", "ci_low", "ci_high",
                                        "slope_per_sd", "partial_r", "p", "p_adjusted",
                                        "family", "controls"}
    assert set(data["importance"][0]) == {"feature", "mean", "ci_low", "ci_high"}


def test_the_same_seed_gives_the_same_result() -> None:
    df = synthetic_frame(120, seed=4)
    first = analyze(df, seed=3, n_boot=100, **QUICK).to_dict()
    assert first == analyze(df, seed=3, n_boot=100, **QUICK).to_dict()


@pytest.mark.parametrize("rows", [0, 5, 29])
def test_small_data_skips_the_models_but_never_raises(rows: int) -> None:
    result = analyze(synthetic_frame(rows, seed=0), n_boot=100)
    assert set(result.model) == {"skipped"} and str(rows) in result.model["skipped"]
    assert result.face_buckets["n"].sum() == rows
    assert result.n == rows
    json.dumps(result.to_dict(), allow_nan=False)


def test_missing_score_column_or_tiny_min_rows_raise_value_error() -> None:
    with pytest.raises(ValueError, match="score"):
        analyze(pd.DataFrame({"face_count": [1]}))
    with pytest.raises(ValueError, match="min_rows"):
        analyze(synthetic_frame(10), min_rows=3)
