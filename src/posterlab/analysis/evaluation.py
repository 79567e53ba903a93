"""Predicting the rating from the poster: the MLP against two baselines on one split.

Regression predicts the rating itself; classification predicts a rating band (rating at
least ``band``). Both use the same held-out test rows, the same inputs and the same
baselines: the training mean (or training share of the band) and ordinary least squares.
The hidden layer size comes from k-fold cross-validation on the training rows only.
:func:`evaluate` runs it all; the held-out metrics and the least-squares baseline it
scores with are below it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from scipy import stats

from posterlab.analysis.ensemble import FittedModel, TrainingPlan, cross_validate, train_ensemble
from posterlab.analysis.inputs import Scaler, fit_scaler
from posterlab.analysis.training import TrainingHistory

__all__ = [
    "TASKS",
    "Evaluation",
    "auc",
    "classification_metrics",
    "evaluate",
    "ols_fit",
    "ols_predict",
    "regression_metrics",
    "split_indices",
]

TASKS = ("regression", "classification")


@dataclass(frozen=True)
class Evaluation:
    """Outcome of :func:`evaluate`: JSON-ready metrics, the learning curve, test predictions.

    ``fitted`` is the final network with its scaling and settings, ready to store.
    """

    metrics: dict[str, Any]
    history: TrainingHistory
    test_index: np.ndarray
    predicted: np.ndarray
    cv_scores: dict[int, float] = field(default_factory=dict)
    fitted: FittedModel | None = None


def split_indices(n: int, *, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded random train/test split of ``range(n)``; both parts non-empty.

    Examples
    --------
    >>> train, test = split_indices(10, test_fraction=0.2, seed=0)
    >>> len(train), len(test)
    (8, 2)
    """
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction!r}")
    if n < 2:
        raise ValueError(f"n must be at least 2 to split, got {n!r}")
    n_test = min(max(round(test_fraction * n), 1), n - 1)
    order = np.random.default_rng(seed).permutation(n)
    return np.sort(order[n_test:]), np.sort(order[:n_test])


def evaluate(
    X: np.ndarray, y: np.ndarray, *, task: str = "regression", band: float = 7.0,
    test_fraction: float = 0.2, seed: int = 0, plan: TrainingPlan | None = None,
    inputs: Sequence[str] | None = None, split: tuple[np.ndarray, np.ndarray] | None = None,
) -> Evaluation:  # fmt: skip
    """Train the MLP and both baselines on one split and score them on its test rows.

    Parameters
    ----------
    X, y : ndarray, shape (n, p) and (n,)
        Finite model inputs (see :func:`posterlab.analysis.inputs.design_matrix`), ratings.
    task : {"regression", "classification"}
        Predict the rating, or whether it is at least ``band``.
    band : float
        Threshold of the rating band for classification.
    test_fraction, seed : float, int
        Held-out share and the seed of the split, the folds and every network.
    plan : TrainingPlan, optional
    inputs : sequence of str, optional
        Names of the columns of ``X``, kept with the fitted model; ``x0, x1, ...`` if
        not given.
    split : (train_index, test_index), optional
        Explicit row indices instead of the seeded ``test_fraction`` split (for k-fold
        comparisons); both non-empty and disjoint.

    Returns
    -------
    Evaluation
        ``metrics`` holds ``mlp``, ``mean_baseline`` and ``ols_baseline`` (MAE/RMSE/R^2 for
        regression, accuracy/AUC for classification), ``hidden_size``, ``cv_mse``,
        ``epochs`` and ``stopped`` (of the first network), ``ensemble``, ``member_epochs``,
        ``n_train``, ``n_test``; ``predicted`` is the mean output of the ensemble on the
        test rows (ratings, or band probabilities); ``history`` the learning curve of its
        first network; ``fitted`` the networks with their scaling and settings.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(200, 3)); y = 6 + X[:, 0] + 0.1 * rng.normal(size=200)
    >>> result = evaluate(X, y, plan=TrainingPlan(hidden_sizes=(4,), folds=2))
    >>> result.metrics["mlp"]["r2"] > 0.9
    True
    """
    plan = plan or TrainingPlan()
    X, y = _checked(X, y, task)
    problem = _Problem.of(y, task=task, band=band, rows=_rows(len(X), test_fraction, seed, split))
    train, test = problem.train, problem.test
    cv = cross_validate(X[train], problem.model_y[train], task=task, plan=plan, seed=seed)
    hidden = min(cv, key=lambda h: (cv[h], h))  # ties go to the smaller network
    names = list(inputs) if inputs is not None else [f"x{k}" for k in range(X.shape[1])]
    fitted, histories = _fit_ensemble(X[train], problem, plan, hidden=hidden, seed=seed,
                                      names=names)  # fmt: skip
    predicted = fitted.predict(X[test])
    ols = _ols_baseline(fitted.x_scaler.transform(X[train]), fitted.x_scaler.transform(X[test]),
                        problem)  # fmt: skip
    metrics = {**problem.scores(predicted, ols), **_training_figures(cv, hidden, histories),
               **problem.sizes()}  # fmt: skip
    return Evaluation(metrics, histories[0], test, predicted, cv, fitted)


