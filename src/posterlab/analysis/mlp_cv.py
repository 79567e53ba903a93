"""The MLP ensemble under nested cross-validation, and the final model on every row.

For every outer training fold (and, last, for all rows, which gives the stored model):

1. choice: each candidate (hidden size x L2 penalty of the plan) is trained on 75% of
   the training fold and scored on the other 25% (early stopping on the same rows);
   the candidate with the smallest error wins (ties: the smaller, more penalised one);
2. ensemble: ``plan.ensemble`` networks of the winning candidate, each early-stopped on
   its own ``plan.validation_fraction`` of the training fold, all scaled like the whole
   fold; the prediction is their mean.

No row of an outer test fold enters its choice, scaling or training. All networks of
one step, over every fold, are trained together (:mod:`posterlab.analysis.stacked`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from posterlab.analysis.cv import Split
from posterlab.analysis.ensemble import FittedModel, TrainingPlan
from posterlab.analysis.stacked import MemberSpec, Stack, train_stack

__all__ = ["NestedMLP", "nested_mlp"]

_CHOICE_HOLDOUT = 0.25


@dataclass(frozen=True, eq=False)  # eq=False: holds arrays
class NestedMLP:
    """Outer-fold predictions, the choices made, and the final model."""

    stack: Stack
    members: list[np.ndarray]  # member indices of each outer fit's ensemble
    predictions: list[np.ndarray]  # each outer fit's test-fold predictions
    choices: list[tuple[int, float]]  # (hidden, l2) chosen in each outer fit
    final: FittedModel
    final_choice: tuple[int, float]


def _holdout(rows: np.ndarray, share: float, seed: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    order = np.random.default_rng(list(seed)).permutation(rows)
    cut = max(1, round(share * len(rows)))
    return np.sort(order[cut:]), np.sort(order[:cut])


def _member_seed(seed: int, fit: int, member: int) -> int:
    return int(np.random.SeedSequence([seed, fit, member]).generate_state(1)[0])


def nested_mlp(X: np.ndarray, y: np.ndarray, splits: Sequence[Split], *, task: str,
               plan: TrainingPlan, seed: int, inputs: Sequence[str]) -> NestedMLP:  # fmt: skip
    """Train and score the MLP ensemble on every outer split, then on all rows.

    ``y`` is the rating (regression) or the 0/1 band (classification).
    """
    fits = [*[train for train, _ in splits], np.arange(len(X))]
    configs = [(int(h), float(l2)) for h in plan.hidden_sizes for l2 in plan.l2_choices]
    chosen = _choose(X, y, fits, configs, task=task, plan=plan, seed=seed)
    specs: list[MemberSpec] = []
    members: list[np.ndarray] = []
    for f, train in enumerate(fits):
        hidden, l2 = chosen[f]
        members.append(np.arange(len(specs), len(specs) + plan.ensemble))
        for k in range(plan.ensemble):
            fit_rows, valid = _holdout(train, plan.validation_fraction, (seed, f, k + 1))
            specs.append(MemberSpec(fit_rows, valid, hidden, l2,
                                    _member_seed(seed, f, k + 1), scale_rows=train))  # fmt: skip
    stack = train_stack(X, y, specs, plan=plan, task=task)
    predictions = [stack.predict(X[test], members[f]).mean(axis=0)
                   for f, (_, test) in enumerate(splits)]  # fmt: skip
    hidden, l2 = chosen[-1]
    settings = {**asdict(plan), "hidden_size": hidden, "l2": l2, "task": task, "seed": seed}
    final = stack.fitted(members[-1], inputs, settings)
    return NestedMLP(stack, members[:-1], predictions, chosen[:-1], final, chosen[-1])


def _choose(X: np.ndarray, y: np.ndarray, fits: Sequence[np.ndarray],
            configs: list[tuple[int, float]], *, task: str, plan: TrainingPlan,
            seed: int) -> list[tuple[int, float]]:  # fmt: skip
    """The winning (hidden, l2) of each training set, from its own holdout."""
    if len(configs) == 1:
        return [configs[0]] * len(fits)
    specs = []
    for f, train in enumerate(fits):
        fit_rows, held = _holdout(train, _CHOICE_HOLDOUT, (seed, f, 0))
        specs += [MemberSpec(fit_rows, held, h, l2, _member_seed(seed, f, 0))
                  for h, l2 in configs]  # fmt: skip
    stack = train_stack(X, y, specs, plan=plan, task=task)
    errors = stack.best_error.reshape(len(fits), len(configs))
    # Ties (to 1e-12) go to the smaller network, then to the larger penalty.
    order = sorted(range(len(configs)), key=lambda c: (configs[c][0], -configs[c][1]))
    ranked = errors[:, order]
    best = np.argmax(ranked <= ranked.min(axis=1, keepdims=True) + 1e-12, axis=1)
    return [configs[order[int(b)]] for b in best]
