"""CPU milliseconds per poster for decode + preprocess + every feature, step by step.

Runs the very functions the pipeline runs (decode_image, preprocess and the feature
groups of posterlab.imaging.features) on real posters, one thread, and prints a table
of the median time per step and each step's share of the total, then one JSON line.
Target: under 40 ms per poster at the default config.

    .venv/bin/python benchmarks/imaging.py --limit 300
    .venv/bin/python benchmarks/imaging.py --set resize.height=160 --set sift_octaves=4
"""

from __future__ import annotations

import os

# One core, as the target says: keep BLAS/OpenMP pools from spreading work. Must be set
# before numpy is imported.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable, Sequence  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any, TypeVar  # noqa: E402

import numpy as np  # noqa: E402

from posterlab.errors import ImageError  # noqa: E402
from posterlab.imaging import PreprocessConfig, decode_image, feature_version  # noqa: E402
from posterlab.imaging.features import FEATURE_GROUPS  # noqa: E402
from posterlab.imaging.preprocess import preprocess  # noqa: E402

DEFAULT_POSTERS = (Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "posters"
                   / "posters")
TARGET_MS = 40.0
WARMUP = 3  # first calls pay for imports and caches; not a poster's cost
T = TypeVar("T")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Median CPU ms per poster for decode + preprocess + all features, "
                    "with each step's share (one thread).",
        epilog="example: benchmarks/imaging.py --limit 200 --set resize.height=160")
    parser.add_argument("--posters", type=Path, default=DEFAULT_POSTERS,
                        help="folder of *.jpg posters (default: ../shared/data/posters/posters)")
    parser.add_argument("--limit", type=int, default=None,
                        help="use only the first N posters, sorted by name (default: all)")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="KEY=VALUE",
                        help="a PreprocessConfig override, e.g. grey_bins=32 or "
                             "resize.height=160 (VALUE is read as JSON when it parses)")
    return parser.parse_args(argv)


def parse_overrides(pairs: Sequence[str]) -> dict[str, Any]:
    overrides: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep:
            raise SystemExit(f"--set needs KEY=VALUE, got {pair!r}")
        try:
            overrides[key] = json.loads(text)
        except json.JSONDecodeError:
            overrides[key] = text
    return overrides


def timed(times: dict[str, list[float]], step: str, call: Callable[[], T]) -> T:
    start = time.thread_time_ns()
    result = call()
    times.setdefault(step, []).append((time.thread_time_ns() - start) / 1e6)
    return result


def measure(data: bytes, config: PreprocessConfig, times: dict[str, list[float]]) -> None:
    image = timed(times, "decode", lambda: decode_image(data))
    canon = timed(times, "preprocess", lambda: preprocess(image, config))
    for name, group in FEATURE_GROUPS.items():
        timed(times, name, lambda group=group: group(canon, config))


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if not args.posters.is_dir():
        print(f"no posters at {args.posters}; pass --posters DIR", file=sys.stderr)
        return 1
    config = PreprocessConfig.from_mapping(parse_overrides(args.overrides))
    paths = sorted(args.posters.glob("*.jpg"))[: args.limit]
    blobs = [path.read_bytes() for path in paths]  # disk reads are not the imaging cost
    scratch: dict[str, list[float]] = {}
    for data in blobs[:WARMUP]:
        measure(data, config, scratch)
    times: dict[str, list[float]] = {}
    failed = 0
    for data in blobs:
        try:
            measure(data, config, times)
        except ImageError:
            failed += 1
            # keep the steps aligned: drop the partial row of a poster that failed
            size = min(len(v) for v in times.values())
            times = {k: v[:size] for k, v in times.items()}
    steps = {k: np.asarray(v) for k, v in times.items()}
    per_poster = np.sum(list(steps.values()), axis=0)
    grand_total = per_poster.sum()

    print(f"{len(per_poster)} posters from {args.posters} ({failed} failed), "
          f"feature_version {feature_version(config)}")
    print(f"{'step':<12}{'median ms':>11}{'mean ms':>10}{'share':>8}")
    for name, values in steps.items():
        print(f"{name:<12}{np.median(values):>11.2f}{values.mean():>10.2f}"
              f"{values.sum() / grand_total:>8.1%}")
    median = float(np.median(per_poster))
    print(f"{'total':<12}{median:>11.2f}{per_poster.mean():>10.2f}{1:>8.0%}"
          f"   (p90 {np.percentile(per_poster, 90):.2f} ms, target < {TARGET_MS:g} ms)")
    print(json.dumps({
        "benchmark": "imaging",
        "posters": len(per_poster),
        "failed": failed,
        "median_ms": round(median, 3),
        "p90_ms": round(float(np.percentile(per_poster, 90)), 3),
        "target_ms": TARGET_MS,
        "meets_target": median < TARGET_MS,
        "steps": {name: {"median_ms": round(float(np.median(v)), 3),
                         "share": round(float(v.sum() / grand_total), 4)}
                  for name, v in steps.items()},
        "feature_version": feature_version(config),
    }))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
