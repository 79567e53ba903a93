"""Wall time of the end-of-run analysis (``posterlab.analysis.analyze``) on synthetic rows.

The analysis runs at the end of every run, so its cost is part of every run's cost.
Rows come from :func:`posterlab.analysis.synthetic.synthetic_frame` (histograms included,
as a real run's frame has them).

Examples::

    .venv/bin/python benchmarks/analysis_time.py                  # 2,000 and 40,000 rows
    .venv/bin/python benchmarks/analysis_time.py --rows 2000 --repeat 3

Prints one line per size, then one JSON line with every figure.
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import time

from posterlab.analysis import analyze
from posterlab.analysis.synthetic import synthetic_frame


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[2000, 40000])
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    figures = {"load_before": os.getloadavg()[0], "cpus": os.cpu_count()}
    for rows in args.rows:
        frame = synthetic_frame(rows, seed=1)
        times = []
        for _ in range(args.repeat):
            start = time.perf_counter()
            kwargs = {"workers": 2} if "workers" in inspect.signature(analyze).parameters else {}
            analyze(frame, seed=0, **kwargs)
            times.append(time.perf_counter() - start)
        figures[f"analyze_s_{rows}"] = round(min(times), 2)
        print(f"{rows:>7} rows: analyze {min(times):.2f} s (best of {args.repeat})", flush=True)
    figures["load_after"] = os.getloadavg()[0]
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
