"""Trained networks with their input and target scaling: what is stored with a run.

The model is the mean of one or more networks of the same shape (an ensemble).
:meth:`FittedModel.to_dict` gives plain JSON (every network's weights and biases as nested
lists, the scaling, the input names and the training settings);
:meth:`FittedModel.from_dict` turns it back into a model that predicts exactly as the
original did, so a stored run can be scored again without retraining.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from posterlab.analysis.inputs import Scaler
from posterlab.analysis.mlp import MLP

__all__ = ["FittedModel"]


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
