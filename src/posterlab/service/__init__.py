"""The application layer: what every command does, once, for the CLI, the Python API and
any other front end. Each function takes an open :class:`Store` and returns plain data;
front ends parse, call one function, and render.
"""

from posterlab.service.inspect import failures, list_runs, status, summary
from posterlab.service.lifecycle import cancel, delete, purge, rename
from posterlab.service.results import analyze, export, report, results
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
    "Enqueued", "Processed", "Retried", "Started", "Store", "analyze", "cancel",
    "default_run_name", "delete", "enqueue_manifest", "export", "failures", "list_runs",
    "open_store", "purge", "rename", "report", "results", "retry", "run_manifest", "status",
    "summary", "upgrade_schema",
]
