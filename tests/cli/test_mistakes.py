"""A user's mistakes end with a sentence and exit code 1 or 2, never a traceback, and the
commands that only look at runs never leave a file behind.

The commands run in-process through click's runner (the real command functions, their
real database and broker); the lifecycle commands are checked on runs written straight
into a real SQLite or PostgreSQL database.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from posterlab.cli import _register, cli
from posterlab.manifest import PosterRef
from posterlab.storage import posters, runs
from posterlab.storage.engine import make_engine, session_factory, transaction
from posterlab.storage.schema import ensure_schema
from posterlab.testing import env_for, free_port, rows

_register()
DOWN = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there


# what another test of the same process may have left in os.environ and that would make
# rich take the pipe for a terminal (or give it a width)
TERMINAL_HINTS = ("COLUMNS", "FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE")


def invoke(env: dict[str, str], *args: str, stdin: str | None = None) -> Result:
    clean: dict[str, str | None] = {**env, **dict.fromkeys(TERMINAL_HINTS)}
    return CliRunner().invoke(cli, list(args), env=clean, input=stdin, catch_exceptions=True)


def assert_clean(result: Result, code: int | tuple[int, ...]) -> None:
    codes = code if isinstance(code, tuple) else (code,)
    assert result.exit_code in codes, (result.exit_code, result.output, result.exception)
    assert result.exception is None or isinstance(result.exception, SystemExit), \
        result.exception
    assert "Traceback" not in result.output


def fill(db_url: str, name: str = "mine", n: int = 4) -> None:
    """A run of ``n`` posters waiting at their first stage, written with the storage API."""
    engine = make_engine(db_url)
    ensure_schema(engine)
    factory = session_factory(engine)
    with transaction(factory) as session:
        run, _ = runs.get_or_create_run(session, name=name, manifest="m.csv", mode="embedded",
                                        feature_version="v", face_key="k", settings={})
        refs = [PosterRef(row=i, imdb_id=str(100 + i), title=f"Movie {i}", rating=6.0,
                          genres=("Drama",), source=f"/nowhere/{i}.jpg") for i in range(n)]
        posters.add_posters(session, run.id, refs)
    engine.dispose()


@pytest.fixture
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "work"
    folder.mkdir()
    monkeypatch.chdir(folder)
    return folder


def test_every_command_given_bad_input_says_so_without_a_traceback(
        here: Path) -> None:
    env = env_for(f"sqlite:///{here / 'x.db'}", here / "blobs", DOWN)
    fill(env["POSTERLAB_DATABASE_URL"])
    (here / "afile").write_text("")
    cases = [
        (("demo", "--posters", "1"), 2),
        (("run", "nope.csv"), 2),
        (("run", "nope.csv", "--skip-checks"), 1),
        (("enqueue", "nope.csv"), 2),
        (("worker", "-Q", "bogus"), 2),
        (("worker",), 2),  # broker down
        (("status", "--run", "nope"), 1),
        (("failures", "--run", "nope"), 1),
        (("retry", "--run", "nope"), 1),
        (("runs", "--db", "bogus://"), 1),
        (("db", "upgrade", "--db", "nonsense"), 1),
        (("analyze", "--run", "nope"), 1),
        (("report", "--run", "nope", "--out", "r"), 1),
        (("export", "--columns", "nope"), 1),
        (("export", "--format", "xml"), 2),
        (("faceapi", "serve", "--rate", "fast"), 1),
        (("cancel", "--run", "nope"), 1),
        (("delete", "--run", "nope", "--yes"), 1),
        (("rename", "--run", "nope", "new"), 1),
        (("rename", "--run", "mine", " "), 1),
        (("purge", "--yes"), 1),
        (("status", "--broker", "amqp://guest@rabbit//"), 1),
    ]
    for args, code in cases:
        result = invoke(env, *args)
        assert_clean(result, code)
        assert "Error" in result.output or "Usage" in result.output, (args, result.output)


def test_a_broker_url_that_is_not_redis_is_refused_with_a_sentence(here: Path) -> None:
    env = env_for(f"sqlite:///{here / 'x.db'}", here / "blobs", "amqp://guest@rabbit//")
    for args in (("status",), ("enqueue", "m.csv"), ("purge", "--yes")):
        result = invoke(env, *args)
        assert_clean(result, 1)
        assert "Redis is the supported broker" in result.output


def test_read_only_commands_without_a_database_create_nothing_and_point_to_one_near(
        here: Path) -> None:
    (here / "posterlab-demo").mkdir()
    (here / "posterlab-demo" / "posterlab.db").write_bytes(b"")
    before = sorted(p.name for p in here.rglob("*"))
    env = env_for("sqlite:///posterlab.db", here / "blobs")
    for args in (("status",), ("runs",), ("failures",), ("export",), ("analyze",),
                 ("report", "--out", "rep"), ("cancel", "--run", "x"), ("retry",)):
        result = invoke(env, *args)
        assert_clean(result, 2 if args[0] == "retry" else 1)  # retry: a check before work
        assert f"no database at {here / 'posterlab.db'}" in result.output
        assert "posterlab-demo/posterlab.db" in result.output
    assert sorted(p.name for p in here.rglob("*")) == before


def test_a_run_that_fails_its_checks_leaves_no_database(here: Path) -> None:
    env = env_for("sqlite:///sub/posterlab.db", here / "blobs")
    assert_clean(invoke(env, "run", "missing.csv"), 2)
    assert list(here.iterdir()) == []


def test_export_into_a_missing_folder_makes_it(db_url: str, here: Path) -> None:
    fill(db_url)
    env = env_for(db_url, here / "blobs")
    for fmt in ("csv", "parquet"):
        target = here / "deep" / fmt / f"out.{fmt}"
        assert_clean(invoke(env, "export", "--format", fmt, "--out", str(target)), 0)
        assert target.is_file()


def test_cancel_delete_and_rename_print_one_json_object(db_url: str, here: Path) -> None:
    fill(db_url, "first")
    fill(db_url, "second")
    env = env_for(db_url, here / "blobs", DOWN)
    cancelled = json.loads(invoke(env, "cancel", "--run", "first", "--no-analysis",
                                  "--json").output)
    assert cancelled["run"] == "first" and cancelled["cancelled"] == 4
    assert cancelled["counts"]["cancelled"] == 4 and cancelled["analysis"] == "skipped"
    assert {"total", "failures", "database", "mode"} <= set(cancelled)
    status = json.loads(invoke(env, "status", "--run", "first", "--json").output)
    assert status["counts"]["cancelled"] == 4 and status["complete"] and status["settled"]

    renamed = json.loads(invoke(env, "rename", "--run", "first", "kept", "--json").output)
    assert renamed == {"run": "kept", "renamed_from": "first"}
    assert_clean(invoke(env, "rename", "--run", "kept", "second"), 1)  # taken

    assert_clean(invoke(env, "delete", "--run", "second"), 1)  # no terminal: not confirmed
    assert_clean(invoke(env, "delete", "--run", "second", stdin="n\n"), 1)
    deleted = json.loads(invoke(env, "delete", "--run", "second", "--yes", "--json").output)
    assert deleted["run"] == "second" and deleted["deleted"]["posters"] == 4
    left = rows(db_url, "select r.name, count(p.id) as n from runs r "
                        "left join posters p on p.run_id = r.id group by r.name")
    assert left == [{"name": "kept", "n": 4}]


def test_the_results_view_joins_posters_runs_and_features(db_url: str) -> None:
    fill(db_url, "viewed", n=3)
    found = rows(db_url, "select run, imdb_id, status, face_count, brightness "
                         "from results order by imdb_id")
    assert [r["imdb_id"] for r in found] == ["100", "101", "102"]
    assert {r["run"] for r in found} == {"viewed"}


def test_tables_in_a_pipe_never_cut_a_run_name(db_url: str, here: Path) -> None:
    name = "a-run-with-a-rather-long-name-" + "x" * 70
    fill(db_url, name, n=1)
    env = env_for(db_url, here / "blobs")
    for args in (("runs",), ("status", "--no-sweep")):
        result = invoke(env, *args)
        assert_clean(result, 0)
        assert name in result.output, result.output


@pytest.mark.redis
def test_purge_asks_first_then_empties_posterlabs_queues(broker_url: str, here: Path) -> None:
    from posterlab.config import Settings
    from posterlab.stages import Stage
    from posterlab.workers.celery_app import create_app
    from posterlab.workers.queues import publish

    app = create_app(Settings(broker_url=broker_url))
    assert publish(app, Stage.FETCH, list(range(1, 600))) == 3
    publish(app, Stage.EXTRACT, [1, 2])
    env = env_for(f"sqlite:///{here / 'x.db'}", here / "blobs", broker_url)
    assert_clean(invoke(env, "purge", stdin="n\n"), 1)  # not confirmed: nothing purged
    done = json.loads(invoke(env, "purge", "--yes", "--json").output)
    assert done["purged"]["fetch"] == 3 and done["purged"]["extract"] == 1
    assert done["messages"] == 4
    again = json.loads(invoke(env, "purge", "--yes", "--json").output)
    assert again["messages"] == 0
