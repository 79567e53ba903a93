"""Many small MLPs trained at once, as one stack of arrays.

Cross-validation trains hundreds of networks of one hidden layer on the same inputs:
every outer fold, every candidate setting, every member of an ensemble. One at a time,
each mini-batch step of a 22-4-1 network costs far more in Python and numpy call
overhead than in arithmetic. Here the networks are a stack: the weights of member ``m``
are ``W1[m]`` (inputs x hidden), ``b1[m]``, ``w2[m]`` (hidden), ``b2[m]``; every step
draws one mini-batch per member (from that member's own training rows) and updates all
members with one batched matrix product. The maths of each member is that of
:class:`~posterlab.analysis.network.MLP` trained by
:func:`~posterlab.analysis.training.train`: squared error ``1/2 (t - out)^2`` averaged
over the batch, L2 ``l2 / 2 * sum(W^2)`` on the weights, Adam, early stopping on the
member's validation rows with the best weights restored.

Members may differ in hidden size (smaller ones are masked to the largest), L2 penalty,
training and validation rows, and input and target scaling (each member's, fitted on its
own training rows: nothing of a held-out row enters its scaling).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from posterlab.analysis.ensemble import FittedModel, TrainingPlan
from posterlab.analysis.inputs import Scaler
from posterlab.analysis.network import MLP

__all__ = ["MemberSpec", "Stack", "train_stack"]

Array = np.ndarray
_BETA1, _BETA2, _EPS = 0.9, 0.999, 1e-8  # Adam's usual constants, as in training.Adam


@dataclass(frozen=True, eq=False)  # eq=False: holds arrays
class MemberSpec:
    """One network of a stack: its rows, its size, its penalty and its seed.

    ``scale_rows`` are the rows its input and target scaling is fitted on (its training
    rows when None); members of one ensemble share them, so that they share one scaling.
    """

    train: Array
    valid: Array
    hidden: int
    l2: float
    seed: int
    scale_rows: Array | None = None

    @property
    def fit_rows(self) -> Array:
        """The rows the member's scaling is fitted on."""
        return self.train if self.scale_rows is None else self.scale_rows


@dataclass(frozen=True, eq=False)
class Stack:
    """Trained members: weights, per-member scaling, and what each stopped at."""

    W1: Array  # (M, p, H)
    b1: Array  # (M, H)
    w2: Array  # (M, H)
    b2: Array  # (M,)
    x_offset: Array  # (M, p)
    x_scale: Array  # (M, p)
    y_offset: Array  # (M,)
    y_scale: Array  # (M,)
    hidden: Array  # (M,) hidden units of each member
    best_error: Array  # (M,) validation error (target scale) at the weights kept
    epochs: Array  # (M,) epochs trained
    sigmoid: bool

    def predict(self, X: Array, members: Sequence[int] | None = None) -> Array:
        """Outputs of the chosen members on raw rows ``X``: shape (len(members), n)."""
        idx = np.arange(len(self.b2)) if members is None else np.asarray(members, np.int64)
        Xs = (np.asarray(X, np.float64)[None, :, :] - self.x_offset[idx, None, :])
        Xs /= self.x_scale[idx, None, :]
        out = _forward(Xs, self.W1[idx], self.b1[idx], self.w2[idx], self.b2[idx],
                       self.sigmoid)[1]  # fmt: skip
        return out * self.y_scale[idx, None] + self.y_offset[idx, None]

    def fitted(self, members: Sequence[int], inputs: Sequence[str],
               plan: dict[str, object]) -> FittedModel:  # fmt: skip
        """The chosen members (one shared scaling) as a storable :class:`FittedModel`."""
        first = int(members[0])
        nets = tuple(self._mlp(int(m)) for m in members)
        x_scaler = Scaler(self.x_offset[first].copy(), self.x_scale[first].copy())
        y_scaler = Scaler(self.y_offset[first : first + 1].copy(),
                          self.y_scale[first : first + 1].copy())  # fmt: skip
        return FittedModel(nets, x_scaler, y_scaler, plan=plan).with_inputs(inputs)

    def _mlp(self, m: int) -> MLP:
        h = int(self.hidden[m])
        output = "sigmoid" if self.sigmoid else "identity"
        net = MLP((self.W1.shape[1], h, 1), "tanh", output)
        net.weights = [self.W1[m, :, :h].copy(), self.w2[m, :h, None].copy()]
        net.biases = [self.b1[m, :h].copy(), self.b2[m : m + 1].copy()]
        return net


def _forward(Xs: Array, W1: Array, b1: Array, w2: Array, b2: Array,
             sigmoid: bool) -> tuple[Array, Array]:  # fmt: skip
    """Hidden outputs (M, B, H) and network outputs (M, B) of scaled rows (M, B, p)."""
    hidden = np.tanh(Xs @ W1 + b1[:, None, :])
    out = (hidden @ w2[:, :, None])[..., 0] + b2[:, None]
    if sigmoid:
        out = 1.0 / (1.0 + np.exp(-np.clip(out, -500.0, 500.0)))
    return hidden, out


