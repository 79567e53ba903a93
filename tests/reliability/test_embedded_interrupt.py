"""``posterlab run`` interrupted by SIGINT or SIGKILL after some posters are done: the same
command again processes only what was missing."""

from __future__ import annotations

import os
import re
import signal
import subprocess
from pathlib import Path

import pytest

from posterlab.testing import env_for, posterlab_cmd, rows, run_cli, sample_manifest

pytestmark = pytest.mark.slow

N = 60


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["sigint", "sigkill"])
def test_an_interrupted_run_resumes_with_only_the_missing_posters(
        data_dir: Path, tmp_path: Path, sig: signal.Signals, watch) -> None:
    manifest = sample_manifest(data_dir, tmp_path / "m", N)
    db_url = f"sqlite:///{tmp_path / 'p.db'}"
    env = env_for(db_url, tmp_path / "blobs")
    run_cli("db", "upgrade", env=env)
    log = tmp_path / "first.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(posterlab_cmd("run", str(manifest), "--workers", "2",
                                              "--run", "emb"),
                                env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
        run = watch(db_url, "emb")
        try:
            run.wait(lambda w: w.run() and w.counts().get("done", 0) >= 12, 60, every=0.05)
        except AssertionError:
            proc.kill()
            raise
        if sig == signal.SIGINT:
            os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C reaches the whole foreground group
        else:
            os.killpg(proc.pid, signal.SIGKILL)  # parent and pool children at once
        code = proc.wait(60)
    first = log.read_text(errors="replace")
    if sig == signal.SIGINT:
        assert code == 130, first[-2000:]
        assert "interrupted" in first
    else:
        assert code == -signal.SIGKILL

    before = {p["id"]: p for p in run.posters()}
    assert len(before) == N
    finished = {i for i, p in before.items() if p["status"] in ("done", "failed")}
    assert 12 <= len(finished) < N, len(finished)
    assert run.run()["pending"] == N - len(finished)

    again = run_cli("run", str(manifest), "--workers", "2", "--run", "emb", env=env,
                    timeout=180)
    assert f"{N - len(finished)} to process" in again.stderr, again.stderr[-2000:]
    after = {p["id"]: p for p in run.posters()}
    assert len(after) == N and {p["status"] for p in after.values()} == {"done"}
    # what was finished was not touched again
    for i in finished:
        assert after[i]["attempts"] == before[i]["attempts"], (i, before[i], after[i])
        assert after[i]["updated_at"] == before[i]["updated_at"]
    # what was not: at most one stage redone per poster (the one in flight when stopped)
    for i in set(after) - finished:
        assert after[i]["attempts"] <= 3 + 1, after[i]
    progressed = re.findall(r"(\d+)/(\d+)", again.stderr)
    assert progressed, again.stderr[-2000:]
    state = run.run()
    assert (state["total"], state["pending"], state["analysis_state"]) == (N, 0, "done")
    shas = {p["sha256"] for p in after.values()}
    assert rows(db_url, "select count(*) as n from features")[0]["n"] == len(shas)
