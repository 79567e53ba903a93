"""The application layer: what every command does, once, for the CLI, the Python API and
any other front end. Each function takes an open :class:`Store` and returns plain data;
front ends parse, call one function, and render.
"""

from posterlab.service.inspect import failures, list_runs, status
from posterlab.service.results import analyze, export, face_detections, report, results
from posterlab.service.runs import (
    Enqueued,
    Processed,
    Retried,
    Started,
    default_run_name,
    enqueue_manifest,
    retry,
    run_manifest,
)
from posterlab.service.store import Store, open_store, upgrade_schema

__all__ = [
    "Enqueued", "Processed", "Retried", "Started", "Store", "analyze", "default_run_name",
    "enqueue_manifest", "export", "face_detections", "failures", "list_runs", "open_store",
    "report", "results", "retry", "run_manifest", "status", "upgrade_schema",
]
