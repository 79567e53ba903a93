"""Test support: worker processes, small manifests cut from the real data, DB reads."""

from __future__ import annotations

import csv
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from posterlab.storage.engine import make_engine


def sample_manifest(data_dir: Path, out: Path, n: int) -> Path:
    """The first ``n`` rows of posters/index.csv, their posters copied beside it (tmp)."""
    src = data_dir / "posters" / "index.csv"
    (out / "posters").mkdir(parents=True, exist_ok=True)
    target = out / "index.csv"
    # index.csv is latin-1 (it carries MovieGenre.csv's bytes): copy it byte for byte
    with open(src, newline="", encoding="latin-1") as fin, \
            open(target, "w", newline="", encoding="latin-1") as fout:
        reader = csv.DictReader(fin)
        writer = csv.DictWriter(fout, fieldnames=reader.fieldnames or [])
        writer.writeheader()
        for i, row in enumerate(reader):
            if i >= n:
                break
            poster = row["poster_file"]
            shutil.copyfile(data_dir / "posters" / poster, out / poster)
            writer.writerow(row)
    return target


def rows(db_url: str, sql: str, **params: Any) -> list[dict[str, Any]]:
    engine = make_engine(db_url, readonly=True)
    try:
        with engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(sa.text(sql), params)]
    finally:
        engine.dispose()


def env_for(db_url: str, blob_dir: Path, broker: str | None = None, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("POSTERLAB_")}
    env.update(POSTERLAB_DATABASE_URL=db_url, POSTERLAB_BLOB_DIR=str(blob_dir))
    if broker:
        env["POSTERLAB_BROKER_URL"] = broker
    env.update(extra)
    return env


def posterlab_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "posterlab", *args]


class WorkerProcess:
    """A real ``posterlab worker`` in its own process group."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.log = log
        self._fh = open(log, "wb")
        self.proc = subprocess.Popen(posterlab_cmd("worker", *args), env=env, stdout=self._fh,
                                     stderr=subprocess.STDOUT, start_new_session=True)

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.log.read_text(errors="replace")
            if " ready." in text:
                return
            if self.proc.poll() is not None:
                raise AssertionError(f"worker exited early:\n{text[-3000:]}")
            time.sleep(0.2)
        raise AssertionError(f"worker not ready in {timeout}s:\n{self.log.read_text()[-3000:]}")

    def stop(self, timeout: float = 30) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self._fh.close()

    def kill(self) -> None:
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()


def run_cli(*args: str, env: dict[str, str], check: bool = True, timeout: float = 600
            ) -> subprocess.CompletedProcess[str]:
    """Run the real ``posterlab`` command; on failure show its output."""
    proc = subprocess.run(posterlab_cmd(*args), env=env, capture_output=True, text=True,
                          timeout=timeout)
    if check:
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def pg_schema_url(base: str) -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a fresh schema, dropped afterwards."""
    import sqlalchemy as sa

    schema = f"t_{uuid.uuid4().hex[:10]}"
    engine = sa.create_engine(base)
    with engine.begin() as conn:
        conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
    yield f"{base}?options=-csearch_path%3D{schema}"
    with engine.begin() as conn:
        conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
    engine.dispose()
