"""What the analysis of a run found, and its JSON form."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from posterlab.analysis.training import TrainingHistory

__all__ = ["AnalysisResult", "jsonable"]


@dataclass(frozen=True, eq=False)  # eq=False: DataFrames have no single truth value
class AnalysisResult:
    """Everything :func:`~posterlab.analysis.analyze` found.

    Attributes
    ----------
    correlations : DataFrame
        :func:`~posterlab.analysis.correlate` of every scalar feature with the rating.
    face_buckets : DataFrame
        Rating by face-count bucket (0, 1, 2, 3, 4, 5+) with n and a 95% t-interval.
    model : dict
        One entry per model the analysis trains (``regression`` with genre indicators,
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
    color_groups : DataFrame
        Rating by mean red, green, blue rounded to tens on 0-255, with n and a t-interval.
    face_buckets_by_genre : dict of str to DataFrame
        The face buckets within each of the most common genres.
    controls : list of dict
        Each feature's slope with genre and year held fixed
        (:func:`~posterlab.analysis.controls.controlled_slopes`).
    importance : list of dict
        Permutation importance of each poster input on out-of-fold predictions.
    face_effects : dict
        :func:`~posterlab.analysis.effects.face_effects`.
    provenance : dict
        :func:`~posterlab.analysis.provenance.provenance`, with ``n`` and the settings.
    constant_features : list of str
        Features with one value on every poster (left out of everything).
    detector : dict
        The face-count effect at several detector thresholds, or ``{"skipped": why}``.
    """

    correlations: pd.DataFrame
    face_buckets: pd.DataFrame
    model: dict[str, Any]
    history: dict[str, TrainingHistory] = field(default_factory=dict)
    predictions: pd.DataFrame = field(default_factory=pd.DataFrame)
    n: int = 0
    skipped_features: dict[str, str] = field(default_factory=dict)
    color_groups: pd.DataFrame = field(default_factory=pd.DataFrame)
    face_buckets_by_genre: dict[str, pd.DataFrame] = field(default_factory=dict)
    controls: list[dict[str, Any]] = field(default_factory=list)
    importance: list[dict[str, Any]] = field(default_factory=list)
    face_effects: dict[str, Any] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)
    constant_features: list[str] = field(default_factory=list)
    detector: dict[str, Any] = field(default_factory=dict)

    @property
    def synthetic(self) -> bool:
        """True when the data are made up (the demo): every output says so."""
        return bool(self.provenance.get("synthetic"))

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable summary; NaN and infinities become ``None``.

        Keys: ``provenance``, ``correlations``, ``controls``, ``importance``,
        ``face_effects``, ``detector``, ``face_buckets``, ``colour_groups`` (colour on
        0-1), ``face_buckets_by_genre``, ``model``, ``n``, ``skipped_features``,
        ``constant_features``, ``history``.
        """
        return jsonable(
            {
                "provenance": self.provenance,
                "correlations": self.correlations.to_dict("records"),
                "controls": self.controls,
                "importance": self.importance,
                "face_effects": self.face_effects,
                "detector": self.detector,
                "constant_features": self.constant_features,
                "face_buckets": self.face_buckets.to_dict("records"),
                "colour_groups": self.color_groups.to_dict("records"),  # key kept: a contract
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
