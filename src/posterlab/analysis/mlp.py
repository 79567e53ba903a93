"""A fully connected network trained by backpropagation, in numpy only.

The maths is the course's: squared-error loss ``E = sum 1/2 (target - out)^2``, a bias
vector per layer, sigmoid / tanh / relu hidden units, an identity or sigmoid output.
:meth:`MLP.fit_step` is one plain gradient-descent step on ``E`` exactly as worked by
hand in the course; :meth:`MLP.fit` is the version for real data (mini-batches, SGD with
momentum or Adam, L2, the course's stopping rules and early stopping).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from posterlab.analysis._training import Optimizer, check_fit_arguments, make_optimizer

__all__ = ["MLP", "TrainingHistory"]

Array = np.ndarray


def _sigmoid(a: Array) -> Array:
    # Clipping keeps exp() from overflowing (and warning) on saturated units; the
    # result is 0 or 1 to double precision there anyway.
    return 1.0 / (1.0 + np.exp(-np.clip(a, -500.0, 500.0)))


# Each activation is paired with its derivative written in terms of the unit's OUTPUT,
# which is what backpropagation has at hand (sigmoid' = out (1 - out), as in the course).
_ACTIVATIONS: dict[str, tuple[Callable[[Array], Array], Callable[[Array], Array]]] = {
    "sigmoid": (_sigmoid, lambda out: out * (1.0 - out)),
    "tanh": (np.tanh, lambda out: 1.0 - out * out),
    "relu": (lambda a: np.maximum(a, 0.0), lambda out: (out > 0.0).astype(out.dtype)),
    "identity": (lambda a: a, np.ones_like),
}
_HIDDEN = ("sigmoid", "tanh", "relu")
_OUTPUT = ("identity", "sigmoid")


@dataclass(frozen=True)
class TrainingHistory:
    """What :meth:`MLP.fit` did, epoch by epoch.

    Attributes
    ----------
    train_error, validation_error : tuple of float
        Mean per-sample error ``1/2 sum (target - out)^2`` of each epoch, the L2 penalty
        excluded. Training error is accumulated as the course does: each sample's error
        just before the step it takes part in (no extra pass over the data).
        Validation error is measured after the epoch; empty without a validation set.
    stopped : str
        Why training ended: ``"max_epochs"``, ``"error_below_threshold"``,
        ``"updates_below_threshold"`` or ``"early_stopping"``.
    best_epoch : int
        1-based epoch whose weights the network holds at the end (the best validation
        epoch with early stopping, otherwise the last epoch).
    """

    train_error: tuple[float, ...]
    validation_error: tuple[float, ...]
    stopped: str
    best_epoch: int

    @property
    def epochs(self) -> int:
        """Number of epochs run."""
        return len(self.train_error)

    def to_dict(self) -> dict[str, object]:
        """JSON-serialisable form."""
        return {
            "train_error": list(self.train_error),
            "validation_error": list(self.validation_error),
            "stopped": self.stopped,
            "best_epoch": self.best_epoch,
            "epochs": self.epochs,
        }


class MLP:
    """Fully connected feed-forward network with squared-error loss.

    Parameters
    ----------
    layer_sizes : sequence of int
        Units per layer, input first, output last, e.g. ``(2, 2, 2)``.
    hidden_activation : {"sigmoid", "tanh", "relu"}
    output_activation : {"identity", "sigmoid"}
    seed : int or None
        Seeds weight initialisation and the shuffling in :meth:`fit`; the same seed and
        the same calls give bit-identical networks.
    init : {"glorot", "uniform"}
        ``"uniform"`` draws weights and biases from U[-1, 1] as in the course;
        ``"glorot"`` draws weights from U[-l, l], ``l = sqrt(6 / (n_in + n_out))``, and
        sets biases to zero, which keeps sigmoid units out of saturation on wide inputs.

    Attributes
    ----------
    weights : list of ndarray
        ``weights[k]`` has shape ``(n_in, n_out)`` of layer ``k``; ``X @ weights[k]``.
    biases : list of ndarray
        ``biases[k]`` has shape ``(n_out,)``.

    Examples
    --------
    >>> net = MLP((2, 3, 1), seed=0)
    >>> net.forward(np.zeros((4, 2))).shape
    (4, 1)
    """

    def __init__(
        self,
        layer_sizes: Sequence[int],
        hidden_activation: str = "sigmoid",
        output_activation: str = "identity",
        seed: int | None = None,
        *,
        init: str = "glorot",
    ) -> None:
        sizes = [int(s) for s in layer_sizes]
        if len(sizes) < 2 or any(s < 1 for s in sizes) or sizes != list(layer_sizes):
            raise ValueError(
                f"layer_sizes must be at least two positive integers, got {layer_sizes!r}"
            )
        if hidden_activation not in _HIDDEN:
            raise ValueError(
                f"hidden_activation must be one of {_HIDDEN}, got {hidden_activation!r}"
            )
        if output_activation not in _OUTPUT:
            raise ValueError(
                f"output_activation must be one of {_OUTPUT}, got {output_activation!r}"
            )
        if init not in ("glorot", "uniform"):
            raise ValueError(f"init must be 'glorot' or 'uniform', got {init!r}")
        self.layer_sizes = tuple(sizes)
        self.hidden_activation = hidden_activation
        self.output_activation = output_activation
        self._rng = np.random.default_rng(seed)
        self.weights: list[Array] = []
        self.biases: list[Array] = []
        for n_in, n_out in itertools.pairwise(sizes):
            limit = 1.0 if init == "uniform" else np.sqrt(6.0 / (n_in + n_out))
            self.weights.append(self._rng.uniform(-limit, limit, size=(n_in, n_out)))
            self.biases.append(
                self._rng.uniform(-1.0, 1.0, size=n_out) if init == "uniform" else np.zeros(n_out)
            )

    def __repr__(self) -> str:
        return (
            f"MLP({self.layer_sizes}, hidden_activation={self.hidden_activation!r}, "
            f"output_activation={self.output_activation!r})"
        )

    # -- forward and backward ---------------------------------------------------------

    def _check(self, X: Array, name: str, width: int) -> Array:
        X = np.asarray(X, dtype=np.float64)
        if X.ndim == 1:
            X = X[np.newaxis, :]
        if X.ndim != 2 or X.shape[1] != width:
            raise ValueError(f"{name} must have {width} columns, got shape {X.shape}")
        if not np.all(np.isfinite(X)):
            raise ValueError(f"{name} contains NaN or infinite values")
        return X

    def _activations(self, X: Array) -> list[Array]:
        """Outputs of every layer, the input included (what backprop needs)."""
        outs = [X]
        last = len(self.weights) - 1
        for k, (W, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            name = self.output_activation if k == last else self.hidden_activation
            outs.append(_ACTIVATIONS[name][0](outs[-1] @ W + b))
        return outs

    def _gradients(self, outs: list[Array], Y: Array) -> tuple[list[Array], list[Array]]:
        """Gradients of ``E = sum over rows and outputs of 1/2 (Y - out)^2``."""
        last = len(self.weights) - 1
        delta = (outs[-1] - Y) * _ACTIVATIONS[self.output_activation][1](outs[-1])
        grad_w: list[Array] = [np.empty(0)] * len(self.weights)
        grad_b: list[Array] = [np.empty(0)] * len(self.weights)
        for k in range(last, -1, -1):
            grad_w[k] = outs[k].T @ delta
            grad_b[k] = delta.sum(axis=0)
            if k > 0:
                # Uses the weights before the update, as the course does for w1..w4.
                delta = (delta @ self.weights[k].T) * _ACTIVATIONS[self.hidden_activation][1](
                    outs[k]
                )
        return grad_w, grad_b

    def forward(self, X: Array) -> Array:
        """Network output for inputs ``X`` of shape ``(n, n_in)``, or ``(n_in,)`` for one.

        Examples
        --------
        >>> MLP((3, 1), seed=0).forward([0.0, 0.0, 0.0]).shape
        (1,)
        """
        single = np.ndim(X) == 1
        out = self._activations(self._check(X, "X", self.layer_sizes[0]))[-1]
        return out[0] if single else out

    def predict(self, X: Array) -> Array:
        """Like :meth:`forward`, but a single-output network gives a 1-D array of length n.

        Examples
        --------
        >>> MLP((3, 1), seed=0).predict(np.zeros((5, 3))).shape
        (5,)
        """
        out = self.forward(X)
        return out[..., 0] if self.layer_sizes[-1] == 1 and out.ndim == 2 else out

    def error(self, X: Array, Y: Array) -> float:
        """Total error ``E = sum 1/2 (Y - out)^2`` over all rows and outputs."""
        X, Y = self._pair(X, Y)
        return float(0.5 * np.sum((Y - self._activations(X)[-1]) ** 2))

    def _pair(self, X: Array, Y: Array) -> tuple[Array, Array]:
        X = self._check(X, "X", self.layer_sizes[0])
        Y = np.asarray(Y, dtype=np.float64)
        if Y.ndim == 1:  # a column of targets, or the targets of one sample
            Y = Y[:, np.newaxis] if self.layer_sizes[-1] == 1 else Y[np.newaxis, :]
        Y = self._check(Y, "Y", self.layer_sizes[-1])
        if len(Y) != len(X):
            raise ValueError(f"X has {len(X)} rows but Y has {len(Y)}")
        return X, Y

    def fit_step(
        self, X: Array, Y: Array, learning_rate: float, *, update_biases: bool = True
    ) -> float:
        """One gradient-descent step on the total error of ``(X, Y)``.

        Parameters
        ----------
        X, Y : array_like
            Inputs ``(n, n_in)`` and targets ``(n, n_out)``; one sample may be 1-D.
        learning_rate : float
            Step size; the step is ``w -= learning_rate * dE/dw`` with ``E`` summed over
            the rows (one row gives the course's per-sample update).
        update_biases : bool
            ``False`` keeps the biases fixed, as in the course's worked example.

        Returns
        -------
        float
            Total error ``E`` before the step.

        Examples
        --------
        >>> net = MLP((1, 1), seed=0)
        >>> net.fit_step([[1.0]], [[2.0]], 0.1) > net.error([[1.0]], [[2.0]])
        True
        """
        if not learning_rate > 0:
            raise ValueError(f"learning_rate must be positive, got {learning_rate!r}")
        X, Y = self._pair(X, Y)
        outs = self._activations(X)
        total = float(0.5 * np.sum((Y - outs[-1]) ** 2))
        grad_w, grad_b = self._gradients(outs, Y)
        for k in range(len(self.weights)):
            self.weights[k] -= learning_rate * grad_w[k]
            if update_biases:
                self.biases[k] -= learning_rate * grad_b[k]
        return total

    # -- training for real data -----------------------------------------------------

    def fit(
        self,
        X: Array,
        Y: Array,
        *,
        epochs: int = 200,
        batch_size: int = 32,
        optimizer: str = "adam",
        learning_rate: float = 0.01,
        momentum: float = 0.9,
        l2: float = 0.0,
        validation_fraction: float = 0.0,
        validation_data: tuple[Array, Array] | None = None,
        patience: int = 10,
        tol_error: float | None = None,
        tol_update: float | None = None,
    ) -> TrainingHistory:
        """Train by vectorised mini-batch gradient descent.

        The loss per batch is the mean per-sample error plus ``l2 / 2 * sum(W**2)`` over
        the weights (not the biases). Training stops at the first of the course's three
        rules -- ``epochs`` reached, training error below ``tol_error``, largest weight
        change over an epoch below ``tol_update`` -- or, with a validation set, after
        ``patience`` epochs without a better validation error; the best weights are
        then restored.

        Parameters
        ----------
        X, Y : array_like
            Training inputs ``(n, n_in)`` and targets ``(n, n_out)`` (or ``(n,)``).
        epochs, batch_size : int
            Maximum passes over the data, and rows per gradient step.
        optimizer : {"adam", "sgd"}
            Adam, or SGD with (classical) ``momentum``.
        learning_rate, momentum, l2 : float
        validation_fraction : float
            Share of ``(X, Y)`` held out (after a seeded shuffle) for early stopping.
        validation_data : (X_val, Y_val), optional
            An explicit validation set instead of ``validation_fraction``.
        patience : int
        tol_error, tol_update : float, optional

        Returns
        -------
        TrainingHistory

        Examples
        --------
        >>> rng = np.random.default_rng(0)
        >>> X = rng.uniform(size=(200, 2)); y = X[:, 0] - X[:, 1]
        >>> history = MLP((2, 4, 1), seed=0).fit(X, y, epochs=100)
        >>> history.train_error[-1] < 1e-3
        True
        """
        X, Y = self._pair(X, Y)
        check_fit_arguments(
            epochs=epochs, batch_size=batch_size, patience=patience, learning_rate=learning_rate,
            momentum=momentum, l2=l2, validation_fraction=validation_fraction,
        )  # fmt: skip
        opt = make_optimizer(optimizer, learning_rate=learning_rate, momentum=momentum)
        X_val: Array | None = None
        Y_val: Array | None = None
        if validation_data is not None:
            X_val, Y_val = self._pair(*validation_data)
        elif validation_fraction > 0.0:
            order = self._rng.permutation(len(X))
            n_val = round(validation_fraction * len(X))
            if n_val < 1 or n_val >= len(X):
                raise ValueError(f"validation_fraction={validation_fraction} leaves an empty split")
            X_val, Y_val = X[order[:n_val]], Y[order[:n_val]]
            X, Y = X[order[n_val:]], Y[order[n_val:]]
        return self._train(
            X, Y, X_val, Y_val, opt, epochs=int(epochs), batch_size=int(batch_size), l2=l2,
            patience=int(patience), tol_error=tol_error, tol_update=tol_update,
        )  # fmt: skip

    def _mean_error(self, X: Array, Y: Array) -> float:
        return float(0.5 * np.sum((Y - self._activations(X)[-1]) ** 2) / len(X))

    def _train(
        self, X: Array, Y: Array, X_val: Array | None, Y_val: Array | None, opt: Optimizer,
        *, epochs: int, batch_size: int, l2: float, patience: int,
        tol_error: float | None, tol_update: float | None,
    ) -> TrainingHistory:  # fmt: skip
        params = [*self.weights, *self.biases]  # views: the optimiser updates in place
        train, val = [], []
        best = (np.inf, 0, [p.copy() for p in params])
        stopped = "max_epochs"
        for epoch in range(1, epochs + 1):
            before = [w.copy() for w in self.weights] if tol_update is not None else None
            order = self._rng.permutation(len(X))
            epoch_error = 0.0
            for start in range(0, len(X), batch_size):
                rows = order[start : start + batch_size]
                outs = self._activations(X[rows])
                epoch_error += 0.5 * float(np.sum((Y[rows] - outs[-1]) ** 2))
                grad_w, grad_b = self._gradients(outs, Y[rows])
                scale = 1.0 / len(rows)  # mean over the batch: steps do not grow with it
                grads = [g * scale + l2 * w for g, w in zip(grad_w, self.weights, strict=True)]
                opt.step(params, grads + [g * scale for g in grad_b])
            train.append(epoch_error / len(X))
            if X_val is not None and Y_val is not None:
                val.append(self._mean_error(X_val, Y_val))
                if val[-1] < best[0]:
                    best = (val[-1], epoch, [p.copy() for p in params])
                elif epoch - best[1] >= patience:
                    stopped = "early_stopping"
                    break
            if not np.isfinite(train[-1]):
                raise ValueError(
                    f"training diverged at epoch {epoch}; lower learning_rate ({opt.learning_rate})"
                )
            if tol_error is not None and train[-1] < tol_error:
                stopped = "error_below_threshold"
                break
            if before is not None and tol_update is not None:
                change = max(
                    float(np.max(np.abs(w - b))) for w, b in zip(self.weights, before, strict=True)
                )
                if change < tol_update:
                    stopped = "updates_below_threshold"
                    break
        best_epoch = len(train)
        if val:
            for p, saved in zip(params, best[2], strict=True):
                p[...] = saved
            best_epoch = best[1]
        return TrainingHistory(tuple(train), tuple(val), stopped, best_epoch)
