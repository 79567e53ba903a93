"""Repeated k-fold cross-validation: the folds, the per-fit scores and their intervals.

Every model is scored on the same outer fits (``folds`` x ``repeats`` train/test pairs).
The interval of a mean score over these fits is the corrected resampled t interval of
Nadeau & Bengio (2003): fits share most of their training rows, so their scores are
correlated and the naive ``sd / sqrt(J)`` is far too narrow; the corrected variance is
``sd^2 * (1 / J + n_test / n_train)`` with ``J - 1`` degrees of freedom.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import stats

__all__ = ["Split", "column_aucs", "corrected_interval", "fold_score", "interval_entry",
           "repeated_folds"]

Split = tuple[np.ndarray, np.ndarray]  # train rows, test rows


def repeated_folds(n: int, *, folds: int, repeats: int, seed: int,
                   strata: np.ndarray | None = None) -> list[Split]:  # fmt: skip
    """``repeats`` seeded shuffles of ``range(n)``, each cut into ``folds`` test folds.

    With ``strata`` (e.g. the 0/1 rating band) every class is dealt out evenly, so each
    test fold holds both classes when each has at least ``folds`` rows.

    Examples
    --------
    >>> splits = repeated_folds(10, folds=5, repeats=2, seed=0)
    >>> len(splits), sorted(np.concatenate([test for _, test in splits[:5]]).tolist())[:3]
    (10, [0, 1, 2])
    """
    if folds < 2 or repeats < 1:
        raise ValueError(f"folds must be >= 2 and repeats >= 1, got {folds!r}, {repeats!r}")
    if n < folds:
        raise ValueError(f"need at least {folds} rows for {folds} folds, got {n}")
    rng = np.random.default_rng(seed)
    labels = np.zeros(n, np.int64) if strata is None else np.unique(strata, return_inverse=True)[1]
    out: list[Split] = []
    for _ in range(repeats):
        fold_of = np.empty(n, np.int64)
        start = int(rng.integers(folds))  # where the next class starts dealing
        for label in np.unique(labels):
            rows = rng.permutation(np.flatnonzero(labels == label))
            fold_of[rows] = (start + np.arange(len(rows))) % folds
            start = (start + len(rows)) % folds
        out += [(np.flatnonzero(fold_of != k), np.flatnonzero(fold_of == k))
                for k in range(folds)]  # fmt: skip
    return out


def corrected_interval(scores: Sequence[float] | np.ndarray, *, n_train: float, n_test: float,
                       confidence: float = 0.95) -> tuple[float, float, float]:  # fmt: skip
    """Mean of per-fit scores with the Nadeau-Bengio corrected t interval.

    Examples
    --------
    >>> mean, low, high = corrected_interval([0.1, 0.2, 0.3], n_train=80, n_test=20)
    >>> round(mean, 3), round(high - mean, 3)
    (0.2, 0.329)
    """
    values = np.asarray(scores, np.float64)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return (float("nan"),) * 3
    mean = float(values.mean())
    if values.size < 2:
        return mean, float("nan"), float("nan")
    var = values.var(ddof=1) * (1.0 / values.size + n_test / n_train)
    half = float(stats.t.ppf(0.5 + confidence / 2.0, values.size - 1) * np.sqrt(var))
    return mean, mean - half, mean + half


def fold_score(task: str, y_true: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """R^2 (regression) or AUC (classification) of each column of ``predicted``.

    R^2 is ``1 - SSE / SST`` with SST around the test fold's own mean, so a model that
    predicts the training mean scores a little below 0.

    Examples
    --------
    >>> fold_score("regression", np.array([1.0, 2, 3]), np.array([[1.0], [2], [4]])).round(2)
    array([0.5])
    """
    y_true = np.asarray(y_true, np.float64)
    predicted = np.asarray(predicted, np.float64).reshape(len(y_true), -1)
    if task == "classification":
        return _aucs(y_true.astype(bool), predicted)
    sst = float(np.sum((y_true - y_true.mean()) ** 2))
    if sst == 0:
        return np.full(predicted.shape[1], np.nan)
    return 1.0 - np.sum((y_true[:, None] - predicted) ** 2, axis=0) / sst


def interval_entry(task: str, scores: Sequence[float] | np.ndarray, *, n_train: float,
                   n_test: float) -> dict[str, float]:  # fmt: skip
    """``{r2_mean, r2_ci_low, r2_ci_high}`` (or ``auc_*``) of per-fit scores."""
    mean, low, high = corrected_interval(scores, n_train=n_train, n_test=n_test)
    name = "auc" if task == "classification" else "r2"
    return {f"{name}_mean": mean, f"{name}_ci_low": low, f"{name}_ci_high": high}


def _aucs(positive: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """AUC of each column of ``scores`` for one 0/1 truth."""
    return column_aucs(np.broadcast_to(positive[:, None], scores.shape), scores)


def column_aucs(positive: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """AUC of each score column for its own truth column, by the Mann-Whitney rank sum
    (ties count one half); NaN where a column holds one class.

    Examples
    --------
    >>> column_aucs(np.array([[0], [0], [1], [1]], bool), np.array([[.1], [.4], [.35], [.8]]))
    array([0.75])
    """
    n_pos = positive.sum(axis=0)
    n_neg = len(positive) - n_pos
    ranks = stats.rankdata(scores, axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = ((ranks * positive).sum(axis=0) - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)
    return np.where((n_pos > 0) & (n_neg > 0), out, np.nan)