def _checked(X: np.ndarray, y: np.ndarray, task: str) -> tuple[np.ndarray, np.ndarray]:
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, got {task!r}")
    X, y = np.asarray(X, np.float64), np.asarray(y, np.float64)
    if X.ndim != 2 or len(X) != len(y) or not (np.isfinite(X).all() and np.isfinite(y).all()):
        raise ValueError("X must be a finite (n, p) array and y a finite (n,) array")
    return X, y


def _rows(
    n: int, test_fraction: float, seed: int, split: tuple[np.ndarray, np.ndarray] | None
) -> tuple[np.ndarray, np.ndarray]:
    """The train and test row indices: the seeded split, or ``split`` once checked."""
    if split is None:
        return split_indices(n, test_fraction=test_fraction, seed=seed)
    train, test = (np.asarray(part, np.int64) for part in split)
    if not (len(train) and len(test)) or np.intersect1d(train, test).size:
        raise ValueError("split must be two non-empty, disjoint index arrays")
    return train, test


@dataclass(frozen=True, eq=False)  # eq=False: holds arrays
class _Problem:
    """The target of one task on one split: what the networks learn and what is scored."""

    task: str
    band: float
    train: np.ndarray
    test: np.ndarray
    target: np.ndarray  # the rating, or the 0/1 band
    y_scaler: Scaler  # target -> what the networks learn
    model_y: np.ndarray  # the target on the networks' scale, every row

    @classmethod
    def of(cls, y: np.ndarray, *, task: str, band: float,
           rows: tuple[np.ndarray, np.ndarray]) -> _Problem:  # fmt: skip
        train, test = rows
        target = (y >= band).astype(np.float64) if task == "classification" else y
        if task == "classification" and np.ptp(target[train]) == 0:
            raise ValueError(f"band={band} puts every training rating on one side")
        # Regression trains on a standardised rating so that one learning rate fits any scale.
        y_scaler = (fit_scaler(target[train]) if task == "regression"
                    else Scaler(np.zeros(1), np.ones(1)))  # fmt: skip
        return cls(task, band, train, test, target, y_scaler, y_scaler.transform(target))

    def scores(self, predicted: np.ndarray, ols: np.ndarray) -> dict[str, Any]:
        """The MLP's and both baselines' metrics on the test rows."""
        score = regression_metrics if self.task == "regression" else classification_metrics
        truth = self.target[self.test]
        mean = np.full(len(self.test), self.target[self.train].mean())
        return {"mlp": score(truth, predicted), "mean_baseline": score(truth, mean),
                "ols_baseline": score(truth, ols)}  # fmt: skip

    def sizes(self) -> dict[str, Any]:
        """Rows on each side, and for classification the band and its training share."""
        out: dict[str, Any] = {"n_train": len(self.train), "n_test": len(self.test)}
        if self.task == "classification":
            out["band"] = self.band
            out["positive_share_train"] = float(self.target[self.train].mean())
        return out


def _ols_baseline(X_train: np.ndarray, X_test: np.ndarray, problem: _Problem) -> np.ndarray:
    """Least squares on the same scaled inputs and target, back on the target's scale."""
    coef = ols_fit(X_train, problem.model_y[problem.train])
    return problem.y_scaler.inverse_transform(ols_predict(coef, X_test))


def _fit_ensemble(
    X_train: np.ndarray, problem: _Problem, plan: TrainingPlan, *, hidden: int, seed: int,
    names: list[str],
) -> tuple[FittedModel, list[TrainingHistory]]:  # fmt: skip
    """The ensemble on the training rows, with its scaling and settings; its histories."""
    x_scaler = fit_scaler(X_train, plan.scaling)
    members = train_ensemble(x_scaler.transform(X_train), problem.model_y[problem.train],
                             plan=plan, hidden=hidden, task=problem.task, seed=seed)  # fmt: skip
    settings = {**asdict(plan), "hidden_size": hidden, "task": problem.task, "seed": seed}
    nets = tuple(net for net, _ in members)
    fitted = FittedModel(nets, x_scaler, problem.y_scaler, plan=settings).with_inputs(names)
    return fitted, [history for _, history in members]


def _training_figures(
    cv: dict[int, float], hidden: int, histories: list[TrainingHistory]
) -> dict[str, Any]:
    return {
        "hidden_size": hidden,
        "cv_mse": {str(h): v for h, v in cv.items()},
        "epochs": histories[0].epochs,
        "stopped": histories[0].stopped,
        "ensemble": len(histories),
        "member_epochs": [h.epochs for h in histories],
    }


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
