"""Reading a manifest into a run: streamed, in batches, idempotent.

Used by ``posterlab run`` (embedded) and ``posterlab enqueue`` (which publishes each
batch's new posters right after the batch is committed). Memory stays flat: one batch
of rows at a time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
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
    """What reading a manifest into a run did.

    ``failed`` counts the rows refused at reading, ``duplicates`` among them (an id
    already on an earlier row); ``repaired_rows`` are the rows read in the file's other
    encoding (the first thousand; ``repaired`` counts them all).
    """

    run_id: int
    run_name: str
    created: bool
    rows: int = 0
    queued: int = 0
    failed: int = 0
    existing: int = 0
    duplicates: int = 0
    repaired: int = 0
    repaired_rows: list[int] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


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
        result.duplicates += added.duplicates
        if on_batch is not None:
            on_batch(added.queued, len(batch))
    result.repaired, result.repaired_rows = refs.repaired, list(refs.repaired_rows)
    if refs.repaired:
        result.warnings.append(repaired_warning(manifest, refs.encoding, result))
    return result


def repaired_warning(manifest: Path, encoding: str, ingested: Ingested) -> str:
    """The warning about rows whose line was not in the file's main encoding."""
    other = "latin-1" if encoding != "latin-1" else "utf-8"
    shown = ", ".join(map(str, ingested.repaired_rows[:20]))
    more = f" and {ingested.repaired - 20} more" if ingested.repaired > 20 else ""
    return (f"manifest {manifest} is {encoding} but {ingested.repaired} rows were not: "
            f"rows {shown}{more} were read as {other}; check their titles, and save the "
            "file in one encoding (utf-8) to silence this")

