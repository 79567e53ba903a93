"""The application layer: what every command does, once, for the CLI, the Python API and
any other front end. Each function takes an open :class:`Store` and returns plain data;
front ends parse, call one function, and render.
"""

from typing import TYPE_CHECKING

import lazy_loader

if TYPE_CHECKING:  # the names below, for type checkers; loaded on first use
    from posterlab.service.inspect import failures, list_runs, status, summary
    from posterlab.service.lifecycle import cancel, delete, purge, rename
    from posterlab.service.results import (
        analyze,
        export,
        face_detections,
        report,
        report_page,
        results,
    )
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

# submodules load on first use: a command that needs none of the heavy ones
# (scikit-image, pandas, the analysis) starts without importing them
__getattr__, __dir__, _ = lazy_loader.attach(__name__, submod_attrs={
    "inspect": ["failures", "list_runs", "status", "summary"],
    "lifecycle": ["cancel", "delete", "purge", "rename"],
    "results": ["analyze", "export", "face_detections", "report", "report_page", "results"],
    "runs": ["Enqueued", "Processed", "Retried", "Started", "analyze_now", "default_run_name",
            "enqueue_manifest", "queue_analysis", "retry", "run_manifest"],
    "store": ["Store", "open_store", "upgrade_schema"],
})
