"""Predicting the rating under repeated k-fold: every model, its interval, a permutation test.

For a set of inputs, :func:`cross_validated` scores the MLP ensemble (nested choice of
hidden size and L2, :mod:`posterlab.analysis.mlp_cv`), ridge (penalty by GCV inside each
training fold), least squares and the training mean on the same outer fits, for the
rating (R^2) and, from the same fits, for the rating band (AUC of the predicted rating
for ``rating >= band``). Each entry has

- ``cv``: ``folds``, ``repeats``, ``models`` (each ``r2_mean, r2_ci_low, r2_ci_high`` or
  ``auc_*``) and ``mlp_minus_ridge`` (``mean, ci_low, ci_high`` of the paired difference
  per fit); intervals are corrected resampled t intervals (:mod:`posterlab.analysis.cv`);
- ``permutation_p``: is the out-of-fold score better than chance? The rating is permuted
  ``permutations`` times (seeded) and the whole ridge pipeline (standardising, GCV
  penalty, every outer fit) is refitted on each; ``p = (1 + #{permuted >= observed}) /
  (1 + permutations)``. Ridge because its refits are exact and cheap (one matrix product
  for all permutations); the MLP and ridge are compared directly by ``mlp_minus_ridge``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from posterlab.analysis.cv import (
    Split,
    column_aucs,
    fold_score,
    interval_entry,
    repeated_folds,
)
from posterlab.analysis.ensemble import TrainingPlan
from posterlab.analysis.linear import LinearFold, linear_fold
from posterlab.analysis.mlp_cv import NestedMLP, nested_mlp

__all__ = ["CvSettings", "TaskOutcome", "cross_validated", "ridge_permutation_p"]


@dataclass(frozen=True)
class CvSettings:
    """How every task is cross-validated."""

    folds: int = 5
    repeats: int = 5
    seed: int = 0
    permutations: int = 200
    band: float = 7.0
    plan: TrainingPlan = field(default_factory=TrainingPlan)

    def __post_init__(self) -> None:
        if self.folds < 2 or self.repeats < 1:
            raise ValueError(f"folds must be >= 2 and repeats >= 1, got {self.folds}, "
                             f"{self.repeats}")  # fmt: skip
        if self.permutations < 0:
            raise ValueError(f"permutations must be >= 0, got {self.permutations!r}")


@dataclass(frozen=True, eq=False)  # eq=False: holds arrays
class TaskOutcome:
    """The JSON entries (rating, and rating band from the same fits), the fits behind
    them, and each row's mean out-of-fold MLP prediction."""

    entry: dict[str, Any]
    band_entry: dict[str, Any] | None
    splits: list[Split]
    mlp: NestedMLP
    oof: np.ndarray  # mean MLP prediction of each row over the repeats


def cross_validated(X: np.ndarray, y: np.ndarray, *, settings: CvSettings,
                    inputs: Sequence[str], band: bool = True) -> TaskOutcome:  # fmt: skip
    """Score every model on the same repeated folds of finite ``(X, y)``.

    The rating band (``y >= settings.band``) is scored from the same fits: how well each
    model's predicted rating ranks the films above the band over those below it (AUC).
    With ``band`` False, or when a side of the band has fewer than ``folds`` films, the
    band entry is None.
    """
    X, y = np.asarray(X, np.float64), np.asarray(y, np.float64)
    splits = repeated_folds(len(X), folds=settings.folds, repeats=settings.repeats,
                            seed=settings.seed)  # fmt: skip
    mlp = nested_mlp(X, y, splits, task="regression", plan=settings.plan, seed=settings.seed,
                     inputs=inputs)  # fmt: skip
    Y = _permuted(y, settings)
    linear = [linear_fold(X[train], Y[train], X[test]) for train, test in splits]
    entry = _entry("regression", Y, splits, mlp, linear, settings)
    entry.update(_choices(mlp), n=len(X))
    positives = int(np.sum(y >= settings.band))
    band_entry = None
    if band and min(positives, len(y) - positives) >= settings.folds:
        band_entry = _entry("classification", (settings.band <= Y).astype(np.float64),
                            splits, mlp, linear, settings)  # fmt: skip
        band_entry.update(band=settings.band, positive_share=positives / len(y), n=len(X))
    return TaskOutcome(entry, band_entry, splits, mlp, _oof(len(X), splits, mlp.predictions))


