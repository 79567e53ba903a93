"""The whole analysis of a run in one call: correlations, controls, effects, the models.

:func:`analyze` is the entry point (``posterlab analyze`` and the final task of a run
call it); it reads one export-shaped DataFrame and returns an
:class:`~posterlab.analysis.result.AnalysisResult`. The models are scored out of fold
(:mod:`posterlab.analysis.models`); the two input sets (poster features with genre
indicators, and poster features alone) are cross-validated in parallel when
``workers`` > 1.

The histogram bins are not model inputs by default: 68 bins against a few thousand
posters let the network fit noise, and what they carry is mostly in brightness,
contrast, entropy and the mean colours already.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from posterlab.analysis.columns import OPTIONAL_FEATURES, POSTER_FEATURES, TARGET
from posterlab.analysis.controls import CONTROLS, controlled_slopes, with_year
from posterlab.analysis.correlations import N_BOOT, correlate
from posterlab.analysis.detector import threshold_effects
from posterlab.analysis.effects import face_effects
from posterlab.analysis.ensemble import TrainingPlan
from posterlab.analysis.groups import (
    FACE_BUCKETS,
    GROUP_COLUMNS,
    color_groups,
    common_genres,
    face_buckets,
    genre_mask,
)
from posterlab.analysis.importance import permutation_importance
from posterlab.analysis.inputs import design_matrix
from posterlab.analysis.models import CvSettings, TaskOutcome, cross_validated
from posterlab.analysis.result import AnalysisResult

__all__ = ["MODELS", "AnalysisOptions", "analyze"]

_MIN_MODEL_ROWS = 10  # below this 5-fold CV leaves test folds of one or two rows
RATING_SCALE = (1.0, 10.0)  # IMDB ratings: intervals are clipped to it
# The models analyze() reports: name -> genre indicators among the inputs. The
# poster-only regression answers the question itself; genre explains far more of the
# rating, and comparing the two says how much the poster adds. The classification
# (rating >= band) is scored from the fits of the regression with genre.
MODELS: dict[str, bool] = {"regression": True, "regression_poster_only": False,
                           "classification": True}  # fmt: skip


@dataclass(frozen=True)
class AnalysisOptions:
    """What ``posterlab analyze`` lets a user choose (and the defaults of a run's end)."""

    seed: int = 0
    folds: int = 5
    repeats: int = 5
    permutations: int = 200
    features: tuple[str, ...] | None = None
    controls: tuple[str, ...] = CONTROLS
    genre: str | None = None
    min_n: int = 10
    min_rows: int = 30
    band: float = 7.0
    histograms: bool = False
    n_boot: int = N_BOOT
    plan: TrainingPlan = field(default_factory=TrainingPlan)
    workers: int = 1

    def cv(self) -> CvSettings:
        return CvSettings(folds=self.folds, repeats=self.repeats, seed=self.seed,
                          permutations=self.permutations, band=self.band, plan=self.plan)

    def settings(self) -> dict[str, Any]:
        """The options as plain JSON, for the provenance."""
        return {"seed": self.seed, "folds": self.folds, "repeats": self.repeats,
                "permutations": self.permutations, "features": self.features,
                "controls": list(self.controls), "genre": self.genre, "min_n": self.min_n,
                "band": self.band, "hidden_sizes": list(self.plan.hidden_sizes),
                "l2_choices": list(self.plan.l2_choices), "ensemble": self.plan.ensemble}


def analyze(df: pd.DataFrame, options: AnalysisOptions | None = None, *,
            provenance: dict[str, Any] | None = None, **overrides: Any) -> AnalysisResult:
    """Correlate poster features with the rating, with controls, and predict it.

    Parameters
    ----------
    df : DataFrame
        One row per poster that finished: ``imdb_id``, ``score`` (rows with NaN are
        dropped), ``genres``, ``title`` (for the year), ``face_count`` and the scalar
        features; optional ``face_scores`` (every detection's score per poster) and
        ``face_provider`` for the detector check.
    options : AnalysisOptions, optional
        Folds, repeats, seed, features, controls, genre filter, minimum cell size...;
        keyword ``overrides`` replace single fields (``analyze(df, seed=1)``).
    provenance : dict, optional
        :func:`posterlab.analysis.provenance.provenance` of the run; ``n`` and the
        analysis settings are filled in here.

    Examples
    --------
    >>> from posterlab.analysis.synthetic import synthetic_frame
    >>> result = analyze(synthetic_frame(60), folds=2, repeats=1, permutations=20,
    ...                  n_boot=100, plan=TrainingPlan(hidden_sizes=(4,), l2_choices=(0.03,)))
    >>> result.n, sorted(result.model)
    (60, ['classification', 'regression', 'regression_poster_only'])
    """
    opts = _options(options, overrides)
    usable = _rated_rows(df, opts)
    features, constant = _features(usable, opts.features)
    correlations = correlate(usable, features=features, n_boot=opts.n_boot, seed=opts.seed)
    controls = controlled_slopes(usable, [f for f in features if f not in constant],
                                 controls=opts.controls)  # fmt: skip
    buckets, colors, by_genre = _groups(usable, opts.min_n)
    model, predictions, importance = _models(usable, opts)
    given = provenance or {}
    prov = {**given, "n": len(usable),
            "settings": {**given.get("settings", {}), "analysis_options": opts.settings()}}
    return AnalysisResult(
        correlations=correlations, face_buckets=buckets, model=model,
        predictions=predictions, n=len(usable),
        skipped_features=dict(correlations.attrs.get("skipped", {})),
        color_groups=colors, face_buckets_by_genre=by_genre, controls=controls,
        importance=importance, face_effects=_face_effects(usable), provenance=prov,
        constant_features=constant, detector=_detector(usable),
    )  # fmt: skip


def _options(options: AnalysisOptions | None, overrides: dict[str, Any]) -> AnalysisOptions:
    import dataclasses

    base = options or AnalysisOptions()
    unknown = set(overrides) - {f.name for f in dataclasses.fields(AnalysisOptions)}
    if unknown:
        raise TypeError(f"analyze() got unknown options {sorted(unknown)}")
    opts = dataclasses.replace(base, **overrides)
    if opts.min_rows < _MIN_MODEL_ROWS:
        raise ValueError(f"min_rows must be at least {_MIN_MODEL_ROWS}, got {opts.min_rows!r}")
    if opts.min_n < 1:
        raise ValueError(f"min_n must be at least 1, got {opts.min_n!r}")
    return opts


def _rated_rows(df: pd.DataFrame, opts: AnalysisOptions) -> pd.DataFrame:
    """The rows with a finite rating (float64) of the chosen genre, with their year."""
    if TARGET not in df.columns:
        raise ValueError(f"df must have a {TARGET!r} column")
    if opts.genre is not None:
        df = df.loc[genre_mask(df, opts.genre)]
    ratings = pd.to_numeric(df[TARGET], errors="coerce")
    usable = df.loc[np.isfinite(ratings.to_numpy(np.float64))].copy()
    usable[TARGET] = ratings[usable.index].astype(np.float64)
    return with_year(usable.reset_index(drop=True))


def _features(usable: pd.DataFrame, chosen: Sequence[str] | None) -> tuple[list[str], list[str]]:
    """The features to test (chosen, or every known one the run computed: a feature its
    profile leaves out is empty on every row) and the constant ones."""
    if chosen is not None:
        missing = [f for f in chosen if f not in usable.columns]
        if missing:
            raise ValueError(f"features not in the data: {', '.join(missing)}; choose from "
                             f"{', '.join(c for c in POSTER_FEATURES if c in usable)}")
        features = list(chosen)
    else:
        features = [c for c in (*POSTER_FEATURES, *OPTIONAL_FEATURES)
                    if c in usable.columns and (usable.empty or usable[c].notna().any())]
    constant = [f for f in features
                if pd.to_numeric(usable[f], errors="coerce").nunique(dropna=True) <= 1]
    return features, constant


def _groups(usable: pd.DataFrame, min_n: int
            ) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, pd.DataFrame]]:  # fmt: skip
    """Face buckets (overall and within common genres) and colour groups, min_n a cell."""
    colors = color_groups(usable, min_n=min_n, scale=RATING_SCALE)
    if "face_count" not in usable.columns:
        empty = pd.DataFrame({"bucket": list(FACE_BUCKETS), **dict.fromkeys(GROUP_COLUMNS, np.nan)})
        empty["n"] = 0
        return empty, colors, {}
    by_genre = {genre: face_buckets(usable, genre=genre, min_n=min_n, scale=RATING_SCALE)
                for genre in common_genres(usable)}  # fmt: skip
    return face_buckets(usable, min_n=min_n, scale=RATING_SCALE), colors, by_genre


