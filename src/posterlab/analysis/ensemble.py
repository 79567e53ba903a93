"""The ensemble of networks that predicts the rating: how it is planned and trained, and
what is stored with a run.

:class:`TrainingPlan` says how every network is built and trained; :func:`cross_validate`
chooses the hidden size and :func:`train_ensemble` trains the members. The model is the
mean of one or more networks of the same shape: :class:`FittedModel`, the networks with
their input and target scaling. :meth:`FittedModel.to_dict` gives plain JSON (every
network's weights and biases as nested lists, the scaling, the input names and the
training settings); :meth:`FittedModel.from_dict` turns it back into a model that
predicts exactly as the original did, so a stored run can be scored again without
retraining.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from posterlab.analysis.inputs import Scaler, fit_scaler
from posterlab.analysis.network import MLP
from posterlab.analysis.training import TrainingHistory, TrainingOptions

__all__ = ["FittedModel", "TrainingPlan", "cross_validate", "train_ensemble"]


@dataclass(frozen=True)
class TrainingPlan:
    """How every MLP in an evaluation is built and trained.

    The defaults train on 1,600 posters in well under a second per network on one core:
    early stopping usually ends training well before ``epochs``. The hidden size is
    chosen by ``folds``-fold cross-validation of single networks; the final model is the
    mean of ``ensemble`` networks trained from different seeds, each early-stopped on
    its own validation rows, so that together they learn from every training row.
    """

    # Small networks, strong L2: on 2,000 real posters the features alone carry ~1% of
    # the rating's variance, and anything bigger or freer fits noise (5-fold, 16 units or
    # l2 = 0.003 fell below the mean baseline in some folds; 4-8 units with 0.03 in none).
    hidden_sizes: tuple[int, ...] = (4, 8)
    # Cross-validation chooses the L2 penalty among these inside every outer training
    # fold, with the hidden size; ``l2`` is what a single evaluate() uses.
    l2_choices: tuple[float, ...] = (0.01, 0.03, 0.1)
    folds: int = 3
    hidden_activation: str = "tanh"
    epochs: int = 150
    batch_size: int = 64
    optimizer: str = "adam"
    learning_rate: float = 0.01
    l2: float = 0.03
    validation_fraction: float = 0.2
    patience: int = 10
    scaling: str = "standard"
    # On 2,000 real posters (5-fold) one network was ~0.01 R^2 below least squares and
    # five averaged ~0.01 above it; without genre, one fell below the mean baseline in
    # 2 folds of 5 and five in none.
    ensemble: int = 5

    def __post_init__(self) -> None:
        if not self.hidden_sizes or any(int(h) != h or h < 1 for h in self.hidden_sizes):
            raise ValueError(f"hidden_sizes must be positive integers, got {self.hidden_sizes!r}")
        if not self.l2_choices or any(not v >= 0 for v in self.l2_choices):
            raise ValueError(f"l2_choices must be non-negative, got {self.l2_choices!r}")
        if self.folds < 2:
            raise ValueError(f"folds must be at least 2, got {self.folds!r}")
        if int(self.ensemble) != self.ensemble or self.ensemble < 1:
            raise ValueError(f"ensemble must be a positive integer, got {self.ensemble!r}")

    @property
    def options(self) -> TrainingOptions:
        """The :class:`~posterlab.analysis.training.TrainingOptions` of every network."""
        return TrainingOptions(
            epochs=self.epochs, batch_size=self.batch_size, optimizer=self.optimizer,
            learning_rate=self.learning_rate, l2=self.l2,
            validation_fraction=self.validation_fraction, patience=self.patience,
        )  # fmt: skip

    def train(
        self, X: np.ndarray, y: np.ndarray, *, hidden: int, task: str, seed: int
    ) -> tuple[MLP, TrainingHistory]:
        """A fresh network of ``hidden`` units trained on ``(X, y)`` (already scaled)."""
        output = "sigmoid" if task == "classification" else "identity"
        net = MLP((X.shape[1], hidden, 1), self.hidden_activation, output, seed=seed)
        return net, net.fit(X, y, self.options)


def cross_validate(
    X: np.ndarray, y: np.ndarray, *, task: str, plan: TrainingPlan, seed: int
) -> dict[int, float]:
    """Mean held-out squared error of each hidden size over ``plan.folds`` folds.

    ``y`` is the model target (scaled rating, or 0/1 band); inputs are scaled per fold
    on the fold's training rows. Returns ``{hidden_size: mean squared error}``.
    """
    folds = np.array_split(np.random.default_rng(seed).permutation(len(X)), plan.folds)
    return {int(hidden): _cv_error(X, y, folds, hidden=hidden, task=task, plan=plan, seed=seed)
            for hidden in plan.hidden_sizes}  # fmt: skip


def _cv_error(
    X: np.ndarray, y: np.ndarray, folds: list[np.ndarray], *, hidden: int, task: str,
    plan: TrainingPlan, seed: int,
) -> float:  # fmt: skip
    errors = []
    for k, held in enumerate(folds):
        fit_rows = np.concatenate([f for j, f in enumerate(folds) if j != k])
        scaler = fit_scaler(X[fit_rows], plan.scaling)
        net, _ = plan.train(
            scaler.transform(X[fit_rows]), y[fit_rows], hidden=hidden, task=task, seed=seed
        )
        errors.append(np.mean((net.predict(scaler.transform(X[held])) - y[held]) ** 2))
    return float(np.mean(errors))


def train_ensemble(
    X: np.ndarray, y: np.ndarray, *, plan: TrainingPlan, hidden: int, task: str, seed: int
) -> list[tuple[MLP, TrainingHistory]]:
    """``plan.ensemble`` networks of ``hidden`` units on scaled ``(X, y)``, seeds ``seed + k``."""
    return [plan.train(X, y, hidden=hidden, task=task, seed=seed + k)
            for k in range(plan.ensemble)]  # fmt: skip


@dataclass(frozen=True, eq=False)  # eq=False: holds arrays
class FittedModel:
    """Networks trained on scaled inputs, and how to scale inputs and outputs for them.

    Attributes
    ----------
    networks : tuple of MLP
        Same layer sizes and activations; the model's output is their mean.
    x_scaler : Scaler
        ``(X - offset) / scale`` per input, fitted on the training rows.
    y_scaler : Scaler
        Maps network output back to ratings (identity for band probabilities).
    inputs : tuple of str
        Name of each input column, in order.
    plan : dict
        The training settings (fields of ``TrainingPlan``) and the chosen hidden size.

    Examples
    --------
    >>> nets = (MLP((2, 3, 1), seed=0), MLP((2, 3, 1), seed=1))
    >>> model = FittedModel(nets, Scaler(np.zeros(2), np.ones(2)), Scaler(np.zeros(1), np.ones(1)))
    >>> again = FittedModel.from_dict(model.to_dict())
    >>> bool(np.array_equal(again.predict([[1.0, 2.0]]), model.predict([[1.0, 2.0]])))
    True
    """

    networks: tuple[MLP, ...]
    x_scaler: Scaler
    y_scaler: Scaler
    inputs: tuple[str, ...] = ()
    plan: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        shapes = {(n.layer_sizes, n.hidden_activation, n.output_activation) for n in self.networks}
        if len(shapes) != 1:
            raise ValueError("networks must be one or more networks of the same shape")

    @property
    def layer_sizes(self) -> tuple[int, ...]:
        """Units per layer of every network, input first."""
        return self.networks[0].layer_sizes

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Ratings (or band probabilities) for raw, unscaled inputs ``X`` of shape (n, p)."""
        scaled = self.x_scaler.transform(np.atleast_2d(np.asarray(X, np.float64)))
        out = np.mean([net.predict(scaled) for net in self.networks], axis=0)
        return self.y_scaler.inverse_transform(out)

    def with_inputs(self, inputs: Sequence[str]) -> FittedModel:
        """The same model with its input columns named."""
        if len(inputs) != self.layer_sizes[0]:
            raise ValueError(f"inputs must name {self.layer_sizes[0]} columns, got {len(inputs)}")
        return dataclasses.replace(self, inputs=tuple(str(name) for name in inputs))

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON: ``layer_sizes``, activations, ``members``, ``scaling``, ``inputs``,
        ``plan``.

        ``members`` holds one ``{"weights": [...], "biases": [...]}`` per network; its
        ``weights[k]`` is a list of ``n_in`` rows of ``n_out`` numbers (``X @ W + b``) and
        the model's output is the mean of the networks'. ``scaling`` holds ``method``, the
        per-input ``offset`` and ``scale`` (for the ``"standard"`` method the training
        mean and standard deviation, for ``"minmax"`` the minimum and range) and the
        target's ``target_offset`` and ``target_scale``:
        ``rating = target_offset + target_scale * mean_network((x - offset) / scale)``.
        """
        first = self.networks[0]
        return {
            "layer_sizes": list(first.layer_sizes),
            "hidden_activation": first.hidden_activation,
            "output_activation": first.output_activation,
            "members": [
                {
                    "weights": [w.tolist() for w in net.weights],
                    "biases": [b.tolist() for b in net.biases],
                }
                for net in self.networks
            ],
            "scaling": {
                "method": self.plan.get("scaling", "standard"),
                "offset": np.atleast_1d(self.x_scaler.offset).tolist(),
                "scale": np.atleast_1d(self.x_scaler.scale).tolist(),
                "target_offset": float(np.ravel(self.y_scaler.offset)[0]),
                "target_scale": float(np.ravel(self.y_scaler.scale)[0]),
            },
            "inputs": list(self.inputs),
            "plan": {k: list(v) if isinstance(v, tuple) else v for k, v in self.plan.items()},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FittedModel:
        """Rebuild a model from :meth:`to_dict` output (also after a JSON round trip)."""
        try:
            nets = tuple(_network(data, member) for member in data["members"])
            scaling = data["scaling"]
            x_scaler = Scaler(np.asarray(scaling["offset"], np.float64),
                              np.asarray(scaling["scale"], np.float64))  # fmt: skip
            y_scaler = Scaler(np.array([scaling["target_offset"]], np.float64),
                              np.array([scaling["target_scale"]], np.float64))  # fmt: skip
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"data is not a stored network: {exc}") from exc
        if not nets:
            raise ValueError("data is not a stored network: no members")
        return cls(nets, x_scaler, y_scaler, tuple(data.get("inputs", ())),
                   dict(data.get("plan", {})))  # fmt: skip


def _network(data: Mapping[str, Any], member: Mapping[str, Any]) -> MLP:
    net = MLP(data["layer_sizes"], data["hidden_activation"], data["output_activation"])
    shapes = list(itertools.pairwise(net.layer_sizes))
    net.weights = [np.asarray(w, np.float64).reshape(shape)
                   for w, shape in zip(member["weights"], shapes, strict=True)]  # fmt: skip
    net.biases = [np.asarray(b, np.float64).reshape(n_out)
                  for b, (_, n_out) in zip(member["biases"], shapes, strict=True)]  # fmt: skip
    return net
