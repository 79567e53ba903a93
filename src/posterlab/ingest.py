"""Reading a manifest into a run: streamed, in batches, idempotent.

Used by ``posterlab run`` (embedded) and ``posterlab enqueue`` (which publishes each
batch's new posters right after the batch is committed). Memory stays flat: one batch
of rows at a time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import chain, islice
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from posterlab.errors import InputError
from posterlab.features_schema import DEFAULT_PROFILE
from posterlab.manifest import PosterRef, read_manifest
from posterlab.pipeline.context import StageContext
from posterlab.storage import posters, runs
from posterlab.storage.engine import transaction
from posterlab.storage.models import Run

BATCH = 2000  # rows per transaction and per publish round: ~50 ms of inserts


@dataclass
class Ingested:
    run_id: int
    run_name: str
    created: bool
    rows: int = 0
    queued: int = 0
    failed: int = 0
    existing: int = 0


def _same_features(run: Run, ctx: StageContext, created: bool) -> None:
    """A run's features are of one profile and preprocessing: adding rows to an existing
    run with other settings would mix two feature versions in one analysis."""
    wanted = ctx.settings.profile
    had = str((run.settings.get("preprocess") or {}).get("profile", DEFAULT_PROFILE))
    if not created and wanted != DEFAULT_PROFILE and had != wanted:
        raise InputError(
            f"run {run.name!r} computes the {had!r} feature profile, not {wanted!r}: give "
            "a new --run NAME for this profile (features of two profiles never mix)")


def batched(refs: Iterator[PosterRef], size: int) -> Iterator[list[PosterRef]]:
    while batch := list(islice(refs, size)):
        yield batch


def ingest(
    factory: sessionmaker[Session],
    ctx: StageContext,
    manifest: Path,
    *,
    run_name: str,
    mode: str,
    poster_dir: Path | None = None,
    limit: int | None = None,
    on_batch: Callable[[list[int], int], None] | None = None,
) -> Ingested:
    """Create (or reopen) the run and add the manifest's rows to it.

    ``on_batch(new_ids, rows_in_batch)`` is called after each batch is committed.
    """
    if not manifest.is_file():
        raise InputError(f"manifest {manifest} does not exist or is not a file")
    refs = read_manifest(manifest, poster_dir=poster_dir, limit=limit)
    first = list(islice(refs, BATCH))
    if not first:
        raise InputError(f"manifest {manifest} has no data rows (empty file or header only)")
    settings = {**ctx.settings.redacted(), "preprocess": ctx.settings.preprocess_overrides()}
    with transaction(factory) as session:
        run, created = runs.get_or_create_run(
            session, name=run_name, manifest=str(manifest.resolve()), mode=mode,
            feature_version=ctx.feature_version, face_key=ctx.face_key, settings=settings)
        run_id = run.id
        _same_features(run, ctx, created)
    result = Ingested(run_id, run_name, created)
    for batch in chain([first], batched(refs, BATCH)):
        with transaction(factory) as session:
            added = posters.add_posters(session, run_id, batch)
        result.rows += len(batch)
        result.queued += len(added.queued)
        result.failed += added.failed
        result.existing += added.existing
        if on_batch is not None:
            on_batch(added.queued, len(batch))
    return result

