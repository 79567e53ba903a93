"""Bounded queues: at most ``max_queued`` messages wait in any one stage's queue.

Whoever publishes a stage (the tasks, the sweeper, ``enqueue``, ``retry``) goes through
:class:`Backlog`: under a short per-queue lock in Redis it reads the queue's length,
publishes the messages that fit and marks the other posters *deferred* in the database
(:mod:`posterlab.storage.backlog`). Each task, when it has worked a message, tops its own
queue up from the deferred posters (:meth:`Backlog.top_up`), so an upstream stage never
floods the broker: its posters wait in the database, where a million rows cost nothing
in broker memory.

The lock makes the bound strict across processes and machines: the length read and the
messages sent happen under it. Delayed retries (a countdown) are not bounded: Redis
hands them to a worker at once, which holds them until they are due.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any

import redis
from celery import Celery
from sqlalchemy.orm import Session, sessionmaker

from posterlab.config import Settings
from posterlab.pipeline import Transition
from posterlab.stages import ANALYSIS_TASK, Stage
from posterlab.storage import backlog
from posterlab.storage.engine import transaction

log = logging.getLogger(__name__)

# a broker restart takes seconds: keep trying to publish for about half a minute
PUBLISH_RETRY = {"max_retries": 30, "interval_start": 0.2, "interval_step": 0.5,
                 "interval_max": 1.0}

def broker_client(url: str, **options: Any) -> redis.Redis:
    """A Redis client on the broker that rides out a restart as publishing does: each
    command is retried with backoff for about half a minute before it raises."""
    from redis.backoff import ExponentialBackoff
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError
    from redis.retry import Retry

    return redis.Redis.from_url(
        url, socket_timeout=10, socket_connect_timeout=5,
        retry=Retry(ExponentialBackoff(cap=1.0, base=0.2), int(PUBLISH_RETRY["max_retries"])),
        retry_on_error=[RedisConnectionError, RedisTimeoutError], **options)


# kombu pushes a message on a queue's left end and workers take from its right end; this
# moves the ``ARGV[1]`` newest messages to the right end, in the order they were sent
_TO_FRONT = """
local moved = 0
for _ = 1, tonumber(ARGV[1]) do
  local message = redis.call('LPOP', KEYS[1])
  if not message then break end
  redis.call('RPUSH', KEYS[1], message)
  moved = moved + 1
end
return moved
"""

LOCK_SECONDS = 10.0  # a publisher that died holding the lock frees it after this long
TOP_UP_MESSAGES = 64  # messages a top-up sends at most: spreads the work over many tasks


def publish(app: Celery, stage: Stage, poster_ids: Sequence[int], *, attempt: int = 1,
            countdown: float | None = None, producer: Any = None) -> int:
    """Queue ``stage`` for these posters, ``stage.ids_per_message`` ids a message.

    Unbounded: work enters a queue through :class:`Backlog`, which calls this for what
    fits. Returns the number of messages sent.
    """
    task = app.tasks[stage.task_name]
    size = stage.ids_per_message
    sent = 0
    for start in range(0, len(poster_ids), size):
        args, kwargs = stage.message(list(poster_ids[start:start + size]), attempt)
        task.apply_async(args=args, kwargs=kwargs, countdown=countdown, producer=producer,
                         retry=True, retry_policy=PUBLISH_RETRY)
        sent += 1
    return sent


def publish_analysis(app: Celery, run_id: int, producer: Any = None) -> None:
    """Queue a run's final analysis (one message per run end)."""
    app.tasks[ANALYSIS_TASK].apply_async(args=[run_id], producer=producer, retry=True,
                                         retry_policy=PUBLISH_RETRY)


def queue_depth(client: redis.Redis, stage: Stage) -> int:
    """Messages waiting in ``stage``'s queue (kombu keeps one Redis list per queue)."""
    return int(client.llen(stage.queue))


@contextmanager
def open_backlog(app: Celery, factory: sessionmaker[Session],
                 settings: Settings) -> Iterator[Backlog]:
    """A :class:`Backlog` with a Redis connection of its own, closed on exit (for the
    commands: ``enqueue``, ``retry``, the sweeper)."""
    client = broker_client(settings.broker_url)
    try:
        yield Backlog(app, factory, client, settings.max_queued)
    finally:
        client.close()


