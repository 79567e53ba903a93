"""Claiming and planning a batch, on a real SQLite file and a real PostgreSQL."""

from __future__ import annotations

from sqlalchemy import update

from posterlab.pipeline import StageContext, claim_and_plan
from posterlab.stages import End, Stage
from posterlab.storage import caches
from posterlab.storage.engine import transaction
from posterlab.storage.models import FaceRow, Poster, Run


def test_claim_and_plan_claims_only_the_posters_still_at_the_stage(env) -> None:
    env.step(Stage.FETCH, env.PNG, env.JPEG)  # two move on to extract
    ids = env.ids(*env.ALL)
    with transaction(env.factory) as session:
        planned = claim_and_plan(session, env.ctx, Stage.FETCH, ids, attempt=2)
    claimed = {job.poster_id for job in planned.jobs}
    assert claimed == set(env.ids(env.OTHER, env.COPY, env.MISSING, env.TEXT))
    assert planned.moved == []
    assert all(job.stage is Stage.FETCH and job.attempt == 2 and job.source
               for job in planned.jobs)
    assert planned.run_of == dict.fromkeys(claimed, env.run.run_id)
    other = env.poster(env.OTHER)
    assert (other.attempts, other.worker, other.status) == (1, "test", Stage.FETCH)
    assert other.claimed_at is not None
    assert env.poster(env.PNG).attempts == 1  # claimed once, by its own fetch


def test_a_claim_at_a_stage_no_poster_is_at_gets_nothing(env) -> None:
    ids = env.ids(*env.ALL)
    with transaction(env.factory) as session:
        planned = claim_and_plan(session, env.ctx, Stage.FACES, ids)
    assert (planned.jobs, planned.moved) == ([], [])
    assert env.poster(env.PNG).attempts == 0


def test_a_second_claim_of_the_same_ids_gets_nothing_once_they_moved_on(env) -> None:
    first = env.step(Stage.FETCH, *env.ALL)
    assert len(first) == len(env.ALL)
    ids = env.ids(*env.ALL)
    with transaction(env.factory) as session:
        again = claim_and_plan(session, env.ctx, Stage.FETCH, ids)
    assert (again.jobs, again.moved) == ([], [])
    assert env.step(Stage.FETCH, *env.ALL) == []  # a redelivered message does nothing


def test_posters_whose_features_are_cached_move_on_to_faces_without_a_job(env) -> None:
    env.to_faces(env.PNG)
    env.step(Stage.FETCH, env.COPY, env.JPEG)  # COPY has PNG's bytes, JPEG its own
    copy, jpeg = env.ids(env.COPY, env.JPEG)
    with transaction(env.factory) as session:
        planned = claim_and_plan(session, env.ctx, Stage.EXTRACT, [copy, jpeg])
    assert [job.poster_id for job in planned.jobs] == [jpeg]
    assert [(t.poster_id, t.stage, t.terminal) for t in planned.moved] == [
        (copy, Stage.FACES, None)]
    assert env.statuses()[env.COPY] == Stage.FACES


def test_features_of_the_same_bytes_at_another_version_are_not_a_cache_hit(env) -> None:
    env.step(Stage.FETCH, env.PNG)
    sha, ids = env.poster(env.PNG).sha256, env.ids(env.PNG)
    with transaction(env.factory) as session:
        caches.save_features(session, sha256=sha, version="another-version", scalars={},
                             vectors=b"")
        planned = claim_and_plan(session, env.ctx, Stage.EXTRACT, ids)
    assert [job.sha256 for job in planned.jobs] == [sha]
    assert planned.moved == []


def test_posters_whose_faces_are_cached_end_done_without_a_job_with_a_cache_hit(env) -> None:
    env.to_faces(env.PNG, env.COPY, env.JPEG)
    env.step(Stage.FACES, env.PNG)  # caches the faces of PNG's bytes (COPY's too)
    copy, jpeg = env.ids(env.COPY, env.JPEG)
    with transaction(env.factory) as session:
        planned = claim_and_plan(session, env.ctx, Stage.FACES, [copy, jpeg])
    assert [job.poster_id for job in planned.jobs] == [jpeg]
    assert [(t.poster_id, t.stage, t.terminal) for t in planned.moved] == [
        (copy, None, End.DONE)]
    poster = env.poster(env.COPY)
    assert (poster.status, poster.cache_hits, poster.api_calls) == (End.DONE, 1, 0)
    assert poster.face_count == env.poster(env.PNG).face_count
    assert env.rows(FaceRow) == 1


def test_faces_of_the_same_bytes_from_another_detector_are_not_a_cache_hit(env) -> None:
    env.to_faces(env.PNG)
    sha, ids = env.poster(env.PNG).sha256, env.ids(env.PNG)
    assert env.ctx.face_key != "another-detector"
    with transaction(env.factory) as session:
        caches.save_faces(session, sha256=sha, face_key="another-detector", count=3, boxes=[])
        planned = claim_and_plan(session, env.ctx, Stage.FACES, ids)
    assert [job.poster_id for job in planned.jobs] == ids
    assert planned.moved == []
    assert env.poster(env.PNG).cache_hits == 0


def test_a_worker_computing_another_feature_version_is_refused_with_config_mismatch(
        env) -> None:
    env.step(Stage.FETCH, env.PNG)
    with transaction(env.factory) as session:  # as if the run was made by another version
        session.execute(update(Run).where(Run.id == env.run.run_id)
                        .values(feature_version="0ld-version"))
    ctx, ids = StageContext(env.settings, worker="newer"), env.ids(env.PNG)
    with transaction(env.factory) as session:
        planned = claim_and_plan(session, ctx, Stage.EXTRACT, ids)
    assert planned.jobs == []
    assert [(t.stage, t.terminal) for t in planned.moved] == [(None, End.FAILED)]
    poster: Poster = env.poster(env.PNG)
    assert (poster.status, poster.error_code) == (End.FAILED, "config-mismatch")
    assert "0ld-version" in (poster.error or "") and "posterlab retry" in (poster.error or "")
    assert env.run_row().pending == len(env.ALL) - 1
