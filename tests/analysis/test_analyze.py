"""analyze(): the whole analysis on frames shaped like an export."""

from __future__ import annotations

import doctest
import importlib
import json

import numpy as np
import pandas as pd
import pytest

from posterlab.analysis import AnalysisResult, TrainingPlan, analyze, design_matrix
from posterlab.analysis.ensemble import FittedModel
from posterlab.analysis.synthetic import TRUE_EFFECTS, synthetic_frame

# one test process builds the module's expensive fixture once for all of its tests
pytestmark = pytest.mark.xdist_group("analyze")

FAST = TrainingPlan(hidden_sizes=(4,), folds=2, epochs=40, ensemble=2)


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
    assert set(result.history) == {"regression", "regression_poster_only", "classification"}


def test_the_poster_only_model_has_no_genre_inputs_and_explains_less(
    result: AnalysisResult,
) -> None:
    poster, genre = result.model["regression_poster_only"], result.model["regression"]
    assert not any(name.startswith("genre_") for name in poster["inputs"])
    assert set(poster["inputs"]) == {n for n in genre["inputs"] if not n.startswith("genre_")}
    assert poster["n_test"] == genre["n_test"]  # same rows, same split
    assert poster["mean_baseline"] == genre["mean_baseline"]
    # The synthetic rating carries genre shifts, so genre must add to what the poster explains.
    assert 0.2 < poster["mlp"]["r2"] < genre["mlp"]["r2"]


def test_face_buckets_show_fewer_faces_going_with_higher_ratings(result: AnalysisResult) -> None:
    buckets = result.face_buckets
    assert buckets["bucket"].tolist() == ["0", "1", "2", "3", "4", "5+"]
    assert buckets["n"].sum() == result.n
    assert buckets["mean"].iloc[:4].is_monotonic_decreasing  # 4 and 5+ hold few posters
    assert (buckets["ci_low"] < buckets["mean"]).all() and (
        buckets["mean"] < buckets["ci_high"]
    ).all()
    assert set(result.face_buckets_by_genre) >= {"Drama", "Horror"}
    assert result.face_buckets_by_genre["Drama"]["n"].sum() < result.n


def test_colour_groups_cover_every_rated_poster_once_per_channel(result: AnalysisResult) -> None:
    groups = result.color_groups
    assert set(groups["channel"]) == {"r", "g", "b"}
    assert (groups.groupby("channel")["n"].sum() == result.n).all()
    assert (groups["level"] % 10 == 0).all() and groups["level"].between(0, 260).all()


def test_the_stored_networks_predict_the_reported_test_ratings(
    result: AnalysisResult, frame: pd.DataFrame
) -> None:
    stored = json.loads(json.dumps(result.to_dict(), allow_nan=False))["model"]["regression"]
    network = stored["network"]
    assert network["inputs"] == stored["inputs"]
    assert network["plan"]["hidden_size"] == stored["hidden_size"] == network["layer_sizes"][1]
    assert network["plan"]["ensemble"] == len(network["members"]) == stored["ensemble"]
    assert {"l2", "learning_rate", "epochs", "hidden_sizes"} <= set(network["plan"])
    assert len(network["scaling"]["offset"]) == len(stored["inputs"])
    model = FittedModel.from_dict(network)
    X = design_matrix(frame, histograms=False).set_axis(frame["imdb_id"])
    predicted = model.predict(X.loc[result.predictions["imdb_id"], stored["inputs"]].to_numpy())
    np.testing.assert_allclose(predicted, result.predictions["predicted"], rtol=1e-12)


