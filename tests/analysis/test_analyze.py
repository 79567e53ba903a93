"""analyze(): the whole analysis on frames shaped like an export."""

from __future__ import annotations

import doctest
import importlib
import json

import numpy as np
import pandas as pd
import pytest

from posterlab.analysis import AnalysisResult, TrainingPlan, analyze
from posterlab.analysis.synthetic import TRUE_EFFECTS, synthetic_frame

FAST = TrainingPlan(hidden_sizes=(4,), folds=2, epochs=40)


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    df = synthetic_frame(2000, seed=11)
    df.loc[df.index[:25], "score"] = np.nan  # unrated films are dropped, not fatal
    return df


@pytest.fixture(scope="module")
def result(frame: pd.DataFrame) -> AnalysisResult:
    return analyze(frame, seed=0)


def test_correlation_signs_follow_the_effects_the_rating_was_built_from(
    result: AnalysisResult,
) -> None:
    table = result.correlations.set_index("feature")
    for feature, effect in TRUE_EFFECTS.items():
        assert np.sign(table.loc[feature, "pearson_r"]) == np.sign(effect), feature
        assert table.loc[feature, "p_adjusted"] < 1e-6, feature
    assert table.loc["centre_x", "p_adjusted"] > 0.05  # no effect built in


def test_mlp_beats_the_mean_baseline_in_both_tasks(result: AnalysisResult) -> None:
    regression, classification = result.model["regression"], result.model["classification"]
    assert regression["mlp"]["mae"] < regression["mean_baseline"]["mae"]
    assert regression["mlp"]["r2"] > 0.4 > regression["mean_baseline"]["r2"]
    assert classification["mlp"]["auc"] > 0.75 > classification["mean_baseline"]["auc"]
    assert regression["hidden_size"] in (4, 8, 16)
    assert regression["n_train"] + regression["n_test"] == result.n == 1975
    assert "face_count" in regression["inputs"] and "genre_Drama" in regression["inputs"]
    assert not any(name.startswith("grey_hist") for name in regression["inputs"])


def test_predictions_are_the_test_rows_with_their_actual_ratings(
    result: AnalysisResult, frame: pd.DataFrame
) -> None:
    predictions = result.predictions
    assert len(predictions) == result.model["regression"]["n_test"]
    actual = frame.set_index("imdb_id").loc[predictions["imdb_id"], "score"].to_numpy()
    np.testing.assert_array_equal(predictions["actual"], actual)
    assert set(result.history) == {"regression", "classification"}


def test_face_buckets_show_fewer_faces_going_with_higher_ratings(result: AnalysisResult) -> None:
    buckets = result.face_buckets
    assert buckets["bucket"].tolist() == ["0", "1", "2", "3", "4+"]
    assert buckets["n"].sum() == result.n
    assert buckets["mean"].is_monotonic_decreasing


def test_to_dict_is_strict_json_with_nan_as_null(result: AnalysisResult) -> None:
    data = json.loads(json.dumps(result.to_dict(), allow_nan=False))
    assert {"correlations", "face_buckets", "model", "n"} <= set(data)
    width = next(row for row in data["correlations"] if row["feature"] == "width")
    assert width["pearson_r"] is None and width["n"] == 1975
    assert data["skipped_features"]["width"] == "constant feature"
    assert set(data["correlations"][0]) == {
        "feature", "n", "pearson_r", "pearson_p", "spearman_rho", "spearman_p",
        "ci_low", "ci_high", "p_adjusted",
    }  # fmt: skip


def test_the_same_seed_gives_the_same_result() -> None:
    df = synthetic_frame(150, seed=4)
    assert analyze(df, seed=3, plan=FAST).to_dict() == analyze(df, seed=3, plan=FAST).to_dict()


def test_histogram_inputs_are_used_only_when_asked() -> None:
    df = synthetic_frame(150, seed=4)
    inputs = analyze(df, histograms=True, plan=FAST).model["regression"]["inputs"]
    assert sum(name.startswith("rgb_hist_") for name in inputs) == 48
    without = analyze(df.drop(columns=["grey_hist", "rgb_hist", "genres"]), plan=FAST)
    assert not any(
        "hist" in name or "genre" in name for name in without.model["regression"]["inputs"]
    )


@pytest.mark.parametrize("rows", [0, 1, 5, 29])
def test_small_data_skips_the_models_but_never_raises(rows: int) -> None:
    result = analyze(synthetic_frame(rows, seed=0))
    assert set(result.model) == {"skipped"} and str(rows) in result.model["skipped"]
    assert len(result.correlations) == 25 and result.n == rows
    json.dumps(result.to_dict(), allow_nan=False)
    if rows >= 5:
        assert result.correlations.set_index("feature").loc["colorfulness", "n"] == rows


def test_a_band_nobody_reaches_skips_only_the_classification() -> None:
    result = analyze(synthetic_frame(80, seed=0), band=9.9, plan=FAST)
    assert "mlp" in result.model["regression"]
    assert "skipped" in result.model["classification"]
    assert set(result.history) == {"regression"}


def test_missing_score_column_or_tiny_min_rows_raise_value_error() -> None:
    with pytest.raises(ValueError, match="score"):
        analyze(pd.DataFrame({"face_count": [1]}))
    with pytest.raises(ValueError, match="min_rows"):
        analyze(synthetic_frame(10), min_rows=3)


@pytest.mark.parametrize(
    "module",
    ["mlp", "correlations", "inputs", "metrics", "model", "summary", "synthetic"],
)
def test_docstring_examples_run(module: str) -> None:
    mod = importlib.import_module(f"posterlab.analysis.{module}")
    failures, tried = doctest.testmod(mod, extraglobs={"np": np, "pd": pd})
    assert tried > 0 and failures == 0
