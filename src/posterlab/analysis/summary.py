"""The whole analysis of a run in one call: correlations, grouped means, the models."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from posterlab.analysis.columns import TARGET
from posterlab.analysis.correlations import N_BOOT, correlate
from posterlab.analysis.groups import (
    FACE_BUCKETS,
    GROUP_COLUMNS,
    colour_groups,
    common_genres,
    face_buckets,
)
from posterlab.analysis.inputs import design_matrix
from posterlab.analysis.mlp import TrainingHistory
from posterlab.analysis.model import TrainingPlan, evaluate, split_indices

__all__ = ["MODELS", "AnalysisResult", "analyze", "jsonable"]

_MIN_MODEL_ROWS = 10  # below this 3-fold CV with a validation split leaves empty sets
# The models analyze() trains: name -> (task, genre indicators among the inputs). The
# poster-only regression answers the question itself; genre explains far more of the
# rating, and comparing the two says how much the poster adds.
MODELS: dict[str, tuple[str, bool]] = {
    "regression": ("regression", True),
    "regression_poster_only": ("regression", False),
    "classification": ("classification", True),
}


@dataclass(frozen=True, eq=False)  # eq=False: DataFrames have no single truth value
class AnalysisResult:
    """Everything :func:`analyze` found.

    Attributes
    ----------
    correlations : DataFrame
        :func:`~posterlab.analysis.correlate` of every scalar feature with the rating.
    face_buckets : DataFrame
        Rating by face-count bucket (0, 1, 2, 3, 4, 5+) with n and a 95% t-interval.
    model : dict
        One entry per name of :data:`MODELS` (``regression`` with genre indicators,
        ``regression_poster_only`` without, ``classification`` of the rating band) with
        the metrics of the MLP and of both baselines, the input names and ``network``:
        the trained weights, scaling and settings (:meth:`FittedModel.to_dict`). Or
        ``{"skipped": reason}`` when there are too few rows; a model can also be skipped
        alone (``{"skipped": reason}`` in its place).
    history : dict of str to TrainingHistory
        Learning curve of the final network of each model that ran.
    predictions : DataFrame
        Test rows of the regression: ``imdb_id``, ``actual``, ``predicted``.
    n : int
        Rows with a rating.
    skipped_features : dict
        Features without correlations, and why.
    colour_groups : DataFrame
        Rating by mean red, green, blue rounded to tens on 0-255, with n and a t-interval.
    face_buckets_by_genre : dict of str to DataFrame
        The face buckets within each of the most common genres.
    """

    correlations: pd.DataFrame
    face_buckets: pd.DataFrame
    model: dict[str, Any]
    history: dict[str, TrainingHistory] = field(default_factory=dict)
    predictions: pd.DataFrame = field(default_factory=pd.DataFrame)
    n: int = 0
    skipped_features: dict[str, str] = field(default_factory=dict)
    colour_groups: pd.DataFrame = field(default_factory=pd.DataFrame)
    face_buckets_by_genre: dict[str, pd.DataFrame] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable summary; NaN and infinities become ``None``.

        Keys: ``correlations``, ``face_buckets``, ``colour_groups``,
        ``face_buckets_by_genre``, ``model``, ``n``, ``skipped_features``, ``history``.
        """
        return jsonable(
            {
                "correlations": self.correlations.to_dict("records"),
                "face_buckets": self.face_buckets.to_dict("records"),
                "colour_groups": self.colour_groups.to_dict("records"),
                "face_buckets_by_genre": {
                    genre: table.to_dict("records")
                    for genre, table in self.face_buckets_by_genre.items()
                },
                "model": self.model,
                "n": self.n,
                "skipped_features": self.skipped_features,
                "history": {task: h.to_dict() for task, h in self.history.items()},
            }
        )


def jsonable(value: Any) -> Any:
    """``value`` with numpy scalars and arrays as Python ones and NaN/inf as ``None``.

    Examples
    --------
    >>> jsonable({"r": np.float64("nan"), "n": np.int64(3), "v": np.array([1.5])})
    {'r': None, 'n': 3, 'v': [1.5]}
    """
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _model_inputs(usable: pd.DataFrame, *, histograms: bool, genres: bool) -> pd.DataFrame:
    X = design_matrix(usable, histograms=histograms, genres=genres)
    return X.loc[X.notna().all(axis=1)]


def _band_problem(
    y: np.ndarray, band: float, need: int, test_fraction: float, seed: int
) -> str | None:
    """Why the rating band cannot be learnt from ``y``, or None."""
    positives = int(np.sum(y >= band))
    train, _ = split_indices(len(y), test_fraction=test_fraction, seed=seed)
    if min(positives, len(y) - positives) < need or len(np.unique(y[train] >= band)) < 2:
        return f"{positives} of {len(y)} ratings >= {band}; need {need} on each side"
    return None


def _groups(usable: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, pd.DataFrame]]:
    """Face buckets (overall and within common genres) and colour groups."""
    if "face_count" not in usable.columns:
        empty = pd.DataFrame({"bucket": list(FACE_BUCKETS), **dict.fromkeys(GROUP_COLUMNS, np.nan)})
        empty["n"] = 0
        return empty, colour_groups(usable), {}
    by_genre = {genre: face_buckets(usable, genre=genre) for genre in common_genres(usable)}
    return face_buckets(usable), colour_groups(usable), by_genre