@dataclass
class Backlog:
    """Publishes a stage's posters within the queue bound; the rest wait deferred."""

    app: Celery
    factory: sessionmaker[Session]
    client: redis.Redis
    max_queued: int

    def send(self, stage: Stage, poster_ids: Sequence[int], *, attempt: int = 1,
             producer: Any = None) -> int:
        """Publish what fits in ``stage``'s queue now, defer the rest; messages sent."""
        ids = list(poster_ids)
        if not ids:
            return 0
        with self._lock(stage):
            fits = self._room(stage) * stage.ids_per_message
            sent = self._publish(stage, ids[:fits], attempt, producer)
        rest = ids[fits:]
        if rest:
            # a deferred poster loses its attempt count: it starts its stage afresh
            with transaction(self.factory) as session:
                backlog.defer(session, rest)
            # the queue may have drained between the length read and the commit above,
            # with no task left to top it up: look again now that the rows are visible
            sent += self.top_up(stage, producer=producer)
        return sent

    def top_up(self, stage: Stage, *, producer: Any = None) -> int:
        """Publish deferred posters of ``stage`` into the room its queue has; messages sent."""
        with self._lock(stage):
            room = min(self._room(stage), TOP_UP_MESSAGES)
            if room <= 0:
                return 0
            with transaction(self.factory) as session:
                ids = backlog.take_deferred(session, stage.value,
                                            room * stage.ids_per_message)
            return self._publish(stage, ids, 1, producer)

    def _room(self, stage: Stage) -> int:
        return max(0, self.max_queued - queue_depth(self.client, stage))

    def follow(self, transitions: Iterable[Transition]) -> None:
        """Publish where each poster goes next: its next stage now (grouped, bounded), a
        retry later, a poster a process may have died on alone and first in its queue,
        the run's analysis when it was the run's last poster."""
        now: dict[Stage, list[int]] = defaultdict(list)
        alone: dict[Stage, list[Transition]] = defaultdict(list)
        with self.app.producer_or_acquire() as producer:
            for t in transitions:
                if t.stage is not None and t.delay is not None:
                    publish(self.app, t.stage, [t.poster_id], attempt=t.attempt,
                            countdown=t.delay, producer=producer)
                elif t.stage is not None and t.alone:
                    alone[t.stage].append(t)
                elif t.stage is not None:
                    now[t.stage].append(t.poster_id)
                if t.analysis_due:
                    publish_analysis(self.app, t.run_id, producer=producer)
            for stage, suspects in alone.items():
                self.send_first(stage, suspects, producer=producer)
            for stage, ids in now.items():
                self.send(stage, ids, producer=producer)

    def send_first(self, stage: Stage, suspects: Sequence[Transition], *,
                   producer: Any = None) -> int:
        """Publish each poster in a message of its own, ahead of every message waiting.

        These are posters a process died on (or a dead worker held): decided now, while
        the rest of the run overlaps what their deaths cost, rather than in a tail behind
        the whole backlog. Unbounded, as retries are: there are few of them.
        """
        with self._lock(stage):
            sent = sum(publish(self.app, stage, [t.poster_id], attempt=t.attempt,
                               producer=producer) for t in suspects)
            self.client.eval(_TO_FRONT, 1, stage.queue, sent)
        return sent

    def requeue(self, taken_back: Iterable[tuple[int, str]]) -> None:
        """Publish (id, stage) posters taken back from a dead worker, each alone: one of
        them may be what killed it."""
        self.follow([Transition(pid, 0, Stage(stage), alone=True) for pid, stage in taken_back])

    def _publish(self, stage: Stage, ids: list[int], attempt: int, producer: Any) -> int:
        return publish(self.app, stage, ids, attempt=attempt, producer=producer) if ids else 0

    @contextmanager
    def _lock(self, stage: Stage) -> Iterator[None]:
        """Hold the queue's publish lock; a lock that cannot be had in time (a stuck
        holder) costs the bound a little, never the run."""
        lock = self.client.lock(f"posterlab:publish:{stage.queue}", timeout=LOCK_SECONDS,
                                blocking_timeout=LOCK_SECONDS)
        held = lock.acquire()
        if not held:
            log.warning("publish lock of queue %s not free after %.0f s; publishing anyway",
                        stage.queue, LOCK_SECONDS)
        try:
            yield
        finally:
            if held:  # expired while held: someone else may hold it now
                with suppress(redis.exceptions.LockError):
                    lock.release()
