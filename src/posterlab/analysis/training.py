"""Training an MLP on real data: options, update rules, the epoch loop and its history.

The loss per batch is the mean per-sample error plus ``l2 / 2 * sum(W**2)`` over the
weights (not the biases). Training stops at the first of the course's three rules --
``epochs`` reached, training error below ``tol_error``, largest weight change over an epoch
below ``tol_update`` -- or, with a validation set, after ``patience`` epochs without a
better validation error; the best weights are then restored.

The loop works on any network with the :class:`Trainable` attributes, so this module
does not import :mod:`posterlab.analysis.network` (which imports it for ``MLP.fit``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

__all__ = [
    "Adam",
    "Momentum",
    "Optimizer",
    "Trainable",
    "TrainingHistory",
    "TrainingOptions",
    "make_optimizer",
    "train",
]

Array = np.ndarray


@dataclass(frozen=True)
class TrainingOptions:
    """How :meth:`MLP.fit <posterlab.analysis.network.MLP.fit>` trains; checked when built.

    Attributes
    ----------
    epochs, batch_size : int
        Maximum passes over the data, and rows per gradient step.
    optimizer : {"adam", "sgd"}
        Adam, or SGD with (classical) ``momentum``.
    learning_rate, momentum, l2 : float
        Step size, momentum of SGD in [0, 1), L2 penalty on the weights.
    validation_fraction : float
        Share of the rows held out (after a seeded shuffle) for early stopping.
    patience : int
        Epochs without a better validation error before stopping.
    tol_error, tol_update : float, optional
        Stop once the training error, or the largest weight change over an epoch, is
        below this.

    Examples
    --------
    >>> TrainingOptions(epochs=50).batch_size
    32
    >>> TrainingOptions(momentum=1.0)
    Traceback (most recent call last):
    ...
    ValueError: momentum must be in [0, 1), got 1.0
    """

    epochs: int = 200
    batch_size: int = 32
    optimizer: str = "adam"
    learning_rate: float = 0.01
    momentum: float = 0.9
    l2: float = 0.0
    validation_fraction: float = 0.0
    patience: int = 10
    tol_error: float | None = None
    tol_update: float | None = None

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "patience"):
            value = getattr(self, name)
            if int(value) != value or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
            object.__setattr__(self, name, int(value))  # normalising a frozen dataclass
        _check_rates(self)


def _check_rates(options: TrainingOptions) -> None:
    """Raise ValueError naming the first invalid rate or share of ``options``."""
    if options.optimizer not in ("adam", "sgd"):
        raise ValueError(f"optimizer must be 'adam' or 'sgd', got {options.optimizer!r}")
    if not options.learning_rate > 0:
        raise ValueError(f"learning_rate must be positive, got {options.learning_rate!r}")
    if not 0.0 <= options.momentum < 1.0:
        raise ValueError(f"momentum must be in [0, 1), got {options.momentum!r}")
    if not options.l2 >= 0.0:
        raise ValueError(f"l2 must be non-negative, got {options.l2!r}")
    if not 0.0 <= options.validation_fraction < 1.0:
        raise ValueError(
            f"validation_fraction must be in [0, 1), got {options.validation_fraction!r}"
        )


@dataclass(frozen=True)
class TrainingHistory:
    """What training did, epoch by epoch.

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


class Trainable(Protocol):
    """What the loop needs of a network: its parameters, its RNG, forward and backward."""

    weights: list[Array]
    biases: list[Array]
    rng: np.random.Generator

    def layer_outputs(self, X: Array) -> list[Array]: ...

    def gradients(self, outs: list[Array], Y: Array) -> tuple[list[Array], list[Array]]: ...


class Optimizer:
    """Base: ``step(params, grads)`` changes every ``params[k]`` in place."""

    learning_rate: float

    def step(self, params: list[Array], grads: list[Array]) -> None:
        raise NotImplementedError


class Momentum(Optimizer):
    """SGD with classical momentum: ``v = momentum * v - lr * g; p += v``.

    ``momentum=0`` is the course's plain gradient descent.
    """

    def __init__(self, learning_rate: float, momentum: float) -> None:
        self.learning_rate = learning_rate
        self.momentum = momentum
        self._velocity: list[Array] | None = None

    def step(self, params: list[Array], grads: list[Array]) -> None:
        if self._velocity is None:
            self._velocity = [np.zeros_like(p) for p in params]
        for p, g, v in zip(params, grads, self._velocity, strict=True):
            v *= self.momentum
            v -= self.learning_rate * g
            p += v


class Adam(Optimizer):
    """Adam (Kingma & Ba 2015) with the usual defaults and bias correction."""

    def __init__(
        self, learning_rate: float, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8
    ) -> None:
        self.learning_rate = learning_rate
        self.beta1, self.beta2, self.eps = beta1, beta2, eps
        self._t = 0
        self._m: list[Array] | None = None
        self._v: list[Array] | None = None

    def step(self, params: list[Array], grads: list[Array]) -> None:
        if self._m is None or self._v is None:
            self._m = [np.zeros_like(p) for p in params]
            self._v = [np.zeros_like(p) for p in params]
        self._t += 1
        # Folding both bias corrections into the step size saves two array ops per tensor.
        lr = self.learning_rate * np.sqrt(1.0 - self.beta2**self._t) / (1.0 - self.beta1**self._t)
        for p, g, m, v in zip(params, grads, self._m, self._v, strict=True):
            m *= self.beta1
            m += (1.0 - self.beta1) * g
            v *= self.beta2
            v += (1.0 - self.beta2) * g * g
            p -= lr * m / (np.sqrt(v) + self.eps)


