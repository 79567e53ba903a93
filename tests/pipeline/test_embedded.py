"""The embedded runner in this process (one worker: jobs computed inline, no pool)."""

from __future__ import annotations

from sqlalchemy import event

from posterlab.stages import AnalysisState, End, Stage
from posterlab.storage import queries
from posterlab.storage.models import FaceRow, FeatureRow
from posterlab.workers.local import Summary, run_embedded
from posterlab.workers.process import pool_size, steady_malloc


def run(env, progress: list[str] | None = None) -> Summary:
    return run_embedded(env.factory, env.settings, env.run.run_id, workers=1,
                        on_progress=progress.append if progress is not None else None)


def counts(env) -> dict[str, int]:
    with env.factory() as session:
        return queries.status_counts(session, env.run.run_id)


def test_the_embedded_runner_ends_every_poster_done_or_failed_with_a_reason(env) -> None:
    progress: list[str] = []
    summary = run(env, progress)
    assert summary == Summary(processed=6, done=4, failed=2, analysis_due=True)
    assert sorted(progress) == [End.DONE] * 4 + [End.FAILED] * 2
    for key in env.IMAGES:
        poster = env.poster(key)
        assert (poster.status, poster.error, poster.face_count) == (End.DONE, None, 0)
    for key, code in ((env.MISSING, "fetch-not-found"), (env.TEXT, "image-not-an-image")):
        poster = env.poster(key)
        assert (poster.status, poster.error_code) == (End.FAILED, code)
        assert poster.error and poster.error.startswith(f"{code}: ")
    assert env.rows(FeatureRow) == env.rows(FaceRow) == 3  # the copy's bytes stored once
    run_row = env.run_row()
    assert (run_row.pending, run_row.analysis_state) == (0, AnalysisState.QUEUED)
    found = counts(env)  # the summary says what the database holds
    assert (summary.done, summary.failed) == (found[End.DONE], found[End.FAILED])
    assert summary.processed == sum(found.values())
    assert all(found[stage] == 0 for stage in Stage)


def test_the_embedded_runner_is_resumable_a_second_call_processes_nothing(env) -> None:
    run(env)
    before = counts(env)
    assert run(env) == Summary()
    assert counts(env) == before


def test_an_interrupted_run_resumes_every_poster_where_it_stopped(env) -> None:
    env.step(Stage.FETCH, env.PNG, env.MISSING)  # one at extract, one failed
    env.to_faces(env.JPEG)
    env.finish(env.OTHER)  # done
    summary = run(env)
    assert summary == Summary(processed=4, done=3, failed=1, analysis_due=True)
    found = counts(env)
    assert (found[End.DONE], found[End.FAILED]) == (4, 2)
    assert env.run_row().pending == 0


def test_posters_read_from_files_take_one_claim_and_one_record_for_all_their_stages(
        env) -> None:
    engine = env.factory.kw["bind"]
    begun: list[object] = []

    def count(connection: object) -> None:
        begun.append(connection)

    event.listen(engine, "begin", count)
    try:
        summary = run(env)
    finally:
        event.remove(engine, "begin", count)
    assert summary.processed == 6
    # read the window, claim the batch, record the batch (downloads would take two more)
    assert len(begun) == 3


def test_a_process_that_computes_posters_keeps_its_arrays_off_mmap() -> None:
    import platform

    assert steady_malloc() is (platform.libc_ver()[0] == "glibc")  # mallopt is glibc's
    assert pool_size(3) == 3 and pool_size(None) >= 1