def test_to_dict_is_strict_json_with_nan_as_null(result: AnalysisResult) -> None:
    data = json.loads(json.dumps(result.to_dict(), allow_nan=False))
    assert set(data) == {
        "correlations", "face_buckets", "colour_groups", "face_buckets_by_genre", "model", "n",
        "skipped_features", "history",
    }  # fmt: skip
    assert set(data["model"]) == {"regression", "regression_poster_only", "classification"}
    width = next(row for row in data["correlations"] if row["feature"] == "width")
    assert width["pearson_r"] is None and width["n"] == 1975
    assert data["skipped_features"]["width"] == "constant feature"
    assert set(data["correlations"][0]) == {
        "feature", "n", "pearson_r", "pearson_p", "spearman_rho", "spearman_p",
        "ci_low", "ci_high", "p_adjusted", "fisher_low", "fisher_high",
    }  # fmt: skip
    assert set(data["face_buckets"][0]) == {
        "bucket", "n", "mean", "median", "std", "sem", "ci_low", "ci_high",
    }  # fmt: skip
    assert {"channel", "level", "n", "mean", "ci_low", "ci_high"} <= set(data["colour_groups"][0])


def test_the_same_seed_gives_the_same_result() -> None:
    df = synthetic_frame(150, seed=4)
    first = analyze(df, seed=3, plan=FAST, n_boot=300).to_dict()
    assert first == analyze(df, seed=3, plan=FAST, n_boot=300).to_dict()
    other = analyze(df, seed=4, plan=FAST, n_boot=300).to_dict()
    assert other["correlations"][0]["ci_low"] != first["correlations"][0]["ci_low"]


def test_histogram_inputs_are_used_only_when_asked() -> None:
    df = synthetic_frame(150, seed=4)
    inputs = analyze(df, histograms=True, plan=FAST, n_boot=100).model["regression"]["inputs"]
    assert sum(name.startswith("rgb_hist_") for name in inputs) == 48
    without = analyze(df.drop(columns=["grey_hist", "rgb_hist", "genres"]), plan=FAST, n_boot=100)
    assert not any(
        "hist" in name or "genre" in name for name in without.model["regression"]["inputs"]
    )


@pytest.mark.parametrize("rows", [0, 1, 5, 29])
def test_small_data_skips_the_models_but_never_raises(rows: int) -> None:
    result = analyze(synthetic_frame(rows, seed=0), n_boot=100)
    assert set(result.model) == {"skipped"} and str(rows) in result.model["skipped"]
    assert len(result.face_buckets) == 6 and result.face_buckets["n"].sum() == rows
    assert len(result.correlations) == 25 and result.n == rows
    json.dumps(result.to_dict(), allow_nan=False)
    if rows >= 5:
        assert result.correlations.set_index("feature").loc["colorfulness", "n"] == rows


def test_a_band_nobody_reaches_skips_only_the_classification() -> None:
    result = analyze(synthetic_frame(80, seed=0), band=9.9, plan=FAST, n_boot=100)
    assert "mlp" in result.model["regression"]
    assert "skipped" in result.model["classification"]
    assert set(result.history) == {"regression", "regression_poster_only"}


def test_without_face_counts_the_buckets_are_empty_and_nothing_raises() -> None:
    result = analyze(synthetic_frame(60, seed=0).drop(columns="face_count"), plan=FAST, n_boot=100)
    assert result.face_buckets["n"].tolist() == [0] * 6 and not result.face_buckets_by_genre
    json.dumps(result.to_dict(), allow_nan=False)


def test_missing_score_column_or_tiny_min_rows_raise_value_error() -> None:
    with pytest.raises(ValueError, match="score"):
        analyze(pd.DataFrame({"face_count": [1]}))
    with pytest.raises(ValueError, match="min_rows"):
        analyze(synthetic_frame(10), min_rows=3)


@pytest.mark.parametrize(
    "module",
    [
        "network",
        "training",
        "correlations",
        "groups",
        "ensemble",
        "inputs",
        "evaluation",
        "analyze",
        "result",
        "synthetic",
        "plots",
        "report",
        "_render",
    ],
)
def test_docstring_examples_run(module: str) -> None:
    mod = importlib.import_module(f"posterlab.analysis.{module}")
    failures, tried = doctest.testmod(mod, extraglobs={"np": np, "pd": pd})
    assert tried > 0 and failures == 0
