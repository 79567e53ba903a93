"""Quality and speed of the local face detector on the shared data.

Measures, for one or more parameter sets of :class:`posterlab.faces.local.LocalParams`:

* precision / recall at IoU >= 0.5 on ``face_boxes`` (43 hand-drawn boxes on 9 photos);
* agreement of the face count with ``face_reference`` (300 posters counted by the
  IMDB 5000 authors' detector, a noisy reference): exact-match rate, within-one rate,
  Spearman rho;
* milliseconds per poster (decode + detect, mean over the 300 posters), wall and CPU
  time: on a shared host the wall time includes waiting for the neighbours.

Prints a table, then one JSON line (a list with one object per parameter set).

    .venv/bin/python benchmarks/faces_quality.py              # the defaults
    .venv/bin/python benchmarks/faces_quality.py --sweep      # every variant of the study
    .venv/bin/python benchmarks/faces_quality.py --upscale 1 --conf 0.5 --nms 1 \
        --min-eye-ratio 0  # raw YuNet

Measured with --sweep on a shared 2-core host (wall ms inflated by neighbours; CPU ms
is the cost on an idle core); "eyes" is min_eye_ratio:

    upscale conf min_face nms eyes  prec  recall exact within1 spearman wall_ms cpu_ms
    1.0     0.50 0        off 0     0.935 1.000  0.553 0.837   0.713     4.9    4.8
    1.5     0.50 0        off 0     0.843 1.000  0.530 0.800   0.730    11.7   10.0
    2.0     0.50 0        off 0     0.843 1.000  0.493 0.777   0.697    22.1   17.1
    2.0     0.50 0        0.3 0     0.843 1.000  0.490 0.783   0.695    19.2   16.9
    1.0     0.85 0        0.3 0     1.000 1.000  0.553 0.797   0.541     4.6    4.5
    1.5     0.85 0        0.3 0     1.000 1.000  0.593 0.880   0.700    12.3   10.0
    2.0     0.70 0        0.3 0     0.977 1.000  0.570 0.840   0.747    24.3   17.2
    2.0     0.80 0        0.3 0     1.000 1.000  0.600 0.870   0.757    18.7   16.9
    2.0     0.85 0        0.3 0     1.000 1.000  0.633 0.893   0.761    18.7   16.7  <- old default
    2.0     0.90 0        0.3 0     1.000 0.860  0.537 0.787   0.546    25.5   17.2
    2.0     0.85 0.05     0.3 0     1.000 1.000  0.637 0.893   0.758    21.3   17.1
    2.0     0.85 0.08     0.3 0     1.000 1.000  0.633 0.870   0.687    17.6   17.0
    2.5     0.85 0        0.3 0     1.000 1.000  0.600 0.880   0.755    29.5   23.5
    2.0     0.85 0        0.3 0.25  1.000 1.000  0.653 0.900   0.774    17.8   17.0
    2.0     0.85 0        0.3 0.30  1.000 1.000  0.667 0.907   0.783    17.9   16.9  <- default
    2.0     0.85 0        0.3 0.35  1.000 0.977  0.667 0.907   0.789    18.8   17.2
    2.0     0.80 0        0.3 0.30  1.000 1.000  0.670 0.880   0.781    17.6   17.4
    1.5     0.80 0        0.3 0.30  1.000 1.000  0.627 0.887   0.752     9.9    9.9
    2.5     0.85 0        0.3 0.30  1.000 1.000  0.640 0.890   0.767    24.3   23.8

The eye-distance requirement (eyes >= 0.3 of the box width) is the one choice that moved
agreement: it drops faces turned past ~45-50 degrees (three-quarter views and profiles:
all 29 faces it removes from the 300 posters at 2x/0.85 are real faces, none a false
positive), which the reference, made with a frontal-face detector, does not count (e.g.
Anne of Green Gables 88727, Rosewater 2752688, The Campaign 1790886: reference 0, two
profiles found without it). Paired bootstrap over posters (1,000 resamples): Spearman
+0.022 over the old default, 90 % interval [+0.007, +0.039]. 0.3 was set a priori
(frontal faces measure ~0.45, 0.33-0.54 on face_boxes) and checked against 0.25-0.35:
0.35 starts losing a hand-drawn face. Side-to-side roll is not a reason to drop a face.

Outside the sweep (same data, scripted from YuNet's raw detections; CPU ms is the sum of
the passes, so every multi-pass variant is over a 25 ms budget):

* mirror test-time augmentation at 2x (image + horizontal flip, detections matched at
  IoU >= 0.5, then NMS 0.3), ~34 ms: union (best score > 0.85) exact 0.640, within-one
  0.893, Spearman 0.768; vote (both views > 0.83 / 0.845) 0.617 / 0.613, 0.900 / 0.907,
  0.758 / 0.753; mean score of both views > 0.83 0.633, 0.893, 0.764. With eyes >= 0.3
  on top: union 0.677, 0.910, 0.786; mean 0.677, 0.917, 0.786 (+0.003 for twice the
  time). YuNet's false positives at 0.85 are few: flips move borderline scores only.
* two scales merged the same way (1.5x + 2.5x, 1.5x + 2x, 2x + 3x, 1.5x + 2x + 2.5x;
  union, vote or mean score, thresholds 0.80-0.865), 27-51 ms: Spearman 0.69-0.765,
  level with the single 2x pass at best (2x + 3x, mean > 0.83); with eyes >= 0.3 on
  top, 0.781-0.784.
* a lower threshold for small faces (0.80 below 20 px at 2x, to reach the crowds the
  reference counts) on top of eyes >= 0.3: Spearman 0.793, within-one 0.900 (alone:
  0.774, 0.887); not adopted: two more parameters for a gain inside the noise.
* yaw from the nose's offset along the eye line (|offset| <= 0.5 eye distance): 0.781,
  0.907, a second measure of the same turn; roll <= 25 degrees: 0.764 alone, nothing
  on top of the eyes; landmarks inside the box: 0.764 (YuNet's almost always are).
* a contrast stretch (1st-99th percentile) or CLAHE before detection at 2x/0.85 (no
  eyes) gave Spearman 0.766 / 0.766, within-one 0.890 / 0.897, for +0-12 ms; padding
  the border by 10 % of the long side lowered Spearman (0.746). No greyscale poster in
  face_reference, so no greyscale handling was measured.

Upscaling alone finds more faces, mostly true ones the reference does not count; it
pays only with a stricter threshold. YuNet scores of real faces cluster at 0.86-0.93,
so 0.90 loses recall abruptly: 0.85 is the highest threshold that keeps recall 1.0 on
face_boxes (yuface keeps scores strictly above it, in whole percent). What remains is
mostly the reference's: of the 28 posters still off by two or more (15 over, 13 under),
the over-counts are frontal faces it missed (She's Gotta Have It 91939: 0 for four large
faces; Barbershop 303714: 0, we count 5 of ~9; The Man in the Iron Mask 120744: 1 for 5;
Cheaper by the Dozen 2 452598: 6 for 12); the under-counts are crowds of 10-25 px faces
or dark, duotone or tiny figures that YuNet scores 0.6-0.85 (As It Is in Heaven 382330:
15, we count 3; Transformers 2109248, Kiss Kiss Bang Bang 373469: 2, we count 0) and a
few with no visible face at all (Cypher 284978: 2).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from collections import defaultdict
from dataclasses import asdict, fields
from pathlib import Path

from scipy.stats import spearmanr

from posterlab.faces.base import FaceBox, iou
from posterlab.faces.local import LocalDetector, LocalParams

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
IOU_MATCH = 0.5

# The study: raw YuNet, then one general choice at a time, then combinations.
SWEEP = [
    LocalParams(upscale=1.0, conf_threshold=0.5, nms_iou=1.0, min_eye_ratio=0.0),  # raw YuNet
    LocalParams(upscale=1.5, conf_threshold=0.5, nms_iou=1.0, min_eye_ratio=0.0),
    LocalParams(upscale=2.0, conf_threshold=0.5, nms_iou=1.0, min_eye_ratio=0.0),
    LocalParams(upscale=2.0, conf_threshold=0.5, nms_iou=0.3, min_eye_ratio=0.0),
    LocalParams(upscale=1.0, conf_threshold=0.85, nms_iou=0.3, min_eye_ratio=0.0),
    LocalParams(upscale=1.5, conf_threshold=0.85, nms_iou=0.3, min_eye_ratio=0.0),
    LocalParams(upscale=2.0, conf_threshold=0.7, nms_iou=0.3, min_eye_ratio=0.0),
    LocalParams(upscale=2.0, conf_threshold=0.8, nms_iou=0.3, min_eye_ratio=0.0),
    LocalParams(upscale=2.0, conf_threshold=0.85, nms_iou=0.3, min_eye_ratio=0.0),  # old default
    LocalParams(upscale=2.0, conf_threshold=0.9, nms_iou=0.3, min_eye_ratio=0.0),
    LocalParams(upscale=2.0, conf_threshold=0.85, min_face=0.05, nms_iou=0.3, min_eye_ratio=0.0),
    LocalParams(upscale=2.0, conf_threshold=0.85, min_face=0.08, nms_iou=0.3, min_eye_ratio=0.0),
    LocalParams(upscale=2.5, conf_threshold=0.85, nms_iou=0.3, min_eye_ratio=0.0),
    # a frontal-face requirement: eye distance / box width (landmarks)
    LocalParams(upscale=2.0, conf_threshold=0.85, nms_iou=0.3, min_eye_ratio=0.25),
    LocalParams(upscale=2.0, conf_threshold=0.85, nms_iou=0.3, min_eye_ratio=0.3),  # default
    LocalParams(upscale=2.0, conf_threshold=0.85, nms_iou=0.3, min_eye_ratio=0.35),
    LocalParams(upscale=2.0, conf_threshold=0.8, nms_iou=0.3, min_eye_ratio=0.3),
    LocalParams(upscale=1.5, conf_threshold=0.8, nms_iou=0.3, min_eye_ratio=0.3),
    LocalParams(upscale=2.5, conf_threshold=0.85, nms_iou=0.3, min_eye_ratio=0.3),
]


def match(pred: list[FaceBox], truth: list[FaceBox]) -> int:
    """True positives: greedy one-to-one matching, best score first, at IoU >= 0.5."""
    free = list(truth)
    hits = 0
    for box in sorted(pred, key=lambda b: -(b.score or 0.0)):
        best = max(free, key=lambda t: iou(box, t), default=None)
        if best is not None and iou(box, best) >= IOU_MATCH:
            free.remove(best)
            hits += 1
    return hits


def boxes_quality(detector: LocalDetector, folder: Path) -> dict[str, float]:
    truth: dict[str, list[FaceBox]] = defaultdict(list)
    with (folder / "face_boxes.csv").open(newline="") as f:
        for row in csv.DictReader(f):
            truth[row["image"]].append(FaceBox(
                int(row["left"]), int(row["top"]), int(row["width"]), int(row["height"])))
    n_pred = n_hit = 0
    for image, boxes in truth.items():
        pred = list(detector.detect((folder / image).read_bytes()).faces)
        n_pred += len(pred)
        n_hit += match(pred, boxes)
    n_true = sum(len(b) for b in truth.values())
    return {"precision": n_hit / n_pred if n_pred else 0.0, "recall": n_hit / n_true}


def reference_agreement(detector: LocalDetector, folder: Path) -> dict[str, float]:
    # the index keeps MovieGenre.csv's latin-1 encoding; only numbers and paths are read
    with (folder / "index.csv").open(newline="", encoding="latin-1") as f:
        rows = list(csv.DictReader(f))
    blobs = [(folder / r["poster_file"]).read_bytes() for r in rows]
    reference = [int(r["facenumber_in_poster"]) for r in rows]
    start, start_cpu = time.perf_counter(), time.process_time()
    counts = [detector.detect(blob).count for blob in blobs]
    elapsed, cpu = time.perf_counter() - start, time.process_time() - start_cpu
    pairs = list(zip(counts, reference, strict=True))
    return {
        "exact": sum(c == r for c, r in pairs) / len(pairs),
        "within_one": sum(abs(c - r) <= 1 for c, r in pairs) / len(pairs),
        "spearman": float(spearmanr(counts, reference).statistic),
        "ms_per_poster": 1000.0 * elapsed / len(blobs),
        # CPU time is what a poster costs on an idle core; wall time depends on neighbours
        "cpu_ms_per_poster": 1000.0 * cpu / len(blobs),
    }


def evaluate(params: LocalParams, data: Path) -> dict[str, object]:
    detector = LocalDetector(params)
    detector.detect((data / "face_boxes" / "2007_007763.jpg").read_bytes())  # warm up
    return {
        "params": asdict(params),
        **boxes_quality(detector, data / "face_boxes"),
        **reference_agreement(detector, data / "face_reference"),
    }


def print_table(results: list[dict[str, object]]) -> None:
    names = [f.name for f in fields(LocalParams)]
    metrics = ["precision", "recall", "exact", "within_one", "spearman", "ms_per_poster",
               "cpu_ms_per_poster"]
    print("  ".join(f"{n:>9.9}" for n in names + metrics))
    for r in results:
        p = r["params"]
        assert isinstance(p, dict)
        cells = [f"{p[n]:>9g}" for n in names] + [f"{r[m]:>9.3f}" for m in metrics]
        print("  ".join(cells))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n\n", 1)[1])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA,
                        help=f"the shared data folder (default {DEFAULT_DATA})")
    parser.add_argument("--sweep", action="store_true", help="measure every variant of the study")
    defaults = LocalParams()
    parser.add_argument("--upscale", type=float, default=defaults.upscale)
    parser.add_argument("--conf", type=float, default=defaults.conf_threshold)
    parser.add_argument("--min-face", type=float, default=defaults.min_face)
    parser.add_argument("--nms", type=float, default=defaults.nms_iou)
    parser.add_argument("--max-side", type=int, default=defaults.max_side)
    parser.add_argument("--min-eye-ratio", type=float, default=defaults.min_eye_ratio)
    args = parser.parse_args(argv)
    if not (args.data / "face_boxes").is_dir() or not (args.data / "face_reference").is_dir():
        print(f"no face_boxes/face_reference under {args.data}; pass --data", file=sys.stderr)
        return 2
    variants = SWEEP if args.sweep else [LocalParams(
        upscale=args.upscale, conf_threshold=args.conf, min_face=args.min_face,
        nms_iou=args.nms, max_side=args.max_side, min_eye_ratio=args.min_eye_ratio)]
    results = [evaluate(p, args.data) for p in variants]
    print_table(results)
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