def _padded(rows: Sequence[Array]) -> tuple[Array, Array]:
    """Index arrays of unequal length as one (M, L) array and its 0/1 mask."""
    length = max(len(r) for r in rows)
    idx = np.zeros((len(rows), length), np.int64)
    mask = np.zeros((len(rows), length))
    for m, r in enumerate(rows):
        idx[m, : len(r)], mask[m, : len(r)] = r, 1.0
    return idx, mask


def train_stack(X: Array, y: Array, specs: Sequence[MemberSpec], *, plan: TrainingPlan,
                task: str) -> Stack:  # fmt: skip
    """Train every member of ``specs`` on its rows of raw ``X`` and target ``y``.

    ``y`` is the rating (regression: standardised per member on its training rows) or
    the 0/1 band (classification: a sigmoid output, no scaling). Each member keeps the
    weights of its best epoch on its ``valid`` rows.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(300, 2)); y = X[:, 0] + 0.1 * rng.normal(size=300)
    >>> spec = MemberSpec(np.arange(240), np.arange(240, 300), hidden=4, l2=0.0, seed=0)
    >>> stack = train_stack(X, y, [spec], plan=TrainingPlan(), task="regression")
    >>> bool(np.corrcoef(stack.predict(X[240:])[0], y[240:])[0, 1] > 0.9)
    True
    """
    X, y = np.asarray(X, np.float64), np.asarray(y, np.float64)
    state = _State.start(X, y, specs, task=task)
    loop = _Loop(state, X, y, specs, plan)
    loop.run()
    return state.stack(loop.best, loop.best_error, loop.epochs)


@dataclass(eq=False)
class _State:
    """Weights (W1, b1, w2, b2), hidden masks and scaling of the members being trained."""

    params: list[Array]
    mask: Array  # (M, H) 1 for a member's own hidden units
    x_offset: Array
    x_scale: Array
    y_offset: Array
    y_scale: Array
    hidden: Array
    l2: Array
    sigmoid: bool

    @classmethod
    def start(cls, X: Array, y: Array, specs: Sequence[MemberSpec], *, task: str) -> _State:
        p, H = X.shape[1], max(s.hidden for s in specs)
        M = len(specs)
        W1, w2 = np.zeros((M, p, H)), np.zeros((M, H))
        mask = np.zeros((M, H))
        for m, s in enumerate(specs):
            rng = np.random.default_rng(s.seed)  # Glorot, as MLP(init="glorot")
            lim1, lim2 = np.sqrt(6.0 / (p + s.hidden)), np.sqrt(6.0 / (s.hidden + 1))
            W1[m, :, : s.hidden] = rng.uniform(-lim1, lim1, size=(p, s.hidden))
            w2[m, : s.hidden] = rng.uniform(-lim2, lim2, size=s.hidden)
            mask[m, : s.hidden] = 1.0
        xo = np.stack([X[s.fit_rows].mean(axis=0) for s in specs])
        xs = np.stack([X[s.fit_rows].std(axis=0) for s in specs])
        regression = task == "regression"
        yo = np.array([y[s.fit_rows].mean() if regression else 0.0 for s in specs])
        ys = np.array([(y[s.fit_rows].std() or 1.0) if regression else 1.0 for s in specs])
        return cls([W1, np.zeros((M, H)), w2, np.zeros(M)], mask, xo,
                   np.where(xs > 0, xs, 1.0), yo, ys, np.array([s.hidden for s in specs]),
                   np.array([s.l2 for s in specs]), not regression)  # fmt: skip

    def stack(self, best: list[Array], best_error: Array, epochs: Array) -> Stack:
        W1, b1, w2, b2 = best
        return Stack(W1, b1, w2, b2, self.x_offset, self.x_scale, self.y_offset,
                     self.y_scale, self.hidden, best_error, epochs, self.sigmoid)  # fmt: skip