def _models(
    usable: pd.DataFrame, *, seed: int, test_fraction: float, min_rows: int, band: float,
    histograms: bool, plan: TrainingPlan | None,
) -> tuple[dict[str, Any], dict[str, TrainingHistory], pd.DataFrame]:  # fmt: skip
    """Train every model of :data:`MODELS`; their entries, learning curves, predictions."""
    model: dict[str, Any] = {}
    history: dict[str, TrainingHistory] = {}
    predictions = pd.DataFrame(columns=["imdb_id", "actual", "predicted"])
    for name, (task, genres) in MODELS.items():
        X = _model_inputs(usable, histograms=histograms, genres=genres)
        if len(X) < min_rows or X.shape[1] == 0:
            reason = (f"{len(X)} rows with a rating and complete inputs, {X.shape[1]} "
                      f"inputs; the models need {min_rows} rows and one input")  # fmt: skip
            if name == "regression":  # no usable inputs at all: nothing else can run
                return {"skipped": reason}, {}, predictions
            model[name] = {"skipped": reason}
            continue
        y = usable.loc[X.index, TARGET].to_numpy(np.float64)
        problem = _band_problem(y, band, min_rows // 5, test_fraction, seed)
        if task == "classification" and problem:
            model[name] = {"skipped": problem}
            continue
        ev = evaluate(
            X.to_numpy(), y, task=task, band=band, test_fraction=test_fraction,
            seed=seed, plan=plan, inputs=list(X.columns),
        )  # fmt: skip
        network = ev.fitted.to_dict() if ev.fitted is not None else None
        model[name] = {**ev.metrics, "inputs": list(X.columns), "network": network}
        history[name] = ev.history
        if name == "regression":
            rows = X.index[ev.test_index]
            ids = usable.loc[rows, "imdb_id"] if "imdb_id" in usable else pd.Series(rows)
            predictions = pd.DataFrame(
                {"imdb_id": ids.to_numpy(), "actual": y[ev.test_index], "predicted": ev.predicted}
            )
    return model, history, predictions


def analyze(
    df: pd.DataFrame,
    *,
    seed: int = 0,
    test_fraction: float = 0.2,
    min_rows: int = 30,
    band: float = 7.0,
    histograms: bool = False,
    plan: TrainingPlan | None = None,
    n_boot: int = N_BOOT,
) -> AnalysisResult:
    """Correlate poster features with the rating and predict the rating from them.

    Parameters
    ----------
    df : DataFrame
        One row per poster that finished: ``imdb_id``, ``score`` (rows with NaN are
        dropped), ``genres``, ``face_count`` and the scalar features; optional
        ``grey_hist`` / ``rgb_hist`` vector columns.
    seed : int
        Seeds the bootstrap, the split, the folds and every network: same input, same
        result.
    test_fraction : float
        Share of rows held out for the reported metrics.
    min_rows : int
        Below this many rows with a rating and complete inputs, the models are skipped
        (correlations and grouped means are still computed wherever possible).
    band : float
        Classification predicts ``score >= band``.
    histograms : bool
        Also feed the histogram bins to the models. Off by default: 68 bins against a
        few thousand posters let the network fit noise, and what they carry is mostly
        in brightness, contrast, entropy and the mean colours already.
    plan : TrainingPlan, optional
        Hidden sizes for cross-validation, folds, optimiser settings.
    n_boot : int
        Bootstrap resamples for each correlation's interval.

    Returns
    -------
    AnalysisResult

    Examples
    --------
    >>> from posterlab.analysis.synthetic import synthetic_frame
    >>> result = analyze(synthetic_frame(60), plan=TrainingPlan(hidden_sizes=(4,)), n_boot=200)
    >>> result.n, sorted(result.model)
    (60, ['classification', 'regression', 'regression_poster_only'])
    """
    if TARGET not in df.columns:
        raise ValueError(f"df must have a {TARGET!r} column")
    if min_rows < _MIN_MODEL_ROWS:
        raise ValueError(f"min_rows must be at least {_MIN_MODEL_ROWS}, got {min_rows!r}")
    ratings = pd.to_numeric(df[TARGET], errors="coerce")
    usable = df.loc[np.isfinite(ratings.to_numpy(np.float64))].copy()
    usable[TARGET] = ratings[usable.index].astype(np.float64)
    correlations = correlate(usable, n_boot=n_boot, seed=seed)
    buckets, colours, by_genre = _groups(usable)
    model, history, predictions = _models(
        usable, seed=seed, test_fraction=test_fraction, min_rows=min_rows, band=band,
        histograms=histograms, plan=plan,
    )  # fmt: skip
    return AnalysisResult(
        correlations=correlations,
        face_buckets=buckets,
        model=model,
        history=history,
        predictions=predictions,
        n=len(usable),
        skipped_features=dict(correlations.attrs.get("skipped", {})),
        colour_groups=colours,
        face_buckets_by_genre=by_genre,
    )
