"""The application layer: what every command does, once, for the CLI, the Python API and
any other front end. Each function takes an open :class:`Store` and returns plain data;
front ends parse, call one function, and render.
"""

from posterlab.service.inspect import failures, list_runs, status, summary
from posterlab.service.lifecycle import cancel, delete, purge, rename
from posterlab.service.results import analyze, export, face_detections, report, report_page, results
from posterlab.service.runs import (
    Enqueued,
    Processed,
    Retried,
    Started,
    analyze_now,
    default_run_name,
    enqueue_manifest,
    queue_analysis,
    retry,
    run_manifest,
)
from posterlab.service.store import Store, open_store, upgrade_schema

__all__ = [
    "Enqueued", "Processed", "Retried", "Started", "Store", "analyze", "analyze_now",
    "cancel", "default_run_name", "delete", "enqueue_manifest", "export", "face_detections",
    "failures",
    "list_runs", "open_store", "purge", "queue_analysis", "rename", "report", "report_page",
    "results", "retry", "run_manifest", "status", "summary", "upgrade_schema",
]