def _face_effects(usable: pd.DataFrame) -> dict[str, Any]:
    if "face_count" not in usable.columns:
        return {}
    faces = pd.to_numeric(usable["face_count"], errors="coerce").to_numpy(np.float64)
    return face_effects(faces, usable[TARGET].to_numpy(np.float64))


def _detector(usable: pd.DataFrame) -> dict[str, Any]:
    """The face-count effect at several thresholds, when every detection's score is known."""
    if "face_scores" not in usable.columns:
        return {"skipped": "the run does not store every detection's score"}
    scores = [None if not isinstance(s, list | tuple | np.ndarray) else list(s)
              for s in usable["face_scores"]]
    providers = usable["face_provider"].astype(str).tolist() \
        if "face_provider" in usable.columns else None
    return {"thresholds": threshold_effects(scores, usable[TARGET].to_numpy(np.float64),
                                            providers=providers)}  # fmt: skip


def _inputs(usable: pd.DataFrame, opts: AnalysisOptions, genres: bool) -> pd.DataFrame:
    X = design_matrix(usable, histograms=opts.histograms, genres=genres)
    if opts.features is not None:
        keep = [c for c in X.columns if c in opts.features or c.startswith("genre_")]
        X = X[keep]
    return X.loc[X.notna().all(axis=1)]


