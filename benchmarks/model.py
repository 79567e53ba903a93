"""Benchmark the numpy MLP: against scikit-learn's MLPRegressor, and against a per-sample loop.

Both comparisons use the same inputs (scalar features, face count, genre indicators),
the same seeded train/test split and standardised inputs and rating. Part 1 trains our
MLP and MLPRegressor with the same architecture, optimiser (Adam), learning rate, batch
size, L2 penalty and a fixed number of epochs (no early stopping on either side), then
scores both on the test rows. Part 2 trains the same network by plain gradient descent,
once as the course does it (one ``fit_step`` per sample) and once vectorised in
mini-batches, for the same number of epochs.

Examples::

    .venv/bin/python benchmarks/model.py                 # 2,000 synthetic posters
    .venv/bin/python benchmarks/model.py --rows 20000 --epochs 50
    .venv/bin/python benchmarks/model.py --csv export.csv   # a `posterlab export` CSV

Prints a table, then one JSON line with every figure.

BLAS runs single-threaded by default (``--blas-threads``): posterlab trains inside one
worker process per core, and on a busy machine a threaded OpenBLAS makes a 1,600 x 29
matrix product ~200 times slower while its threads wait for cores.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from posterlab.analysis import MLP, design_matrix
from posterlab.analysis.inputs import fit_scaler
from posterlab.analysis.metrics import regression_metrics
from posterlab.analysis.model import split_indices
from posterlab.analysis.synthetic import synthetic_frame


def load(args: argparse.Namespace) -> pd.DataFrame:
    if args.csv is None:
        return synthetic_frame(args.rows, seed=args.seed)
    df = pd.read_csv(args.csv)
    if "status" in df.columns:  # an export lists failed and pending posters too
        df = df[df["status"] == "done"]
    return df


def prepare(df: pd.DataFrame, seed: int) -> dict[str, Any]:
    X = design_matrix(df, histograms=False)
    y = pd.to_numeric(df.loc[X.index, "score"], errors="coerce")
    keep = X.notna().all(axis=1) & y.notna()
    X, y = X[keep].to_numpy(), y[keep].to_numpy(np.float64)
    train, test = split_indices(len(X), test_fraction=0.2, seed=seed)
    xs, ys = fit_scaler(X[train]), fit_scaler(y[train])
    return {
        "X_train": xs.transform(X[train]), "y_train": ys.transform(y[train]),
        "X_test": xs.transform(X[test]), "y_test": y[test], "y_scaler": ys,
        "n_features": X.shape[1], "n_train": len(train), "n_test": len(test),
    }  # fmt: skip


def timed(fn: Any) -> tuple[Any, float]:
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def score(data: dict[str, Any], predicted_scaled: np.ndarray) -> dict[str, float]:
    predicted = data["y_scaler"].inverse_transform(predicted_scaled)
    m = regression_metrics(data["y_test"], predicted)
    return {"r2": m["r2"], "mae": m["mae"]}


def against_sklearn(data: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPRegressor

    ours = MLP((data["n_features"], args.hidden, 1), "tanh", seed=args.seed)
    _, ours_s = timed(lambda: ours.fit(
        data["X_train"], data["y_train"], epochs=args.epochs, batch_size=args.batch_size,
        learning_rate=args.learning_rate, l2=args.l2,
    ))  # fmt: skip
    theirs = MLPRegressor(
        hidden_layer_sizes=(args.hidden,), activation="tanh", solver="adam",
        learning_rate_init=args.learning_rate, batch_size=args.batch_size,
        # sklearn divides its penalty by the batch size; ours is per mean sample error.
        alpha=args.l2 * args.batch_size, max_iter=args.epochs,
        n_iter_no_change=args.epochs + 1, tol=0.0, random_state=args.seed,
    )  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # max_iter is the point here
        _, theirs_s = timed(lambda: theirs.fit(data["X_train"], data["y_train"]))
    return {
        "posterlab": {**score(data, ours.predict(data["X_test"])), "train_s": ours_s},
        "sklearn": {**score(data, theirs.predict(data["X_test"])), "train_s": theirs_s},
        "time_ratio_sklearn_over_posterlab": theirs_s / ours_s,
    }


def against_loop(data: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    X, y = data["X_train"], data["y_train"]
    shape = (data["n_features"], args.hidden, 1)
    looped = MLP(shape, "tanh", seed=args.seed)
    rng = np.random.default_rng(args.seed)

    def course_loop() -> None:
        for _ in range(args.loop_epochs):
            for i in rng.permutation(len(X)):
                looped.fit_step(X[i], y[i : i + 1], args.loop_learning_rate)

    _, loop_s = timed(course_loop)
    batched = MLP(shape, "tanh", seed=args.seed)
    _, batch_s = timed(lambda: batched.fit(
        X, y, epochs=args.loop_epochs, batch_size=args.batch_size, optimizer="sgd",
        momentum=0.0, learning_rate=args.loop_learning_rate * args.batch_size ** 0.5,
    ))  # fmt: skip
    return {
        "per_sample_loop": {**score(data, looped.predict(data["X_test"])), "train_s": loop_s},
        "vectorised": {**score(data, batched.predict(data["X_test"])), "train_s": batch_s},
        "speedup_vectorised_over_loop": loop_s / batch_s,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=2000, help="synthetic posters (default 2000)")
    parser.add_argument("--csv", type=Path, help="use this export CSV instead of synthetic data")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--hidden", type=int, default=16, help="hidden units (default 16)")
    parser.add_argument("--epochs", type=int, default=100, help="epochs, part 1 (default 100)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--learning-rate", type=float, default=0.01, help="Adam, part 1")
    parser.add_argument("--l2", type=float, default=1e-2)
    parser.add_argument("--loop-epochs", type=int, default=10, help="epochs, part 2 (default 10)")
    parser.add_argument("--loop-learning-rate", type=float, default=0.005,
                        help="per-sample SGD step, part 2 (x sqrt(batch) for batches)")  # fmt: skip
    parser.add_argument("--blas-threads", type=int, default=1, help="BLAS threads (default 1)")
    args = parser.parse_args()
    from threadpoolctl import threadpool_limits  # installed with scikit-learn

    data = prepare(load(args), args.seed)
    with threadpool_limits(limits=args.blas_threads, user_api="blas"):
        part1, part2 = against_sklearn(data, args), against_loop(data, args)
    print(f"{data['n_train']} training / {data['n_test']} test rows, {data['n_features']} inputs, "
          f"{args.hidden} hidden units")  # fmt: skip
    print(f"{'model':<34}{'R^2':>8}{'MAE':>8}{'train s':>10}")
    rows = [
        (f"posterlab MLP, Adam, {args.epochs} epochs", part1["posterlab"]),
        (f"sklearn MLPRegressor, {args.epochs} epochs", part1["sklearn"]),
        (f"course loop, {args.loop_epochs} epochs", part2["per_sample_loop"]),
        (f"vectorised SGD, {args.loop_epochs} epochs", part2["vectorised"]),
    ]
    for name, m in rows:
        print(f"{name:<34}{m['r2']:>8.3f}{m['mae']:>8.3f}{m['train_s']:>10.3f}")
    print(f"sklearn / posterlab training time: {part1['time_ratio_sklearn_over_posterlab']:.2f}")
    print(f"per-sample loop / vectorised time: {part2['speedup_vectorised_over_loop']:.1f}")
    print(json.dumps({
        "benchmark": "model", "rows": data["n_train"] + data["n_test"],
        "inputs": data["n_features"], "hidden": args.hidden, "blas_threads": args.blas_threads,
        **part1, **part2,
    }))  # fmt: skip


if __name__ == "__main__":
    main()
