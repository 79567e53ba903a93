"""Recording many posters' chains at once: one statement per table, safe to run twice."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event

from posterlab.pipeline import Chain, Counted, Failed, Planned, claim_and_plan, compute_chain
from posterlab.pipeline.record import record_batch
from posterlab.stages import End, Stage
from posterlab.storage.engine import transaction
from posterlab.storage.models import FaceRow, FeatureRow


def chains_of(env, *keys: str) -> tuple[Planned, list[Chain]]:
    """Claim these posters at fetch and compute each one's whole chain, for real."""
    ids = env.ids(*keys)
    with transaction(env.factory) as session:
        planned = claim_and_plan(session, env.ctx, Stage.FETCH, ids)
    return planned, [compute_chain(job, env.ctx, through=Stage.FACES) for job in planned.jobs]


@contextmanager
def statements(env) -> Iterator[Counter[tuple[str, str]]]:
    """Count the statements sent to the database, by (verb, table)."""
    seen: Counter[tuple[str, str]] = Counter()

    def count(_conn: Any, _cursor: Any, sql: str, *_args: Any) -> None:
        words = sql.split()
        verb = words[0].upper()
        if verb in ("INSERT", "UPDATE"):
            table = words[2] if verb == "INSERT" else words[1]
            seen[verb, table.strip('"')] += 1

    event.listen(env.store.engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(env.store.engine, "before_cursor_execute", count)


def test_record_batch_stores_complete_chains_with_one_statement_per_table(env) -> None:
    planned, chains = chains_of(env, env.PNG, env.JPEG, env.OTHER, env.COPY)
    assert all(isinstance(chain[-1], Counted) for chain in chains)
    with statements(env) as seen, transaction(env.factory) as session:
        moved = record_batch(session, chains, env.ctx, planned.run_of)
    assert seen[("INSERT", "features")] == 1
    assert seen[("INSERT", "faces")] == 1
    assert seen[("UPDATE", "posters")] == 1
    assert sorted(t.poster_id for t in moved) == sorted(planned.run_of)
    assert all(t.terminal == End.DONE and t.stage is None for t in moved)
    assert {env.statuses()[key] for key in env.IMAGES} == {End.DONE}
    assert env.rows(FeatureRow) == env.rows(FaceRow) == 3  # COPY's bytes are PNG's
    assert env.run_row().pending == 2


def test_record_batch_is_safe_to_run_twice(env) -> None:
    planned, chains = chains_of(env, *env.ALL)
    with transaction(env.factory) as session:
        first = record_batch(session, chains, env.ctx, planned.run_of)
    posters_after = {key: env.poster(key) for key in env.ALL}
    with transaction(env.factory) as session:
        second = record_batch(session, chains, env.ctx, planned.run_of)
    assert len(first) == len(env.ALL)
    assert second == []  # everything had moved on already: nothing moved now
    assert env.rows(FeatureRow) == env.rows(FaceRow) == 3
    run = env.run_row()
    assert (run.pending, run.analysis_state) == (0, "queued")
    assert sum(t.analysis_due for t in first) == 1
    for key, before in posters_after.items():
        after = env.poster(key)
        assert (after.status, after.error, after.face_count, after.api_calls) == (
            before.status, before.error, before.face_count, before.api_calls)


def test_record_batch_records_failed_and_complete_chains_of_one_batch(env) -> None:
    planned, chains = chains_of(env, *env.ALL)
    by_key = dict(zip(env.ids(*env.ALL), env.ALL, strict=True))
    ends = {by_key[chain[0].poster_id]: type(chain[-1]) for chain in chains}
    assert ends == {env.PNG: Counted, env.JPEG: Counted, env.OTHER: Counted,
                    env.COPY: Counted, env.MISSING: Failed, env.TEXT: Failed}
    with transaction(env.factory) as session:
        moved = record_batch(session, chains, env.ctx, planned.run_of)
    assert {by_key[t.poster_id]: t.terminal for t in moved} == {
        key: End.DONE if key in env.IMAGES else End.FAILED for key in env.ALL}
    statuses = env.statuses()
    assert statuses[env.MISSING] == statuses[env.TEXT] == End.FAILED
    assert env.poster(env.TEXT).sha256 is not None  # its fetch was recorded before the failure
    assert env.poster(env.MISSING).error_code == "fetch-not-found"
    assert env.poster(env.TEXT).error_code == "image-not-an-image"
