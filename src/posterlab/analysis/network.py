"""A fully connected network trained by backpropagation, in numpy only.

The maths is the course's: squared-error loss ``E = sum 1/2 (target - out)^2``, a bias
vector per layer, sigmoid / tanh / relu hidden units, an identity or sigmoid output.
:meth:`MLP.fit_step` is one plain gradient-descent step on ``E`` exactly as worked by
hand in the course; :meth:`MLP.fit` is the version for real data (mini-batches, SGD with
momentum or Adam, L2, the course's stopping rules and early stopping), whose loop lives in
:mod:`posterlab.analysis.training`.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence

import numpy as np

from posterlab.analysis.training import TrainingHistory, TrainingOptions, train

__all__ = ["MLP"]

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
    rng : numpy.random.Generator
        Drawn from by the initialisation, then by :meth:`fit` for its shuffles.

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
        self.rng = np.random.default_rng(seed)
        self.weights: list[Array] = []
        self.biases: list[Array] = []
        for n_in, n_out in itertools.pairwise(sizes):
            limit = 1.0 if init == "uniform" else np.sqrt(6.0 / (n_in + n_out))
            self.weights.append(self.rng.uniform(-limit, limit, size=(n_in, n_out)))
            self.biases.append(
                self.rng.uniform(-1.0, 1.0, size=n_out) if init == "uniform" else np.zeros(n_out)
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

    def layer_outputs(self, X: Array) -> list[Array]:
        """Outputs of every layer for checked inputs, the input included (what backprop needs)."""
        outs = [X]
        last = len(self.weights) - 1
        for k, (W, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            name = self.output_activation if k == last else self.hidden_activation
            outs.append(_ACTIVATIONS[name][0](outs[-1] @ W + b))
        return outs

    def gradients(self, outs: list[Array], Y: Array) -> tuple[list[Array], list[Array]]:
        """Gradients of ``E = sum over rows and outputs of 1/2 (Y - out)^2`` (backpropagation).

        ``outs`` is :meth:`layer_outputs` of the rows whose targets are ``Y``; returns the
        gradients of the weights and of the biases, layer by layer.
        """
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
        out = self.layer_outputs(self._check(X, "X", self.layer_sizes[0]))[-1]
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
        return float(0.5 * np.sum((Y - self.layer_outputs(X)[-1]) ** 2))

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
        outs = self.layer_outputs(X)
        total = float(0.5 * np.sum((Y - outs[-1]) ** 2))
        grad_w, grad_b = self.gradients(outs, Y)
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
        options: TrainingOptions | None = None,
        *,
        validation_data: tuple[Array, Array] | None = None,
    ) -> TrainingHistory:
        """Train by vectorised mini-batch gradient descent.

        The loop, its loss and its stopping rules are those of
        :func:`posterlab.analysis.training.train`.

        Parameters
        ----------
        X, Y : array_like
            Training inputs ``(n, n_in)`` and targets ``(n, n_out)`` (or ``(n,)``).
        options : TrainingOptions, optional
            Epochs, batch size, optimiser, L2, validation share and stopping rules; the
            defaults when ``None``.
        validation_data : (X_val, Y_val), optional
            An explicit validation set instead of ``options.validation_fraction``.

        Returns
        -------
        TrainingHistory

        Examples
        --------
        >>> rng = np.random.default_rng(0)
        >>> X = rng.uniform(size=(200, 2)); y = X[:, 0] - X[:, 1]
        >>> history = MLP((2, 4, 1), seed=0).fit(X, y, TrainingOptions(epochs=100))
        >>> history.train_error[-1] < 1e-3
        True
        """
        X, Y = self._pair(X, Y)
        validation = self._pair(*validation_data) if validation_data is not None else None
        return train(self, X, Y, options or TrainingOptions(), validation=validation)
