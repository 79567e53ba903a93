"""Training helpers for the MLP: update rules over parameter lists, argument checks."""

from __future__ import annotations

import numpy as np

__all__ = ["Adam", "Momentum", "Optimizer", "check_fit_arguments", "make_optimizer"]


class Optimizer:
    """Base: ``step(params, grads)`` changes every ``params[k]`` in place."""

    learning_rate: float

    def step(self, params: list[np.ndarray], grads: list[np.ndarray]) -> None:
        raise NotImplementedError


class Momentum(Optimizer):
    """SGD with classical momentum: ``v = momentum * v - lr * g; p += v``.

    ``momentum=0`` is the course's plain gradient descent.
    """

    def __init__(self, learning_rate: float, momentum: float) -> None:
        self.learning_rate = learning_rate
        self.momentum = momentum
        self._velocity: list[np.ndarray] | None = None

    def step(self, params: list[np.ndarray], grads: list[np.ndarray]) -> None:
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
        self._m: list[np.ndarray] | None = None
        self._v: list[np.ndarray] | None = None

    def step(self, params: list[np.ndarray], grads: list[np.ndarray]) -> None:
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


def make_optimizer(name: str, *, learning_rate: float, momentum: float) -> Optimizer:
    """``"adam"`` or ``"sgd"`` (with ``momentum``); ValueError names ``optimizer`` otherwise."""
    if name == "adam":
        return Adam(learning_rate)
    if name == "sgd":
        return Momentum(learning_rate, momentum)
    raise ValueError(f"optimizer must be 'adam' or 'sgd', got {name!r}")


def check_fit_arguments(
    *, epochs: int, batch_size: int, patience: int, learning_rate: float, momentum: float,
    l2: float, validation_fraction: float,
) -> None:  # fmt: skip
    """Raise ValueError naming the first invalid argument of :meth:`MLP.fit`."""
    for name, value in (("epochs", epochs), ("batch_size", batch_size), ("patience", patience)):
        if int(value) != value or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if not learning_rate > 0:
        raise ValueError(f"learning_rate must be positive, got {learning_rate!r}")
    if not 0.0 <= momentum < 1.0:
        raise ValueError(f"momentum must be in [0, 1), got {momentum!r}")
    if not l2 >= 0.0:
        raise ValueError(f"l2 must be non-negative, got {l2!r}")
    if not 0.0 <= validation_fraction < 1.0:
        raise ValueError(f"validation_fraction must be in [0, 1), got {validation_fraction!r}")
