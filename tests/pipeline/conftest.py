"""Pipeline fixtures: an open store on the test's database and a tiny ingested manifest.

The manifest holds real small images written with numpy and Pillow (a PNG, a JPEG, a
second PNG and a byte-for-byte copy of the first, so the features cache hits), one row
whose file is missing and one whose file is not an image. Nothing is mocked: the stages
run in this process on the real database, blob store and local face detector.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from posterlab.config import Settings, load_settings
from posterlab.ingest import Ingested, ingest
from posterlab.pipeline import StageContext, Transition, run_batch
from posterlab.service.store import Store, open_store
from posterlab.stages import Stage, stage_of
from posterlab.storage.models import FaceRow, FeatureRow, Poster, Run

# imdb id -> what its poster file is; the ids are the movie keys of the run's rows
PNG, JPEG, OTHER, COPY, MISSING, TEXT = "101", "102", "103", "104", "105", "106"
IMAGES = (PNG, JPEG, OTHER, COPY)  # the posters that can end done
SIDE = (48, 72)  # width, height: above the decoder's 16-pixel minimum, fast to analyze


def _image_bytes(seed: int, fmt: str) -> bytes:
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, size=(SIDE[1], SIDE[0], 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels, "RGB").save(out, format=fmt)
    return out.getvalue()


def write_manifest(folder: Path) -> Path:
    """The six-row manifest described in the module docstring, in ``folder``."""
    posters = folder / "posters"
    posters.mkdir(parents=True)
    png = _image_bytes(1, "PNG")
    files = {PNG: ("a.png", png), JPEG: ("b.jpg", _image_bytes(2, "JPEG")),
             OTHER: ("c.png", _image_bytes(3, "PNG")), COPY: ("d.png", png),
             TEXT: ("e.jpg", b"this is not an image, only some text\n" * 4)}
    for name, data in files.values():
        (posters / name).write_bytes(data)
    names = {key: name for key, (name, _) in files.items()} | {MISSING: "gone.jpg"}
    path = folder / "index.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["imdbId", "Title", "IMDB Score", "Genre", "poster_file"])
        for n, key in enumerate((PNG, JPEG, OTHER, COPY, MISSING, TEXT)):
            writer.writerow([key, f"Movie {key}", 5.0 + n / 2, "Drama|Comedy",
                             f"posters/{names[key]}"])
    return path


@dataclass
class Env:
    """The test's store, settings, stage context and ingested run."""

    store: Store
    ctx: StageContext
    run: Ingested
    manifest: Path
    # the imdb ids of the rows, for the tests (which import nothing from this conftest)
    PNG, JPEG, OTHER, COPY, MISSING, TEXT = PNG, JPEG, OTHER, COPY, MISSING, TEXT
    IMAGES = IMAGES
    ALL = (PNG, JPEG, OTHER, COPY, MISSING, TEXT)

    @property
    def settings(self) -> Settings:
        return self.store.settings

    @property
    def factory(self) -> sessionmaker[Session]:
        return self.store.factory

    def step(self, stage: Stage, *keys: str, through: Stage | None = None) -> list[Transition]:
        """Take these posters through ``stage`` (up to ``through``) as a task would."""
        return run_batch(self.factory, self.ctx, stage, self.ids(*keys), through=through)

    def to_faces(self, *keys: str) -> None:
        """Take these posters from fetch to waiting at faces, for real."""
        self.step(Stage.FETCH, *keys)
        self.step(Stage.EXTRACT, *keys)

    def finish(self, key: str) -> None:
        """Take this poster through whatever stages it has left, as tasks would."""
        while (stage := stage_of(self.statuses()[key])) is not None:
            self.step(stage, key, through=Stage.FACES)

    def ids(self, *keys: str) -> list[int]:
        """Poster ids of the run's rows for these imdb ids, in the order given."""
        with self.factory() as session:
            by_key = dict(session.execute(select(Poster.imdb_id, Poster.id).where(
                Poster.run_id == self.run.run_id)).all())
        return [by_key[key] for key in keys]

    def poster(self, key: str) -> Poster:
        with self.factory() as session:
            return session.scalars(select(Poster).where(
                Poster.run_id == self.run.run_id, Poster.imdb_id == key)).one()

    def statuses(self) -> dict[str, str]:
        """imdb id -> status of every poster of the run."""
        with self.factory() as session:
            return dict(session.execute(select(Poster.imdb_id, Poster.status).where(
                Poster.run_id == self.run.run_id)).all())

    def run_row(self) -> Run:
        with self.factory() as session:
            return session.get_one(Run, self.run.run_id)

    def rows(self, model: type[FeatureRow] | type[FaceRow]) -> int:
        """Rows of a cache table."""
        with self.factory() as session:
            return len(session.scalars(select(model)).all())


def make_settings(db_url: str, tmp_path: Path) -> Settings:
    """Settings of the test's database and blob folder, nothing from the environment."""
    return load_settings({}, database_url=db_url, blob_dir=tmp_path / "blobs")


@pytest.fixture
def env(db_url: str, tmp_path: Path) -> Iterator[Env]:
    settings = make_settings(db_url, tmp_path)
    manifest = write_manifest(tmp_path / "data")
    with open_store(settings, create=True) as store:
        ctx = StageContext(settings, worker="test")
        run = ingest(store.factory, ctx, manifest, run_name="tiny", mode="embedded")
        yield Env(store, ctx, run, manifest)
