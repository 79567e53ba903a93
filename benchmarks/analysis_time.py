"""Wall time of the end-of-run analysis and report on synthetic rows.

The analysis (``posterlab.analysis.analyze``) runs at the end of every run, and the
report (``write_report``: the plots, report.html and report.md) whenever one is asked
for, so their cost is part of every run's cost. Rows come from
:func:`posterlab.analysis.synthetic.synthetic_frame` (histograms included, as a real
run's frame has them). The analysis uses both cores, as ``posterlab run`` does.

Examples::

    .venv/bin/python benchmarks/analysis_time.py                  # 2,000 and 40,000 rows
    .venv/bin/python benchmarks/analysis_time.py --rows 2000 --repeat 3

Prints one line per size, then one JSON line with every figure.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from posterlab.analysis import analyze, write_report
from posterlab.analysis.synthetic import synthetic_frame


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[2000, 40000])
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    args = parser.parse_args()
    figures: dict[str, float | int | None] = {"load_before": os.getloadavg()[0],
                                              "cpus": os.cpu_count()}
    for rows in args.rows:
        frame = synthetic_frame(rows, seed=1)
        analysis, report = [], []
        for _ in range(args.repeat):
            start = time.perf_counter()
            result = analyze(frame, seed=0, workers=args.workers)
            analysis.append(time.perf_counter() - start)
            with tempfile.TemporaryDirectory() as out:
                start = time.perf_counter()
                write_report(result, frame, Path(out))
                report.append(time.perf_counter() - start)
        figures[f"analyze_s_{rows}"] = round(min(analysis), 2)
        figures[f"report_s_{rows}"] = round(min(report), 2)
        print(f"{rows:>7} rows: analyze {min(analysis):.2f} s, report {min(report):.2f} s "
              f"(best of {args.repeat})", flush=True)
    figures["load_after"] = os.getloadavg()[0]
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
