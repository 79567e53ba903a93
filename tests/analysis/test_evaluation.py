"""Model inputs, metrics, the train/test split and the MLP against its baselines."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from posterlab.analysis import MLP, TrainingPlan, design_matrix, evaluate
from posterlab.analysis.ensemble import FittedModel
from posterlab.analysis.evaluation import (
    auc,
    classification_metrics,
    ols_fit,
    regression_metrics,
    split_indices,
)
from posterlab.analysis.inputs import Scaler, fit_scaler
from posterlab.analysis.synthetic import synthetic_frame

SMALL = TrainingPlan(hidden_sizes=(4, 8), folds=2, epochs=60, ensemble=2)


def test_regression_metrics_have_known_values() -> None:
    m = regression_metrics(np.array([1.0, 2.0, 3.0, 4.0]), np.array([1.0, 2.0, 3.0, 6.0]))
    assert m == {"mae": 0.5, "rmse": 1.0, "r2": pytest.approx(1 - 4 / 5)}
    assert np.isnan(regression_metrics(np.ones(3), np.ones(3))["r2"])


def test_auc_counts_ties_as_half_and_is_nan_for_one_class() -> None:
    assert auc(np.array([0, 1]), np.array([0.5, 0.5])) == 0.5
    assert auc(np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8])) == 0.75
    assert np.isnan(auc(np.ones(4), np.arange(4.0)))
    assert classification_metrics(np.array([0, 1, 1]), np.array([0.6, 0.7, 0.2])) == {
        "accuracy": pytest.approx(1 / 3),
        "auc": 0.5,
    }


def test_ols_recovers_exact_linear_coefficients_even_with_a_duplicate_column() -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(50, 2))
    y = 3.0 + X @ [1.5, -2.0]
    np.testing.assert_allclose(ols_fit(X, y), [3.0, 1.5, -2.0])
    doubled = ols_fit(np.column_stack([X, X[:, 0]]), y)  # rank-deficient: minimum norm
    np.testing.assert_allclose(doubled, [3.0, 0.75, -2.0, 0.75])


def test_scalers_map_training_columns_to_unit_range_or_unit_variance() -> None:
    X = np.array([[1.0, 5.0], [3.0, 5.0], [5.0, 5.0]])
    minmax = fit_scaler(X, "minmax")
    np.testing.assert_allclose(minmax.transform(X), [[0, 0], [0.5, 0], [1, 0]])
    standard = fit_scaler(X)
    np.testing.assert_allclose(standard.transform(X)[:, 0].std(), 1.0)
    np.testing.assert_allclose(standard.inverse_transform(standard.transform(X)), X)
    with pytest.raises(ValueError, match="method"):
        fit_scaler(X, "robust")


def test_design_matrix_names_every_input_and_spreads_histograms() -> None:
    frame = synthetic_frame(40, seed=0)
    frame.loc[3, "grey_hist"] = None  # a poster without a histogram: NaN row, not a crash
    X = design_matrix(frame, min_genre_rows=1)
    assert X.columns[0] == "face_count"
    assert {"width", "height", "aspect"}.isdisjoint(X.columns)  # constant: no information
    assert [c for c in X.columns if c.startswith("grey_hist")] == [
        f"grey_hist_{k}" for k in range(20)
    ]
    assert sum(c.startswith("rgb_hist_") for c in X.columns) == 48
    assert X.loc[3, "grey_hist_0":"grey_hist_19"].isna().all()
    assert set(X.filter(like="genre_").stack().unique()) == {0.0, 1.0}


def test_design_matrix_copes_without_optional_columns() -> None:
    frame = pd.DataFrame({"face_count": [0, 1, 2], "brightness": [0.1, 0.2, np.nan]})
    assert list(design_matrix(frame).columns) == ["face_count", "brightness"]
    mostly_missing = frame.assign(entropy=[np.nan, np.nan, 1.0])
    assert "entropy" not in design_matrix(mostly_missing).columns


def test_split_is_seeded_disjoint_and_complete() -> None:
    train, test = split_indices(101, test_fraction=0.2, seed=3)
    assert len(test) == 20 and len(train) == 81
    assert sorted(np.r_[train, test]) == list(range(101))
    again = split_indices(101, test_fraction=0.2, seed=3)
    np.testing.assert_array_equal(again[1], test)
    with pytest.raises(ValueError, match="test_fraction"):
        split_indices(10, test_fraction=1.0, seed=0)


def test_mlp_beats_the_mean_baseline_on_a_rating_built_from_features() -> None:
    frame = synthetic_frame(500, seed=1)
    X = design_matrix(frame, histograms=False).to_numpy()
    result = evaluate(X, frame["score"].to_numpy(), seed=1, plan=SMALL)
    m = result.metrics
    assert m["mlp"]["r2"] > 0.3 and m["mlp"]["mae"] < m["mean_baseline"]["mae"]
    assert abs(m["mean_baseline"]["r2"]) < 0.05
    assert m["hidden_size"] in (4, 8) and set(m["cv_mse"]) == {"4", "8"}
    assert (m["n_train"], m["n_test"]) == (400, 100)
    assert len(result.predicted) == 100 and result.history.epochs == m["epochs"]


def test_band_classification_beats_guessing_the_majority() -> None:
    frame = synthetic_frame(500, seed=2)
    X = design_matrix(frame, histograms=False).to_numpy()
    m = evaluate(X, frame["score"].to_numpy(), task="classification", band=6.5, plan=SMALL).metrics
    assert m["mean_baseline"]["auc"] == 0.5
    assert m["mlp"]["auc"] > 0.75
    assert m["mlp"]["accuracy"] > m["mean_baseline"]["accuracy"]
    assert 0.0 < m["positive_share_train"] < 1.0


def test_evaluation_is_reproducible_for_a_seed() -> None:
    frame = synthetic_frame(120, seed=3)
    X, y = design_matrix(frame, histograms=False).to_numpy(), frame["score"].to_numpy()
    first, second = evaluate(X, y, seed=5, plan=SMALL), evaluate(X, y, seed=5, plan=SMALL)
    assert first.metrics == second.metrics
    np.testing.assert_array_equal(first.predicted, second.predicted)


def test_invalid_evaluation_arguments_raise_value_error_naming_them() -> None:
    X, y = np.zeros((20, 2)), np.arange(20.0)
    with pytest.raises(ValueError, match="task"):
        evaluate(X, y, task="ranking")
    with pytest.raises(ValueError, match="band"):
        evaluate(X, y, task="classification", band=100.0)
    with pytest.raises(ValueError, match="hidden_sizes"):
        TrainingPlan(hidden_sizes=())
    with pytest.raises(ValueError, match="folds"):
        TrainingPlan(folds=1)
    with pytest.raises(ValueError, match="ensemble"):
        TrainingPlan(ensemble=0)
    with pytest.raises(ValueError, match="split"):
        evaluate(X, y, split=(np.arange(10), np.arange(5, 20)))


def test_the_fitted_model_is_the_mean_of_its_networks_and_reproduces_the_test_output() -> None:
    frame = synthetic_frame(200, seed=6)
    X, y = design_matrix(frame, histograms=False).to_numpy(), frame["score"].to_numpy()
    result = evaluate(X, y, seed=2, plan=SMALL, inputs=[f"c{k}" for k in range(X.shape[1])])
    fitted = result.fitted
    assert fitted is not None and len(fitted.networks) == 2 == result.metrics["ensemble"]
    assert len(result.metrics["member_epochs"]) == 2
    np.testing.assert_allclose(fitted.predict(X[result.test_index]), result.predicted, rtol=1e-12)
    scaled = fitted.x_scaler.transform(X[:5])
    by_hand = np.mean([net.predict(scaled) for net in fitted.networks], axis=0)
    np.testing.assert_allclose(fitted.predict(X[:5]), fitted.y_scaler.inverse_transform(by_hand))
    stored = fitted.to_dict()
    assert stored["inputs"][0] == "c0" and stored["plan"]["seed"] == 2
    again = FittedModel.from_dict(stored)
    np.testing.assert_array_equal(again.predict(X[:5]), fitted.predict(X[:5]))


def test_an_explicit_split_is_used_as_given() -> None:
    frame = synthetic_frame(120, seed=3)
    X, y = design_matrix(frame, histograms=False).to_numpy(), frame["score"].to_numpy()
    train, test = np.arange(100), np.arange(100, 120)
    result = evaluate(X, y, plan=SMALL, split=(train, test))
    np.testing.assert_array_equal(result.test_index, test)
    assert (result.metrics["n_train"], result.metrics["n_test"]) == (100, 20)


def test_stored_networks_that_do_not_fit_together_are_rejected() -> None:
    unit = Scaler(np.zeros(2), np.ones(2)), Scaler(np.zeros(1), np.ones(1))
    with pytest.raises(ValueError, match="same shape"):
        FittedModel((MLP((2, 3, 1), seed=0), MLP((2, 4, 1), seed=0)), *unit)
    stored = FittedModel((MLP((2, 3, 1), seed=0),), *unit).to_dict()
    stored["members"][0]["biases"][0] = [0.0, 1.0]  # 2 biases for 3 units
    with pytest.raises(ValueError, match="stored network"):
        FittedModel.from_dict(stored)
    with pytest.raises(ValueError, match="stored network"):
        FittedModel.from_dict({"layer_sizes": [2, 1]})
    with pytest.raises(ValueError, match="inputs"):
        FittedModel((MLP((2, 1), seed=0),), *unit).with_inputs(["a"])