def _fit(args: tuple[np.ndarray, np.ndarray, list[str], CvSettings, bool]) -> TaskOutcome:
    X, y, inputs, settings, band = args
    return cross_validated(X, y, settings=settings, inputs=inputs, band=band)


def _fit_alone(args: tuple[np.ndarray, np.ndarray, list[str], CvSettings, bool]
               ) -> TaskOutcome:  # fmt: skip
    """:func:`_fit` in a pool process beside others: one BLAS thread, so that the
    processes share the cores instead of oversubscribing them."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        return _fit(args)


def _models(usable: pd.DataFrame, opts: AnalysisOptions
            ) -> tuple[dict[str, Any], pd.DataFrame, list[dict[str, Any]]]:  # fmt: skip
    """Every model of :data:`MODELS`, the out-of-fold predictions, the importances."""
    empty = pd.DataFrame(columns=["imdb_id", "actual", "predicted"])
    frames = {True: _inputs(usable, opts, True), False: _inputs(usable, opts, False)}
    too_few = _too_few(frames[False], opts.min_rows)
    if too_few:
        return {"skipped": too_few}, empty, []
    jobs = [(X.to_numpy(np.float64), usable.loc[X.index, TARGET].to_numpy(np.float64),
             list(X.columns), opts.cv(), genres) for genres, X in frames.items()]
    outcomes = _run(jobs, opts.workers)
    with_genre, poster = outcomes
    model: dict[str, Any] = {
        "regression": _entry(with_genre.entry, with_genre, jobs[0][2]),
        "regression_poster_only": _entry(poster.entry, poster, jobs[1][2]),
        "classification": ({**with_genre.band_entry, "inputs": jobs[0][2]}
                           if with_genre.band_entry is not None else
                           {"skipped": f"fewer than {opts.folds} ratings on one side of "
                                       f"{opts.band}"}),
    }  # fmt: skip
    X = frames[True]
    ids = usable.loc[X.index, "imdb_id"] if "imdb_id" in usable else pd.Series(X.index)
    predictions = pd.DataFrame({"imdb_id": ids.to_numpy(), "actual": jobs[0][1],
                                "predicted": with_genre.oof})  # fmt: skip
    importance = permutation_importance(poster, jobs[1][0], jobs[1][1], jobs[1][2],
                                        seed=opts.seed)  # fmt: skip
    return model, predictions, importance


def _run(jobs: list[Any], workers: int) -> list[TaskOutcome]:
    if workers <= 1:
        return [_fit(job) for job in jobs]
    with ProcessPoolExecutor(max_workers=min(workers, len(jobs))) as pool:
        return list(pool.map(_fit_alone, jobs))


def _entry(entry: dict[str, Any], outcome: TaskOutcome, inputs: list[str]) -> dict[str, Any]:
    return {**entry, "inputs": inputs, "network": outcome.mlp.final.to_dict()}


def _too_few(X: pd.DataFrame, min_rows: int) -> str | None:
    """Why ``X`` is too small to train on, or None."""
    if len(X) < min_rows or X.shape[1] == 0:
        return (f"{len(X)} rows with a rating and complete inputs, {X.shape[1]} "
                f"inputs; the models need {min_rows} rows and one input")  # fmt: skip
    return None