def ridge_permutation_p(X: np.ndarray, y: np.ndarray, *, settings: CvSettings) -> float:
    """The permutation p-value of ridge's out-of-fold R^2 alone (no MLP): the test that
    :func:`cross_validated` reports, for checking its calibration cheaply."""
    X, y = np.asarray(X, np.float64), np.asarray(y, np.float64)
    splits = repeated_folds(len(X), folds=settings.folds, repeats=settings.repeats,
                            seed=settings.seed)  # fmt: skip
    Y = _permuted(y, settings)
    observed, null = [], []
    for train, test in splits:
        fold = linear_fold(X[train], Y[train], X[test])
        observed.append(fold_score("regression", Y[test, 0], fold.ridge[:, :1])[0])
        null.append(_column_scores("regression", Y[test, 1:], fold.ridge[:, 1:]))
    permuted = np.nanmean(np.stack(null), axis=0)
    return float((1 + np.sum(permuted >= np.nanmean(observed))) / (1 + len(permuted)))


def _permuted(y: np.ndarray, settings: CvSettings) -> np.ndarray:
    """The rating and ``settings.permutations`` seeded permutations of it, as columns."""
    rng = np.random.default_rng([settings.seed, 7])
    return np.column_stack([y, *(rng.permutation(y) for _ in range(settings.permutations))])


def _entry(task: str, Y: np.ndarray, splits: Sequence[Split], mlp: NestedMLP,
           linear: Sequence[LinearFold], settings: CvSettings) -> dict[str, Any]:  # fmt: skip
    """``cv`` and ``permutation_p`` of one task; ``Y[:, 0]`` is its target."""
    scores: dict[str, list[float]] = {"mlp": [], "ridge": [], "ols": [], "mean_baseline": []}
    permuted = []
    for (_, test), fold, pred in zip(splits, linear, mlp.predictions, strict=True):
        truth = Y[test, 0]
        for name, p in (("mlp", pred), ("ridge", fold.ridge[:, 0]), ("ols", fold.ols[:, 0]),
                        ("mean_baseline", fold.mean[:, 0])):
            scores[name].append(float(fold_score(task, truth, p[:, None])[0]))
        if Y.shape[1] > 1:
            permuted.append(_column_scores(task, Y[test, 1:], fold.ridge[:, 1:]))
    sizes = _sizes(splits)
    models = {name: interval_entry(task, v, **sizes) for name, v in scores.items()}
    diff = np.asarray(scores["mlp"]) - np.asarray(scores["ridge"])
    paired = interval_entry(task, diff, **sizes).values()
    out: dict[str, Any] = {
        "cv": {"folds": settings.folds, "repeats": settings.repeats, "models": models,
               "mlp_minus_ridge": dict(zip(("mean", "ci_low", "ci_high"), paired,
                                           strict=True))},
        "permutation_p": None,
        "permutation": {"model": "ridge", "permutations": settings.permutations,
                        "seed": settings.seed},
        "n_train": sizes["n_train"], "n_test": sizes["n_test"],
    }  # fmt: skip
    if permuted:
        null = np.nanmean(np.stack(permuted), axis=0)
        observed = float(np.nanmean(scores["ridge"]))
        out["permutation_p"] = float((1 + np.sum(null >= observed)) / (1 + len(null)))
    return out


def _column_scores(task: str, truth: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """The score of each prediction column against its own target column."""
    if task == "classification":
        return column_aucs(truth.astype(bool), predicted)
    return _diagonal_r2(truth, predicted)


def _sizes(splits: Sequence[Split]) -> dict[str, float]:
    return {"n_train": float(np.mean([len(tr) for tr, _ in splits])),
            "n_test": float(np.mean([len(te) for _, te in splits]))}  # fmt: skip


def _diagonal_r2(Y: np.ndarray, P: np.ndarray) -> np.ndarray:
    """R^2 of each prediction column against its own target column."""
    sst = np.sum((Y - Y.mean(axis=0)) ** 2, axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return 1.0 - np.sum((Y - P) ** 2, axis=0) / sst


def _choices(mlp: NestedMLP) -> dict[str, Any]:
    """How often each hidden size and L2 penalty won, and the final model's settings."""
    def tally(values: list[Any]) -> dict[str, int]:
        keys, counts = np.unique(np.asarray(values), return_counts=True)
        return {str(k): int(c) for k, c in zip(keys, counts, strict=True)}

    return {"hidden_size": mlp.final_choice[0], "l2": mlp.final_choice[1],
            "chosen_hidden": tally([h for h, _ in mlp.choices]),
            "chosen_l2": tally([l2 for _, l2 in mlp.choices]),
            "ensemble": len(mlp.final.networks)}  # fmt: skip


def _oof(n: int, splits: Sequence[Split], predictions: Sequence[np.ndarray]) -> np.ndarray:
    total, count = np.zeros(n), np.zeros(n)
    for (_, test), pred in zip(splits, predictions, strict=True):
        total[test] += pred
        count[test] += 1
    with np.errstate(invalid="ignore"):
        return total / count
