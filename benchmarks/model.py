"""Benchmark the numpy MLP: against scikit-learn's MLPRegressor, and against a per-sample loop.

Both comparisons use the same inputs (scalar features, face count, genre indicators),
the same seeded train/test split and standardised inputs and rating. Part 1 trains our
MLP and MLPRegressor with the same architecture, optimiser (Adam), learning rate, batch
size, L2 penalty and a fixed number of epochs (no early stopping on either side), then
scores both on the test rows. Part 2 trains the same network by plain gradient descent,
once as the course does it (one ``fit_step`` per sample) and once vectorised in
mini-batches, for the same number of epochs.

With ``--real`` (the 2,000 posters of /work/shared/data/posters) or ``--export FILE`` (a
``posterlab export`` CSV or parquet) it instead scores the analysis as it runs -- the
MLP exactly as :func:`posterlab.analysis.evaluate` trains it (hidden size by
cross-validation, an ensemble of early-stopped networks) -- against the mean and least-
squares baselines, scikit-learn's ``MLPRegressor`` and ``HistGradientBoostingRegressor``,
by k-fold cross-validation on the same folds and inputs, with and without genre
indicators; plus the face-count/rating correlation with its bootstrap interval. For
``--real`` the features are computed here (``analyze_bytes`` and the local face detector)
and cached in /tmp/posterlab-real-features.parquet, so reruns take seconds.

Examples::

    .venv/bin/python benchmarks/model.py                 # 2,000 synthetic posters
    .venv/bin/python benchmarks/model.py --rows 20000 --epochs 50
    .venv/bin/python benchmarks/model.py --csv export.csv   # a `posterlab export` CSV
    .venv/bin/python benchmarks/model.py --real          # the real posters, 5-fold
    .venv/bin/python benchmarks/model.py --export run.parquet --folds 10

Prints a table, then one JSON line with every figure.

BLAS runs single-threaded by default (``--blas-threads``): posterlab trains inside one
worker process per core, and on a busy machine a threaded OpenBLAS makes a 1,600 x 29
matrix product ~200 times slower while its threads wait for cores.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from posterlab.analysis import (
    MLP,
    TrainingOptions,
    TrainingPlan,
    correlate,
    design_matrix,
    evaluate,
)
from posterlab.analysis.evaluation import ols_fit, ols_predict, regression_metrics, split_indices
from posterlab.analysis.inputs import fit_scaler
from posterlab.analysis.synthetic import synthetic_frame

POSTERS = Path("/work/shared/data/posters/index.csv")
CACHE = Path("/tmp/posterlab-real-features.parquet")


def real_frame(index: Path = POSTERS, cache: Path = CACHE) -> tuple[pd.DataFrame, str]:
    """Features and face counts of every poster of ``index``, cached; and how faces were counted."""
    if cache.exists():
        df = pd.read_parquet(cache)
        return df, str(df.attrs.get("faces", "as cached in " + str(cache)))
    from posterlab.imaging import analyze_bytes

    try:
        from posterlab.faces.local import LocalDetector

        detector: Any = LocalDetector()
        faces = "posterlab.faces.local.LocalDetector"
    except ImportError as exc:
        detector, faces = None, f"face_count = 0: posterlab.faces.local not importable ({exc})"
    manifest = pd.read_csv(index, encoding="latin-1")
    rows, failed, start = [], 0, time.perf_counter()
    for i, rec in enumerate(manifest.to_dict("records")):
        data = (index.parent / rec["poster_file"]).read_bytes()
        try:
            scalars = analyze_bytes(data).scalars
            count = detector.detect(data).count if detector is not None else 0
        except Exception as exc:  # a poster that cannot be analysed is counted, not fatal
            failed += 1
            print(f"  {rec['imdbId']}: {type(exc).__name__}: {exc}", file=sys.stderr)
            continue
        rows.append({"imdb_id": str(rec["imdbId"]), "score": rec["IMDB Score"],
                     "genres": rec["Genre"], "face_count": count, **scalars})  # fmt: skip
        if (i + 1) % 250 == 0:
            print(f"  features of {i + 1}/{len(manifest)} posters, "
                  f"{time.perf_counter() - start:.0f} s", file=sys.stderr)  # fmt: skip
    df = pd.DataFrame(rows)
    df.attrs.update(faces=faces, failed=failed)
    df.to_parquet(cache)
    return df, faces


def load_export(path: Path) -> pd.DataFrame:
    df = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    if "status" in df.columns:  # an export lists failed and pending posters too
        df = df[df["status"] == "done"]
    return df.reset_index(drop=True)


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
    _, ours_s = timed(lambda: ours.fit(data["X_train"], data["y_train"], TrainingOptions(
        epochs=args.epochs, batch_size=args.batch_size, learning_rate=args.learning_rate,
        l2=args.l2,
    )))  # fmt: skip
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
    _, batch_s = timed(lambda: batched.fit(X, y, TrainingOptions(
        epochs=args.loop_epochs, batch_size=args.batch_size, optimizer="sgd",
        momentum=0.0, learning_rate=args.loop_learning_rate * args.batch_size ** 0.5,
    )))  # fmt: skip
    return {
        "per_sample_loop": {**score(data, looped.predict(data["X_test"])), "train_s": loop_s},
        "vectorised": {**score(data, batched.predict(data["X_test"])), "train_s": batch_s},
        "speedup_vectorised_over_loop": loop_s / batch_s,
    }


def _sklearn_models(seed: int) -> dict[str, Any]:
    from sklearn.ensemble import HistGradientBoostingRegressor
    from sklearn.neural_network import MLPRegressor

    return {
        "MLPRegressor(32)": MLPRegressor(hidden_layer_sizes=(32,), max_iter=200,
                                         random_state=seed),
        "HistGradientBoosting": HistGradientBoostingRegressor(random_state=seed),
    }  # fmt: skip


def one_fold(
    X: np.ndarray, y: np.ndarray, train: np.ndarray, test: np.ndarray, seed: int
) -> dict[str, tuple[np.ndarray, float]]:
    """Test predictions and training seconds of every model on one fold."""
    from sklearn.exceptions import ConvergenceWarning

    ev, mlp_s = timed(lambda: evaluate(X, y, seed=seed, plan=TrainingPlan(), split=(train, test)))
    xs, ys = fit_scaler(X[train]), fit_scaler(y[train])
    X_train, X_test, y_train = xs.transform(X[train]), xs.transform(X[test]), y[train]
    coef, ols_s = timed(lambda: ols_fit(X_train, y_train))
    out = {
        "posterlab MLP": (ev.predicted, mlp_s),
        "least squares": (ols_predict(coef, X_test), ols_s),
        "mean baseline": (np.full(len(test), y_train.mean()), 0.0),
    }
    for name, model in _sklearn_models(seed).items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)  # 200 epochs, as configured
            _, seconds = timed(lambda m=model: m.fit(X_train, ys.transform(y_train)))
        out[name] = (ys.inverse_transform(model.predict(X_test)), seconds)
    return out


def kfold(X: np.ndarray, y: np.ndarray, args: argparse.Namespace) -> dict[str, Any]:
    """Every model on the same ``args.folds`` folds: mean test R^2, MAE, training seconds."""
    folds = np.array_split(np.random.default_rng(args.seed).permutation(len(y)), args.folds)
    scores: dict[str, dict[str, list[float]]] = {}
    for k, test in enumerate(folds):
        train = np.concatenate([f for j, f in enumerate(folds) if j != k])
        for name, (predicted, seconds) in one_fold(X, y, train, test, args.seed).items():
            m = regression_metrics(y[test], predicted)
            entry = scores.setdefault(name, {"r2": [], "mae": [], "train_s": []})
            entry["r2"].append(m["r2"])
            entry["mae"].append(m["mae"])
            entry["train_s"].append(seconds)
    out: dict[str, Any] = {
        name: {"r2": float(np.mean(v["r2"])), "r2_sd": float(np.std(v["r2"])),
               "mae": float(np.mean(v["mae"])), "train_s": float(np.mean(v["train_s"])),
               "r2_folds": [round(r, 4) for r in v["r2"]]}
        for name, v in scores.items()
    }  # fmt: skip
    mlp = np.array(scores["posterlab MLP"]["r2"])
    ols, mean = np.array(scores["least squares"]["r2"]), np.array(scores["mean baseline"]["r2"])
    out["time_ratio_posterlab_over_mlpregressor"] = (
        out["posterlab MLP"]["train_s"] / out["MLPRegressor(32)"]["train_s"]
    )
    out["mlp_folds_at_least_ols"] = int(np.sum(mlp >= ols))
    out["mlp_folds_at_least_mean"] = int(np.sum(mlp >= mean))
    return out


def real(args: argparse.Namespace) -> None:
    """The ``--real`` / ``--export`` comparison."""
    from threadpoolctl import threadpool_limits

    if args.export is not None:
        df, faces = load_export(args.export), f"from the export {args.export}"
    else:
        df, faces = real_frame()
    df = df[pd.to_numeric(df["score"], errors="coerce").notna()].reset_index(drop=True)
    y = df["score"].to_numpy(np.float64)
    results: dict[str, Any] = {}
    with threadpool_limits(limits=args.blas_threads, user_api="blas"):
        for label, genres in (("poster_only", False), ("with_genre", True)):
            X = design_matrix(df, histograms=False, genres=genres)
            keep = X.notna().all(axis=1).to_numpy()
            results[label] = {"inputs": X.shape[1], "rows": int(keep.sum()),
                              **kfold(X.to_numpy()[keep], y[keep], args)}  # fmt: skip
        face = correlate(df, features=["face_count"], seed=args.seed).iloc[0]
    plan = TrainingPlan()
    print(f"{len(df)} rated posters; faces: {faces}; {args.folds}-fold CV, seed {args.seed}, "
          f"BLAS threads {args.blas_threads}")  # fmt: skip
    print(
        f"posterlab MLP train s: all of evaluate() -- hidden size in {plan.hidden_sizes} by "
        f"{plan.folds}-fold CV ({len(plan.hidden_sizes) * plan.folds} networks), then "
        f"{plan.ensemble} averaged networks; MLPRegressor(32): one network, 200 epochs"
    )
    for label, res in results.items():
        print(f"\n{label.replace('_', ' ')} ({res['inputs']} inputs, {res['rows']} rows)")
        print(f"{'model':<24}{'R^2':>8}{'+-sd':>7}{'MAE':>8}{'train s':>10}")
        for name in ("posterlab MLP", "least squares", "mean baseline", "MLPRegressor(32)",
                     "HistGradientBoosting"):  # fmt: skip
            m = res[name]
            print(f"{name:<24}{m['r2']:>8.3f}{m['r2_sd']:>7.3f}{m['mae']:>8.3f}"
                  f"{m['train_s']:>10.3f}")  # fmt: skip
        print(f"posterlab / MLPRegressor training time: "
              f"{res['time_ratio_posterlab_over_mlpregressor']:.2f}; MLP >= least squares in "
              f"{res['mlp_folds_at_least_ols']}/{args.folds} folds, >= mean baseline in "
              f"{res['mlp_folds_at_least_mean']}/{args.folds}")  # fmt: skip
    print(f"\nface_count vs rating: Pearson r = {face['pearson_r']:.3f}, 95% bootstrap CI "
          f"[{face['ci_low']:.3f}, {face['ci_high']:.3f}] (Fisher [{face['fisher_low']:.3f}, "
          f"{face['fisher_high']:.3f}]), p = {face['pearson_p']:.3g}, n = {face['n']}")  # fmt: skip
    print(json.dumps({
        "benchmark": "model_real", "rows": len(df), "faces": faces, "folds": args.folds,
        "seed": args.seed, "blas_threads": args.blas_threads, **results,
        "face_count_correlation": {"n": int(face["n"]), **{
            k: float(face[k]) for k in ("pearson_r", "pearson_p", "ci_low", "ci_high",
                                        "fisher_low", "fisher_high")}},
    }, default=float))  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=2000, help="synthetic posters (default 2000)")
    parser.add_argument("--csv", type=Path, help="use this export CSV instead of synthetic data")
    parser.add_argument(
        "--real", action="store_true", help=f"k-fold comparison on the posters of {POSTERS}"
    )
    parser.add_argument(
        "--export", type=Path, help="k-fold comparison on a posterlab export (CSV or parquet)"
    )
    parser.add_argument("--folds", type=int, default=5, help="folds for --real (default 5)")
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
    if args.real or args.export is not None:
        real(args)
        return
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
