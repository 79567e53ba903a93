"""The harness of the tests and the benchmarks: real processes, real services, real data.

Both ``tests/`` and ``benchmarks/`` import it, so a worker is started, waited for and
stopped one way, with one set of timeouts (:data:`READY_TIMEOUT`, :data:`STOP_TIMEOUT`,
:data:`CLI_TIMEOUT`, :data:`RUN_TIMEOUT`) and one exception, :class:`HarnessError` (an
``AssertionError``: in a test, a process that does not do what the test relied on is a
failed expectation, reported with the process's output; a benchmark catches it by name).

- :mod:`~posterlab.testing.processes`: :func:`env_for`, :func:`run_cli` and
  :func:`run_cli_cpu` (the real ``python -m posterlab``, with and without CPU accounting),
  :class:`WorkerProcess` (``posterlab worker`` in its own process group), /proc readers.
- :mod:`~posterlab.testing.services`: :class:`RedisServer` (a private ``redis-server`` on
  a free port), :func:`pg_schema` (a PostgreSQL schema of its own), :func:`free_port`.
- :mod:`~posterlab.testing.web`: :class:`DashboardServer` (``posterlab dashboard`` on a
  free port) and :func:`chromium_path` (the system's browser for browser tests).
- :mod:`~posterlab.testing.data`: :func:`sample_manifest` (small manifests cut from
  ``../shared/data``), :func:`rows` and :func:`poster_counts` (a run read back).
- :mod:`~posterlab.testing.memory`: :class:`PeakRss` (peak RSS of a process tree) and
  :class:`Reaper` (SIGKILL a process that grows past a size, as the OOM killer would).

Importing it imports only the standard library: SQLAlchemy and redis are imported by
the functions that need them, and nothing in posterlab imports this package.
"""

from posterlab.testing._base import (
    CLI_TIMEOUT,
    READY_TIMEOUT,
    REDIS_START_TIMEOUT,
    RUN_TIMEOUT,
    STOP_TIMEOUT,
    HarnessError,
)
from posterlab.testing.data import (
    count_csv_rows,
    dispose_engines,
    fresh_dir,
    manifest_posters,
    poster_counts,
    rows,
    sample_manifest,
)
from posterlab.testing.memory import PeakRss, Reaper, status_kb
from posterlab.testing.processes import (
    WorkerProcess,
    children_of,
    cpu_seconds,
    descendants_of,
    env_for,
    pool_children,
    posterlab_cmd,
    run_cli,
    run_cli_cpu,
)
from posterlab.testing.services import (
    SHARED_REDIS,
    RedisServer,
    flush_redis,
    free_port,
    pg_schema,
    redis_server_installed,
)
from posterlab.testing.web import DashboardServer, chromium_path

__all__ = [
    "CLI_TIMEOUT",
    "READY_TIMEOUT",
    "REDIS_START_TIMEOUT",
    "RUN_TIMEOUT",
    "SHARED_REDIS",
    "STOP_TIMEOUT",
    "DashboardServer",
    "HarnessError",
    "PeakRss",
    "Reaper",
    "RedisServer",
    "WorkerProcess",
    "children_of",
    "chromium_path",
    "count_csv_rows",
    "cpu_seconds",
    "descendants_of",
    "dispose_engines",
    "env_for",
    "flush_redis",
    "free_port",
    "fresh_dir",
    "manifest_posters",
    "pg_schema",
    "pool_children",
    "poster_counts",
    "posterlab_cmd",
    "redis_server_installed",
    "rows",
    "run_cli",
    "run_cli_cpu",
    "sample_manifest",
    "status_kb",
]
