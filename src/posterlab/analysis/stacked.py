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

    def predict(self, X: Array, members: Sequence[int] | Array | None = None) -> Array:
        """Outputs of the chosen members on raw rows ``X``: shape (len(members), n)."""
        idx = np.arange(len(self.b2)) if members is None else np.asarray(members, np.int64)
        view = _View(self.x_offset[idx], self.x_scale[idx], self.y_offset[idx],
                     self.y_scale[idx], np.ones(0), np.ones(0), self.sigmoid)  # fmt: skip
        params = [self.W1[idx], self.b1[idx], self.w2[idx], self.b2[idx]]
        X = np.asarray(X, np.float32)
        out = np.concatenate([_outputs(view, params, X[i : i + _CHUNK])[1]
                              for i in range(0, len(X), _CHUNK)]) if len(X) else \
            np.zeros((0, len(idx)))  # fmt: skip
        return (out * self.y_scale[idx] + self.y_offset[idx]).T.astype(np.float64)

    def fitted(self, members: Sequence[int] | Array, inputs: Sequence[str],
               plan: dict[str, object]) -> FittedModel:  # fmt: skip
        """The chosen members (one shared scaling) as a storable :class:`FittedModel`."""
        first = int(members[0])
        nets = tuple(self._mlp(int(m)) for m in members)
        f64 = np.float64
        x_scaler = Scaler(self.x_offset[first].astype(f64), self.x_scale[first].astype(f64))
        y_scaler = Scaler(self.y_offset[first : first + 1].astype(f64),
                          self.y_scale[first : first + 1].astype(f64))  # fmt: skip
        return FittedModel(nets, x_scaler, y_scaler, plan=plan).with_inputs(inputs)

    def _mlp(self, m: int) -> MLP:
        """Member ``m`` as a plain network (float64) on the member's scaled inputs."""
        h = int(self.hidden[m])
        output = "sigmoid" if self.sigmoid else "identity"
        net = MLP((self.W1.shape[1], h, 1), "tanh", output)
        f64 = np.float64
        net.weights = [self.W1[m, :, :h].astype(f64), self.w2[m, :h, None].astype(f64)]
        net.biases = [self.b1[m, :h].astype(f64), self.b2[m : m + 1].astype(f64)]
        return net


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
    # float32: these small products are memory-bound, and single precision is ~3x faster
    # here at no cost to what an early-stopped network of a few units can learn.
    X, y = np.asarray(X, np.float32), np.asarray(y, np.float32)
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
        f32 = np.float32
        return cls([W1.astype(f32), np.zeros((M, H), f32), w2.astype(f32), np.zeros(M, f32)],
                   mask.astype(f32), xo.astype(f32), np.where(xs > 0, xs, 1.0).astype(f32),
                   yo.astype(f32), ys.astype(f32), np.array([s.hidden for s in specs]),
                   np.array([s.l2 for s in specs], f32), not regression)  # fmt: skip

    def stack(self, best: list[Array], best_error: Array, epochs: Array) -> Stack:
        W1, b1, w2, b2 = best
        return Stack(W1, b1, w2, b2, self.x_offset, self.x_scale, self.y_offset,
                     self.y_scale, self.hidden, best_error, epochs, self.sigmoid)  # fmt: skip


