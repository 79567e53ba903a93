"""The whole analysis of a run in one call: correlations, grouped means, the models.

:func:`analyze` is the entry point (``posterlab analyze`` and the final task of a run
call it); it reads one export-shaped DataFrame and returns an
:class:`~posterlab.analysis.result.AnalysisResult`.

The histogram bins are not model inputs by default: 68 bins against a few thousand
posters let the network fit noise, and what they carry is mostly in brightness,
contrast, entropy and the mean colours already.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from posterlab.analysis.columns import TARGET
from posterlab.analysis.correlations import N_BOOT, correlate
from posterlab.analysis.ensemble import TrainingPlan
from posterlab.analysis.evaluation import Evaluation, evaluate, split_indices
from posterlab.analysis.groups import (
    FACE_BUCKETS,
    GROUP_COLUMNS,
    color_groups,
    common_genres,
    face_buckets,
)
from posterlab.analysis.inputs import design_matrix
from posterlab.analysis.result import AnalysisResult
from posterlab.analysis.training import TrainingHistory

__all__ = ["MODELS", "analyze"]

_MIN_MODEL_ROWS = 10  # below this 3-fold CV with a validation split leaves empty sets
# The models analyze() trains: name -> (task, genre indicators among the inputs). The
# poster-only regression answers the question itself; genre explains far more of the
# rating, and comparing the two says how much the poster adds.
MODELS: dict[str, tuple[str, bool]] = {
    "regression": ("regression", True),
    "regression_poster_only": ("regression", False),
    "classification": ("classification", True),
}


def analyze(
    df: pd.DataFrame, *, seed: int = 0, test_fraction: float = 0.2, min_rows: int = 30,
    band: float = 7.0, histograms: bool = False, plan: TrainingPlan | None = None,
    n_boot: int = N_BOOT,
) -> AnalysisResult:  # fmt: skip
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
        Also feed the histogram bins to the models (off by default: see the module).
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
    usable = _rated_rows(df, min_rows)
    correlations = correlate(usable, n_boot=n_boot, seed=seed)
    buckets, colors, by_genre = _groups(usable)
    settings = _ModelSettings(seed, test_fraction, min_rows, band, histograms, plan)
    model, history, predictions = _models(usable, settings)
    return AnalysisResult(
        correlations=correlations, face_buckets=buckets, model=model, history=history,
        predictions=predictions, n=len(usable),
        skipped_features=dict(correlations.attrs.get("skipped", {})),
        color_groups=colors, face_buckets_by_genre=by_genre,
    )  # fmt: skip


def _rated_rows(df: pd.DataFrame, min_rows: int) -> pd.DataFrame:
    """The rows with a finite rating, the rating as float64; checks the arguments first."""
    if TARGET not in df.columns:
        raise ValueError(f"df must have a {TARGET!r} column")
    if min_rows < _MIN_MODEL_ROWS:
        raise ValueError(f"min_rows must be at least {_MIN_MODEL_ROWS}, got {min_rows!r}")
    ratings = pd.to_numeric(df[TARGET], errors="coerce")
    usable = df.loc[np.isfinite(ratings.to_numpy(np.float64))].copy()
    usable[TARGET] = ratings[usable.index].astype(np.float64)
    return usable


def _groups(usable: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, pd.DataFrame]]:
    """Face buckets (overall and within common genres) and color groups."""
    if "face_count" not in usable.columns:
        empty = pd.DataFrame({"bucket": list(FACE_BUCKETS), **dict.fromkeys(GROUP_COLUMNS, np.nan)})
        empty["n"] = 0
        return empty, color_groups(usable), {}
    by_genre = {genre: face_buckets(usable, genre=genre) for genre in common_genres(usable)}
    return face_buckets(usable), color_groups(usable), by_genre


@dataclass(frozen=True)
class _ModelSettings:
    """The arguments of :func:`analyze` that every model shares."""

    seed: int
    test_fraction: float
    min_rows: int
    band: float
    histograms: bool
    plan: TrainingPlan | None


def _models(
    usable: pd.DataFrame, settings: _ModelSettings
) -> tuple[dict[str, Any], dict[str, TrainingHistory], pd.DataFrame]:
    """Train every model of :data:`MODELS`; their entries, learning curves, predictions."""
    model: dict[str, Any] = {}
    history: dict[str, TrainingHistory] = {}
    predictions = pd.DataFrame(columns=["imdb_id", "actual", "predicted"])
    for name, (task, genres) in MODELS.items():
        X = _model_inputs(usable, histograms=settings.histograms, genres=genres)
        y = usable.loc[X.index, TARGET].to_numpy(np.float64)
        too_few = _too_few(X, settings.min_rows)
        if too_few and name == "regression":  # no usable inputs at all: nothing else can run
            return {"skipped": too_few}, {}, predictions
        reason = too_few or (_band_problem(y, settings) if task == "classification" else None)
        if reason:
            model[name] = {"skipped": reason}
            continue
        ev = _evaluate(X, y, task, settings)
        model[name], history[name] = _entry(ev, X), ev.history
        if name == "regression":
            predictions = _predictions(usable, X, y, ev)
    return model, history, predictions


def _model_inputs(usable: pd.DataFrame, *, histograms: bool, genres: bool) -> pd.DataFrame:
    X = design_matrix(usable, histograms=histograms, genres=genres)
    return X.loc[X.notna().all(axis=1)]


def _too_few(X: pd.DataFrame, min_rows: int) -> str | None:
    """Why ``X`` is too small to train on, or None."""
    if len(X) < min_rows or X.shape[1] == 0:
        return (f"{len(X)} rows with a rating and complete inputs, {X.shape[1]} "
                f"inputs; the models need {min_rows} rows and one input")  # fmt: skip
    return None


def _band_problem(y: np.ndarray, settings: _ModelSettings) -> str | None:
    """Why the rating band cannot be learnt from ``y``, or None."""
    band, need = settings.band, settings.min_rows // 5
    positives = int(np.sum(y >= band))
    train, _ = split_indices(len(y), test_fraction=settings.test_fraction, seed=settings.seed)
    if min(positives, len(y) - positives) < need or len(np.unique(y[train] >= band)) < 2:
        return f"{positives} of {len(y)} ratings >= {band}; need {need} on each side"
    return None


def _evaluate(X: pd.DataFrame, y: np.ndarray, task: str, settings: _ModelSettings) -> Evaluation:
    return evaluate(
        X.to_numpy(), y, task=task, band=settings.band, test_fraction=settings.test_fraction,
        seed=settings.seed, plan=settings.plan, inputs=list(X.columns),
    )  # fmt: skip


def _entry(ev: Evaluation, X: pd.DataFrame) -> dict[str, Any]:
    """A model's entry: its metrics, its input names and the stored network."""
    network = ev.fitted.to_dict() if ev.fitted is not None else None
    return {**ev.metrics, "inputs": list(X.columns), "network": network}


def _predictions(usable: pd.DataFrame, X: pd.DataFrame, y: np.ndarray,
                 ev: Evaluation) -> pd.DataFrame:  # fmt: skip
    """The regression's test rows: ``imdb_id``, ``actual`` and ``predicted`` rating."""
    rows = X.index[ev.test_index]
    ids = usable.loc[rows, "imdb_id"] if "imdb_id" in usable else pd.Series(rows)
    return pd.DataFrame(
        {"imdb_id": ids.to_numpy(), "actual": y[ev.test_index], "predicted": ev.predicted}
    )
