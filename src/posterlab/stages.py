"""The stages a poster goes through and the states it ends in: the one home of their names.

A poster moves ``fetch -> extract -> faces -> done``, or ends ``failed`` at any stage, or
``cancelled`` when its run is cancelled before it finished.
Queue names, task names, the order of the stages, retry budgets and the shape of a
message all derive from :class:`Stage`; nothing else spells a stage's name.

A message of any stage carries a list of poster ids (``args=[ids]``) and the attempt
(``kwargs={"attempt": n}``): several posters per message wherever that saves round trips.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any


class Stage(StrEnum):
    """A stage of work on one poster; its value is the poster's ``status`` while pending."""

    FETCH = "fetch"
    EXTRACT = "extract"
    FACES = "faces"

    @property
    def next(self) -> Stage | None:
        """The stage after this one, or None when the poster is then done."""
        order = list(Stage)
        index = order.index(self) + 1
        return order[index] if index < len(order) else None

    @property
    def queue(self) -> str:
        """The broker queue of this stage's messages (one per stage, scaled alone)."""
        return self.value

    @property
    def task_name(self) -> str:
        return f"posterlab.{self.value}"

    @property
    def max_attempts(self) -> int:
        """Attempts at this stage before a transient error becomes a failure."""
        return _MAX_ATTEMPTS[self]

    @property
    def ids_per_message(self) -> int:
        """Posters carried by one message of this stage."""
        return _IDS_PER_MESSAGE[self]

    def message(self, poster_ids: list[int], attempt: int = 1) -> tuple[list[Any], dict[str, int]]:
        """The (args, kwargs) of this stage's task for ``poster_ids``."""
        return [list(poster_ids)], {"attempt": attempt}


class End(StrEnum):
    """The states a poster ends in."""

    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"  # its run was cancelled (``posterlab cancel``) while it waited


class AnalysisState(StrEnum):
    """Where a run's final analysis stands."""

    NONE = "none"        # the run has pending posters, or nobody has claimed it yet
    QUEUED = "queued"    # claimed, its message sent (exactly once per run end)
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    SKIPPED = "skipped"  # the run was cancelled with ``--no-analysis``

    @property
    def settled(self) -> bool:
        """Whether nothing more will happen to the analysis unless somebody asks."""
        return self not in (AnalysisState.QUEUED, AnalysisState.RUNNING)


# per stage, transient errors only (a paid face API may answer 5xx now and then)
_MAX_ATTEMPTS = {Stage.FETCH: 4, Stage.EXTRACT: 3, Stage.FACES: 8}
# fetch: 1M posters -> ~4k messages from enqueue (~0.6 ms each to publish); the later stages
# get the posters one fetch group moved on, a few per message so both cores stay busy
_IDS_PER_MESSAGE = {Stage.FETCH: 256, Stage.EXTRACT: 8, Stage.FACES: 8}

FIRST = Stage.FETCH
PENDING: tuple[str, ...] = tuple(Stage)
TERMINAL: tuple[str, ...] = tuple(End)
WORKED: tuple[str, ...] = (End.DONE, End.FAILED)  # the ends a worker brings a poster to

ANALYSIS_QUEUE = "analysis"  # the queue of a run's final analysis (one message per run)
ANALYSIS_TASK = f"posterlab.{ANALYSIS_QUEUE}"
QUEUES: tuple[str, ...] = (*(stage.queue for stage in Stage), ANALYSIS_QUEUE)


def stage_of(status: str) -> Stage | None:
    """The pending stage a poster's ``status`` names, or None when it has ended."""
    try:
        return Stage(status)
    except ValueError:
        return None
