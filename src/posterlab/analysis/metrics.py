"""Held-out metrics and the ordinary-least-squares baseline."""

from __future__ import annotations

import numpy as np
from scipy import stats

__all__ = ["auc", "classification_metrics", "ols_fit", "ols_predict", "regression_metrics"]


def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """MAE, RMSE and R^2 (1 - SSE / SST around the mean of ``y_true``).

    Examples
    --------
    >>> regression_metrics(np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 4.0]))["mae"]
    0.3333333333333333
    """
    y_true, y_pred = np.asarray(y_true, float), np.asarray(y_pred, float)
    if y_true.shape != y_pred.shape or y_true.size == 0:
        raise ValueError("y_true and y_pred must be non-empty and of the same shape")
    residual = y_true - y_pred
    sst = float(np.sum((y_true - y_true.mean()) ** 2))
    return {
        "mae": float(np.mean(np.abs(residual))),
        "rmse": float(np.sqrt(np.mean(residual**2))),
        "r2": 1.0 - float(np.sum(residual**2)) / sst if sst > 0 else float("nan"),
    }


def auc(y_true: np.ndarray, score: np.ndarray) -> float:
    """Area under the ROC curve by the Mann-Whitney rank formula (ties count one half).

    NaN when ``y_true`` holds a single class.

    Examples
    --------
    >>> auc(np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8]))
    0.75
    """
    y_true = np.asarray(y_true).astype(bool)
    n_pos, n_neg = int(y_true.sum()), int((~y_true).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = stats.rankdata(np.asarray(score, float))
    return float((ranks[y_true].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def classification_metrics(
    y_true: np.ndarray, score: np.ndarray, *, threshold: float = 0.5
) -> dict[str, float]:
    """Accuracy of ``score >= threshold`` and AUC of ``score`` for 0/1 labels.

    Examples
    --------
    >>> classification_metrics(np.array([0, 1]), np.array([0.2, 0.9]))
    {'accuracy': 1.0, 'auc': 1.0}
    """
    y_true, score = np.asarray(y_true, float), np.asarray(score, float)
    if y_true.shape != score.shape or y_true.size == 0:
        raise ValueError("y_true and score must be non-empty and of the same shape")
    return {
        "accuracy": float(np.mean((score >= threshold) == (y_true == 1))),
        "auc": auc(y_true, score),
    }


def ols_fit(X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Least-squares coefficients with an intercept first (minimum norm if rank-deficient).

    Examples
    --------
    >>> ols_fit(np.array([[0.0], [1.0], [2.0]]), np.array([1.0, 3.0, 5.0])).round(6)
    array([1., 2.])
    """
    X = np.asarray(X, float)
    design = np.column_stack([np.ones(len(X)), X])
    coef, *_ = np.linalg.lstsq(design, np.asarray(y, float), rcond=None)
    return coef


def ols_predict(coef: np.ndarray, X: np.ndarray) -> np.ndarray:
    """Predictions of :func:`ols_fit` coefficients."""
    return coef[0] + np.asarray(X, float) @ coef[1:]
