"""The linear baselines of cross-validation: ridge, least squares and the mean.

Each is fitted on one training fold and predicts its test fold, for one target or for
many at once (the columns of ``Y``: the rating and its permutations, so that a
permutation test costs one matrix product more, not one refit per permutation). Inputs
are standardised on the training rows; the intercept is not penalised. Ridge's penalty
is chosen inside the training fold by generalised cross-validation (GCV, Golub, Heath &
Wahba 1979) over :data:`PENALTIES`, separately for every column of ``Y``, so a test row
never informs the choice.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["PENALTIES", "LinearFold", "linear_fold"]

# Penalties per training row on standardised inputs: lambda = PENALTIES * n_train, from
# almost least squares (0.001) to almost the mean (1,000).
PENALTIES = np.logspace(-3, 3, 13)


@dataclass(frozen=True, eq=False)  # eq=False: holds arrays
class LinearFold:
    """Test-fold predictions of the three baselines, one column per target column."""

    ridge: np.ndarray  # (n_test, B)
    ols: np.ndarray
    mean: np.ndarray
    penalty: np.ndarray  # (B,) chosen ridge penalty per training row


def linear_fold(X_train: np.ndarray, Y_train: np.ndarray, X_test: np.ndarray) -> LinearFold:
    """Fit ridge (penalty by GCV), least squares and the mean; predict ``X_test``.

    Parameters
    ----------
    X_train, X_test : ndarray, shape (n, p) and (m, p)
    Y_train : ndarray, shape (n,) or (n, B)
        One target per column.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(200, 3)); y = X @ [1.0, 0.0, -1.0] + rng.normal(size=200)
    >>> fold = linear_fold(X[:150], y[:150], X[150:])
    >>> fold.ridge.shape, bool(np.corrcoef(fold.ols[:, 0], y[150:])[0, 1] > 0.7)
    ((50, 1), True)
    """
    Y = np.asarray(Y_train, np.float64).reshape(len(X_train), -1)
    offset, scale = X_train.mean(axis=0), X_train.std(axis=0)
    scale = np.where(scale > 0, scale, 1.0)
    Xc, Xt = (X_train - offset) / scale, (X_test - offset) / scale
    y_mean = Y.mean(axis=0)
    U, s, Vt = np.linalg.svd(Xc, full_matrices=False)
    keep = s > s.max(initial=0.0) * 1e-10 if s.size else s > 0
    U, s, Vt = U[:, keep], s[keep], Vt[keep]
    UtY = U.T @ (Y - y_mean)
    test_basis = Xt @ Vt.T  # (m, k): test rows in the right singular basis
    penalty = _gcv_penalty(Y - y_mean, UtY, s, len(Xc))
    shrink = s[:, None] / (s[:, None] ** 2 + penalty[None, :] * len(Xc))  # (k, B)
    ridge = test_basis @ (shrink * UtY) + y_mean
    ols = test_basis @ (UtY / s[:, None]) + y_mean if s.size else np.tile(y_mean, (len(Xt), 1))
    mean = np.tile(y_mean, (len(Xt), 1))
    return LinearFold(ridge, ols, mean, penalty)


def _gcv_penalty(Yc: np.ndarray, UtY: np.ndarray, s: np.ndarray, n: int) -> np.ndarray:
    """The penalty of :data:`PENALTIES` with the smallest GCV score, per column.

    With ``d_k = s_k^2 / (s_k^2 + lambda)`` the residual sum of squares is
    ``|Yc|^2 - sum (2 d_k - d_k^2) (U'Y)_k^2`` and the effective degrees of freedom
    ``1 + sum d_k`` (the intercept counts one), so each penalty costs O(k B).
    """
    total = np.sum(Yc * Yc, axis=0)  # (B,)
    squares = UtY * UtY  # (k, B)
    scores = []
    for alpha in PENALTIES:
        d = s**2 / (s**2 + alpha * n)
        rss = total - (2 * d - d * d) @ squares
        dof = 1.0 + d.sum()
        scores.append(rss / (n * (1.0 - dof / n) ** 2))
    return np.asarray(PENALTIES[np.argmin(np.stack(scores), axis=0)])
