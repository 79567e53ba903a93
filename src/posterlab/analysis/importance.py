"""Permutation importance of each input, on the out-of-fold predictions of the MLP.

For every outer fit, each input column of the test fold is shuffled (seeded) and the
fit's ensemble predicts again; the importance of the input in that fit is the R^2 lost.
The mean over the fits comes with the same corrected t interval as the model scores
(:func:`posterlab.analysis.cv.corrected_interval`). An input whose interval includes 0
adds nothing the model can show on held-out posters.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from posterlab.analysis.cv import corrected_interval, fold_score
from posterlab.analysis.models import TaskOutcome

__all__ = ["permutation_importance"]


def permutation_importance(
    outcome: TaskOutcome, X: np.ndarray, y: np.ndarray, inputs: Sequence[str], *, seed: int = 0
) -> list[dict[str, Any]]:
    """``[{feature, mean, ci_low, ci_high}]``, most important first.

    ``outcome`` is :func:`~posterlab.analysis.models.cross_validated` of ``(X, y)``.
    """
    X, y = np.asarray(X, np.float64), np.asarray(y, np.float64)
    rng = np.random.default_rng([seed, 11])
    drops = np.zeros((len(outcome.splits), X.shape[1]))
    mlp = outcome.mlp
    for f, (_, test) in enumerate(outcome.splits):
        base = fold_score("regression", y[test], mlp.predictions[f][:, None])[0]
        shuffled = []
        for j in range(X.shape[1]):
            rows = X[test].copy()
            rows[:, j] = rows[rng.permutation(len(test)), j]
            shuffled.append(rows)
        predicted = mlp.stack.predict(np.concatenate(shuffled), mlp.members[f]).mean(axis=0)
        scores = fold_score("regression", y[test], predicted.reshape(X.shape[1], -1).T)
        drops[f] = base - scores
    n_train = float(np.mean([len(tr) for tr, _ in outcome.splits]))
    n_test = float(np.mean([len(te) for _, te in outcome.splits]))
    rows_out = []
    for j, name in enumerate(inputs):
        mean, low, high = corrected_interval(drops[:, j], n_train=n_train, n_test=n_test)
        rows_out.append({"feature": str(name), "mean": mean, "ci_low": low, "ci_high": high})
    return sorted(rows_out, key=lambda r: -r["mean"])
