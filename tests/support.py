"""What only the tests need beyond :mod:`posterlab.testing`: the rule for missing services.

Workers, the CLI, environments, schemas, Redis servers, manifests and database reads
are the harness's, shared with the benchmarks: import them from ``posterlab.testing``.
"""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def unavailable(what: str, why: str) -> NoReturn:
    """Skip a test whose service is missing on a laptop; fail it under CI (``CI`` set).

    So a broken CI machine can never pass by skipping.
    """
    if os.environ.get("CI"):
        pytest.fail(f"{what} is required in CI but unavailable: {why}")
    pytest.skip(f"{what} unavailable: {why}")
