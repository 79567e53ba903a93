"""The one exception and the one set of timeouts of the harness."""

from __future__ import annotations

# Generous on purpose: the suite runs several test processes on a two-core machine, and a
# worker that imports Celery, numpy and scikit-image while the others are busy can take
# most of a minute to say "ready". A real hang still ends well before pytest's own timeout
# for the long tests, with the process's output in the message.
READY_TIMEOUT = 120.0
"""Seconds a ``posterlab worker`` (or a face API) has to become ready."""
STOP_TIMEOUT = 60.0
"""Seconds a worker has for Celery's warm shutdown before the process group is SIGKILLed."""
CLI_TIMEOUT = 600.0
"""Seconds one ``posterlab`` command may take (enqueue, status, db upgrade, a small run)."""
RUN_TIMEOUT = 3600.0
"""Seconds a whole measured run of a benchmark may take (thousands of posters)."""
REDIS_START_TIMEOUT = 15.0
"""Seconds a private ``redis-server`` has to answer PING."""


class HarnessError(AssertionError):
    """A real process did not do what a test or a benchmark relied on.

    The one exception of :mod:`posterlab.testing`: a worker that exits before it is
    ready, a command that exits non-zero, a ``redis-server`` that does not start. It is
    an ``AssertionError`` because in a test it is a failed expectation about the system
    under test (pytest reports it as a failure with the process's output, exactly as the
    ``assert`` it replaces), and a subclass so that a benchmark can catch it by name.
    """