class _Loop:
    """Epochs of shared mini-batches, Adam, and per-member early stopping.

    Every step draws one batch of rows from all rows; each member learns from those of
    its own training rows (a 0/1 weight), so the first layer of all members is one
    matrix product ``X_batch @ W1`` of shape (batch, members x hidden). The batch is
    widened so that a member sees about ``plan.batch_size`` of its rows per step.
    Members whose patience ran out leave the computation.
    """

    def __init__(self, state: _State, X: Array, y: Array, specs: Sequence[MemberSpec],
                 plan: TrainingPlan) -> None:  # fmt: skip
        self.state, self.X, self.y, self.plan = state, X, y, plan
        n, M = len(X), len(specs)
        self.in_train = np.zeros((n, M), np.float32)
        self.in_valid = np.zeros((n, M), np.float32)
        for m, spec in enumerate(specs):
            self.in_train[spec.train, m] = 1.0
            self.in_valid[spec.valid, m] = 1.0
        self.valid_rows = np.flatnonzero(self.in_valid.any(axis=1))
        share = float(self.in_train.mean()) or 1.0
        self.batch = max(plan.batch_size, round(plan.batch_size / share))
        self.rng = np.random.default_rng([s.seed for s in specs[:8]])
        self.moments = [[np.zeros_like(p) for p in state.params] for _ in range(2)]
        self.t = 0
        self.active = np.ones(M, bool)
        self.best = [p.copy() for p in state.params]
        self.best_error = np.full(M, np.inf)
        self.best_epoch = np.zeros(M, np.int64)
        self.epochs = np.zeros(M, np.int64)
        self.max_epochs = max(1, min(plan.epochs, -(-MAX_STEPS // -(-n // self.batch))))

    def run(self) -> None:
        for epoch in range(1, self.max_epochs + 1):
            act = np.flatnonzero(self.active)
            self._epoch(act)
            self.epochs[act] += 1
            self._check_validation(epoch, act)
            if not self.active.any():
                break

    def _epoch(self, act: Array) -> None:
        """One shuffled pass over all rows, in shared batches."""
        order = self.rng.permutation(len(self.X))
        view = _View.of(self.state, act)
        params = [p[act] for p in self.state.params]
        moments = [[mo[act] for mo in group] for group in self.moments]
        weights = self.in_train[:, act]
        for start in range(0, len(order), self.batch):
            rows = order[start : start + self.batch]
            grads = _gradients(view, params, self.X[rows], self.y[rows], weights[rows])
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
        total, count = np.zeros(len(act)), np.zeros(len(act))
        for start in range(0, len(self.valid_rows), _CHUNK):
            rows = self.valid_rows[start : start + _CHUNK]
            out = _outputs(view, params, self.X[rows])[1]
            t = view.targets(self.y[rows])
            mask = self.in_valid[rows][:, act]
            total += 0.5 * ((out - t) ** 2 * mask).sum(axis=0)
            count += mask.sum(axis=0)
        err = total / np.maximum(count, 1.0)
        better = err < self.best_error[act]
        gained = act[better]
        self.best_error[gained], self.best_epoch[gained] = err[better], epoch
        for best, p in zip(self.best, params, strict=True):
            best[gained] = p[better]
        self.active[act[epoch - self.best_epoch[act] >= self.plan.patience]] = False


MAX_STEPS = 3000  # per member: ~150 epochs of 1,280 rows; 40,000 rows stop after ~8 epochs
_CHUNK = 4096  # rows per block when scoring validation rows: bounds memory on any n


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

    def targets(self, yb: Array) -> Array:
        """Targets (B,) on each member's scale: (B, M)."""
        return (yb[:, None] - self.y_offset[None, :]) / self.y_scale[None, :]


def _outputs(view: _View, params: list[Array], Xb: Array) -> tuple[Array, Array]:
    """Hidden outputs (B, M, H) and outputs (B, M) of raw rows (B, p), all members at once.

    Each member's input scaling is folded into its first layer:
    ``((x - o) / s) @ W1 + b1 = x @ (W1 / s) + (b1 - (o / s) @ W1)``.
    """
    W1, b1, w2, b2 = params
    M, p, H = W1.shape
    W = W1 / view.x_scale[:, :, None]
    bias = b1 - np.einsum("mp,mph->mh", view.x_offset / view.x_scale, W1)
    a = Xb @ W.transpose(1, 0, 2).reshape(p, M * H)
    hidden = np.tanh(a.reshape(len(Xb), M, H) + bias[None])
    out = np.einsum("bmh,mh->bm", hidden, w2) + b2[None, :]
    if view.sigmoid:
        out = 1.0 / (1.0 + np.exp(-np.clip(out, -500.0, 500.0)))
    return hidden, out


def _gradients(view: _View, params: list[Array], Xb: Array, yb: Array,
               weight: Array) -> list[Array]:  # fmt: skip
    """Backpropagation of each member's batch-mean error plus L2 (hidden units masked)."""
    W1, _, w2, _ = params
    M, p, H = W1.shape
    hidden, out = _outputs(view, params, Xb)
    delta = (out - view.targets(yb)) * weight  # (B, M)
    if view.sigmoid:
        delta *= out * (1.0 - out)
    delta /= np.maximum(weight.sum(axis=0), 1.0)[None, :]
    g_w2 = np.einsum("bmh,bm->mh", hidden, delta) + view.l2[:, None] * w2
    dh = delta[:, :, None] * w2[None, :, :] * (1.0 - hidden * hidden)  # (B, M, H)
    g_b1 = dh.sum(axis=0)
    raw = (Xb.T @ dh.reshape(len(Xb), M * H)).reshape(p, M, H).transpose(1, 0, 2)
    g_W1 = (raw - view.x_offset[:, :, None] * g_b1[:, None, :]) / view.x_scale[:, :, None]
    g_W1 += view.l2[:, None, None] * W1
    return [g_W1 * view.mask[:, None, :], g_b1 * view.mask, g_w2 * view.mask,
            delta.sum(axis=0)]  # fmt: skip