def make_optimizer(options: TrainingOptions) -> Optimizer:
    """A fresh update rule for ``options.optimizer`` (``"adam"`` or ``"sgd"``).

    Examples
    --------
    >>> type(make_optimizer(TrainingOptions(optimizer="sgd"))).__name__
    'Momentum'
    """
    if options.optimizer == "sgd":
        return Momentum(options.learning_rate, options.momentum)
    return Adam(options.learning_rate)


def train(
    net: Trainable,
    X: Array,
    Y: Array,
    options: TrainingOptions,
    *,
    validation: tuple[Array, Array] | None = None,
) -> TrainingHistory:
    """Train ``net`` in place on checked 2-D ``X`` and ``Y``; what ``MLP.fit`` runs.

    Parameters
    ----------
    net : Trainable
        Its ``rng`` draws the validation split (when ``options.validation_fraction`` is
        used instead of ``validation``) and then each epoch's shuffle.
    X, Y : ndarray
        Finite inputs ``(n, n_in)`` and targets ``(n, n_out)``.
    options : TrainingOptions
    validation : (X_val, Y_val), optional
        An explicit validation set, already checked.

    Returns
    -------
    TrainingHistory
    """
    X, Y, validation = _hold_out(net.rng, X, Y, options.validation_fraction, validation)
    return _Loop(net, X, Y, validation, options).run()


def _hold_out(
    rng: np.random.Generator, X: Array, Y: Array, fraction: float,
    validation: tuple[Array, Array] | None,
) -> tuple[Array, Array, tuple[Array, Array] | None]:  # fmt: skip
    """The training rows and the validation set: ``validation``, or a seeded share of X."""
    if validation is not None or fraction == 0.0:
        return X, Y, validation
    order = rng.permutation(len(X))
    n_val = round(fraction * len(X))
    if n_val < 1 or n_val >= len(X):
        raise ValueError(f"validation_fraction={fraction} leaves an empty split")
    held, kept = order[:n_val], order[n_val:]
    return X[kept], Y[kept], (X[held], Y[held])


def _mean_error(net: Trainable, X: Array, Y: Array) -> float:
    return float(0.5 * np.sum((Y - net.layer_outputs(X)[-1]) ** 2) / len(X))


class _Loop:
    """One training run: the epochs, the best validation epoch so far, the stopping rules."""

    def __init__(self, net: Trainable, X: Array, Y: Array,
                 validation: tuple[Array, Array] | None, options: TrainingOptions) -> None:
        self.net, self.X, self.Y, self.validation = net, X, Y, validation
        self.options = options
        self.optimizer = make_optimizer(options)
        self.params = [*net.weights, *net.biases]  # views: the optimiser updates in place
        self.train_error: list[float] = []
        self.validation_error: list[float] = []
        self.best = (np.inf, 0, [p.copy() for p in self.params])

    def run(self) -> TrainingHistory:
        stopped = "max_epochs"
        for epoch in range(1, self.options.epochs + 1):
            before = None
            if self.options.tol_update is not None:
                before = [w.copy() for w in self.net.weights]
            self.train_error.append(self._epoch())
            reason = self._stop_reason(epoch, before)
            if reason is not None:
                stopped = reason
                break
        return self._history(stopped)

    def _epoch(self) -> float:
        """One shuffled pass of mini-batch steps; the mean per-sample error seen on the way."""
        net, X, Y, l2 = self.net, self.X, self.Y, self.options.l2
        order = net.rng.permutation(len(X))
        total = 0.0
        for start in range(0, len(X), self.options.batch_size):
            rows = order[start : start + self.options.batch_size]
            outs = net.layer_outputs(X[rows])
            total += 0.5 * float(np.sum((Y[rows] - outs[-1]) ** 2))
            grad_w, grad_b = net.gradients(outs, Y[rows])
            scale = 1.0 / len(rows)  # mean over the batch: steps do not grow with it
            grads = [g * scale + l2 * w for g, w in zip(grad_w, net.weights, strict=True)]
            self.optimizer.step(self.params, grads + [g * scale for g in grad_b])
        return total / len(X)

    def _stop_reason(self, epoch: int, before: list[Array] | None) -> str | None:
        """Why training ends after ``epoch``, or None; in the order the course checks them."""
        if self.validation is not None and self._patience_ran_out(epoch, self.validation):
            return "early_stopping"
        if not np.isfinite(self.train_error[-1]):
            raise ValueError(f"training diverged at epoch {epoch}; lower learning_rate "
                             f"({self.optimizer.learning_rate})")  # fmt: skip
        tol_error, tol_update = self.options.tol_error, self.options.tol_update
        if tol_error is not None and self.train_error[-1] < tol_error:
            return "error_below_threshold"
        if before is not None and tol_update is not None:
            change = max(float(np.max(np.abs(w - b)))
                         for w, b in zip(self.net.weights, before, strict=True))  # fmt: skip
            if change < tol_update:
                return "updates_below_threshold"
        return None

    def _patience_ran_out(self, epoch: int, validation: tuple[Array, Array]) -> bool:
        """Record this epoch's validation error; True after ``patience`` epochs without gain."""
        self.validation_error.append(_mean_error(self.net, *validation))
        if self.validation_error[-1] < self.best[0]:
            self.best = (self.validation_error[-1], epoch, [p.copy() for p in self.params])
            return False
        return epoch - self.best[1] >= self.options.patience

    def _history(self, stopped: str) -> TrainingHistory:
        best_epoch = len(self.train_error)
        if self.validation_error:
            for p, saved in zip(self.params, self.best[2], strict=True):
                p[...] = saved
            best_epoch = self.best[1]
        return TrainingHistory(tuple(self.train_error), tuple(self.validation_error),
                               stopped, best_epoch)  # fmt: skip
