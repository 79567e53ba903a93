"""What a run found: its results as a DataFrame or a file, its analysis, its report."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from posterlab.errors import InputError
from posterlab.service.runs import analyze_now
from posterlab.service.store import Store
from posterlab.stages import AnalysisState
from posterlab.storage import queries, runs
from posterlab.storage.export import iter_results, results_frame, write_export

if TYPE_CHECKING:
    import pandas as pd

    from posterlab.analysis.analyze import AnalysisOptions


def results(store: Store, run_name: str | None = None, *, vectors: bool = True
            ) -> pd.DataFrame:
    """One row per movie of the run, the columns of ``posterlab export``."""
    with store.factory() as session:
        return results_frame(session, runs.find_run(session, run_name), vectors=vectors)


def face_detections(store: Store, run_name: str | None = None) -> pd.DataFrame:
    """Every face detection of the run, one row each: the columns of
    :data:`~posterlab.storage.queries.DETECTION_COLUMNS` (``imdb_id, provider, score, x, y,
    w, h, image_height``). Counts at another threshold or size are a ``groupby`` away."""
    import pandas as pd

    with store.factory() as session:
        rows = queries.detection_rows(session, runs.find_run(session, run_name))
    frame = pd.DataFrame.from_records(rows, columns=list(queries.DETECTION_COLUMNS))
    frame["score"] = frame["score"].astype("float64")
    for column in ("x", "y", "w", "h", "image_height"):
        frame[column] = frame[column].astype("Int64")
    return frame


def export(store: Store, run_name: str | None, fmt: str, out: str | Path | None, *,
           columns: Sequence[str] | None = None, vectors: bool = False,
           raw: bool = False) -> int:
    """Write the run's rows as csv, parquet or json (streamed); the number of rows.

    CSV cells that a spreadsheet would take for a formula get a leading quote unless
    ``raw``.
    """
    if out is not None:  # a missing folder is made, as `report --out` does
        folder = Path(out).expanduser().resolve().parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InputError(f"cannot write {out}: the folder {folder} cannot be made "
                             f"({exc.strerror}); choose another --out") from None
    with store.factory() as session:
        run = runs.find_run(session, run_name)
        rows = iter_results(session, run, vectors=vectors or fmt in ("parquet", "json"),
                            columns=list(columns) if columns else None)
        return write_export(rows, fmt, out, raw=raw)


def analyze(store: Store, run_name: str | None = None, *, stored: bool = False,
            options: AnalysisOptions | None = None) -> dict[str, Any]:
    """Analyze the run again and store the result (or, with ``stored``, the stored one)."""
    run = store.find_run(run_name)
    if stored and run.analysis_state == AnalysisState.DONE and run.analysis is not None:
        return dict(run.analysis)
    return analyze_now(store, run.id, options)


def report(store: Store, run_name: str | None, out_dir: Path,
           options: AnalysisOptions | None = None) -> Path:
    """Write report.html (self-contained), report.md and the plots; the HTML file."""
    from posterlab.analysis import write_report

    name, done, summary, result = _report_inputs(store, run_name, options)
    out_dir.mkdir(parents=True, exist_ok=True)
    return write_report(result, done, out_dir, title=f"posterlab report: run {name}",
                        run_summary=summary)


def report_page(store: Store, run_name: str | None = None) -> str:
    """The run's report.html, as a string: the same figures and tables, no file."""
    from posterlab.analysis import report_html

    name, done, summary, result = _report_inputs(store, run_name, None)
    return report_html(result, done, title=f"posterlab report: run {name}",
                       run_summary=summary)


def _report_inputs(store: Store, run_name: str | None, options: AnalysisOptions | None
                   ) -> tuple[str, pd.DataFrame, dict[str, Any], Any]:
    """The run's name, its done posters as a frame, the summary the report opens with,
    and the analysis of those posters."""
    import dataclasses

    from posterlab.analysis.analyze import AnalysisOptions
    from posterlab.analysis.analyze import analyze as analyze_frame
    from posterlab.pipeline.analysis import analysis_frame, analysis_workers, run_provenance

    with store.factory() as session:
        run = runs.find_run(session, run_name)
        done = analysis_frame(session, run, histograms=bool(options and options.histograms))
        prov = run_provenance(run)
        summary = {"run": run.name, "total": run.total,
                   "counts": queries.status_counts(session, run.id),
                   "failures": [{"code": g["code"], "count": g["count"]}
                                for g in queries.failure_groups(session, run.id, examples=0)]}
    options = options or AnalysisOptions(workers=analysis_workers())
    result = analyze_frame(done, dataclasses.replace(options), provenance=prov)
    return run.name, done, summary, result