class _Loop:
    """Epochs of per-member mini-batches, Adam, and per-member early stopping.

    Members whose patience ran out leave the computation: each epoch works on the
    still-active members only, so one slow member does not make every member pay.
    """

    def __init__(self, state: _State, X: Array, y: Array, specs: Sequence[MemberSpec],
                 plan: TrainingPlan) -> None:  # fmt: skip
        self.state, self.X, self.y, self.plan = state, X, y, plan
        self.train_idx, self.train_mask = _padded([s.train for s in specs])
        self.valid_idx, self.valid_mask = _padded([_capped(s) for s in specs])
        self.rngs = [np.random.default_rng((s.seed, 1)) for s in specs]
        M = len(specs)
        self.moments = [[np.zeros_like(p) for p in state.params] for _ in range(2)]
        self.t = 0
        self.active = np.ones(M, bool)
        self.best = [p.copy() for p in state.params]
        self.best_error = np.full(M, np.inf)
        self.best_epoch = np.zeros(M, np.int64)
        self.epochs = np.zeros(M, np.int64)
        steps_per_epoch = -(-int(self.train_mask.sum(axis=1).max()) // plan.batch_size)
        self.max_epochs = max(1, min(plan.epochs, -(-MAX_STEPS // steps_per_epoch)))

    def run(self) -> None:
        for epoch in range(1, self.max_epochs + 1):
            act = np.flatnonzero(self.active)
            self._epoch(act)
            self.epochs[act] += 1
            self._check_validation(epoch, act)
            if not self.active.any():
                break

    def _epoch(self, act: Array) -> None:
        """One shuffled pass over each active member's rows (padding rows weigh nothing)."""
        width = self.train_idx.shape[1]
        perms = np.stack([self.rngs[m].permutation(width) for m in act])
        order = np.take_along_axis(self.train_idx[act], perms, axis=1)
        weight = np.take_along_axis(self.train_mask[act], perms, axis=1)
        view = _View.of(self.state, act)
        params = [p[act] for p in self.state.params]
        moments = [[mo[act] for mo in group] for group in self.moments]
        for start in range(0, width, self.plan.batch_size):
            cut = slice(start, start + self.plan.batch_size)
            grads = _gradients(view, params, self.X[order[:, cut]], self.y[order[:, cut]],
                               weight[:, cut])  # fmt: skip
            self._adam(params, grads, moments)
        for full, part in zip(self.state.params, params, strict=True):
            full[act] = part
        for group, parts in zip(self.moments, moments, strict=True):
            for full, part in zip(group, parts, strict=True):
                full[act] = part

    def _adam(self, params: list[Array], grads: list[Array], moments: list[list[Array]]) -> None:
        self.t += 1
        lr = self.plan.learning_rate * np.sqrt(1.0 - _BETA2**self.t) / (1.0 - _BETA1**self.t)
        for p, g, m, v in zip(params, grads, *moments, strict=True):
            m *= _BETA1
            m += (1.0 - _BETA1) * g
            v *= _BETA2
            v += (1.0 - _BETA2) * g * g
            p -= lr * m / (np.sqrt(v) + _EPS)

    def _check_validation(self, epoch: int, act: Array) -> None:
        view = _View.of(self.state, act)
        params = [p[act] for p in self.state.params]
        Xs, t = view.scaled(self.X[self.valid_idx[act]], self.y[self.valid_idx[act]])
        out = _forward(Xs, *params, view.sigmoid)[1]
        mask = self.valid_mask[act]
        err = 0.5 * ((out - t) ** 2 * mask).sum(axis=1) / np.maximum(mask.sum(axis=1), 1.0)
        better = err < self.best_error[act]
        gained = act[better]
        self.best_error[gained], self.best_epoch[gained] = err[better], epoch
        for best, p in zip(self.best, params, strict=True):
            best[gained] = p[better]
        self.active[act[epoch - self.best_epoch[act] >= self.plan.patience]] = False


MAX_STEPS = 3000  # per member: ~150 epochs of 1,280 rows; 40,000 rows stop after ~8 epochs
MAX_VALID = 2000  # validation rows per member: early stopping needs no more


def _capped(spec: MemberSpec) -> Array:
    """At most :data:`MAX_VALID` of the member's validation rows (a seeded choice)."""
    if len(spec.valid) <= MAX_VALID:
        return spec.valid
    rng = np.random.default_rng((spec.seed, 2))
    return np.sort(rng.choice(spec.valid, size=MAX_VALID, replace=False))


@dataclass(frozen=True, eq=False)
class _View:
    """The per-member constants of the active members."""

    x_offset: Array
    x_scale: Array
    y_offset: Array
    y_scale: Array
    mask: Array
    l2: Array
    sigmoid: bool

    @classmethod
    def of(cls, s: _State, act: Array) -> _View:
        return cls(s.x_offset[act], s.x_scale[act], s.y_offset[act], s.y_scale[act],
                   s.mask[act], s.l2[act], s.sigmoid)  # fmt: skip

    def scaled(self, Xb: Array, yb: Array) -> tuple[Array, Array]:
        """Gathered rows (M, B, p) and targets (M, B) on each member's scale."""
        Xs = (Xb - self.x_offset[:, None, :]) / self.x_scale[:, None, :]
        return Xs, (yb - self.y_offset[:, None]) / self.y_scale[:, None]


def _gradients(view: _View, params: list[Array], Xb: Array, yb: Array,
               weight: Array) -> list[Array]:  # fmt: skip
    """Backpropagation of the batch-mean error plus L2, per member (hidden units masked)."""
    W1, b1, w2, b2 = params
    Xs, t = view.scaled(Xb, yb)
    hidden, out = _forward(Xs, W1, b1, w2, b2, view.sigmoid)
    delta = (out - t) * weight
    if view.sigmoid:
        delta *= out * (1.0 - out)
    delta /= np.maximum(weight.sum(axis=1), 1.0)[:, None]
    g_w2 = (hidden.transpose(0, 2, 1) @ delta[:, :, None])[..., 0] + view.l2[:, None] * w2
    dh = delta[:, :, None] * w2[:, None, :] * (1.0 - hidden * hidden)
    g_W1 = Xs.transpose(0, 2, 1) @ dh + view.l2[:, None, None] * W1
    return [g_W1 * view.mask[:, None, :], dh.sum(axis=1) * view.mask, g_w2 * view.mask,
            delta.sum(axis=1)]  # fmt: skip
