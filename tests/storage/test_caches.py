"""The feature and face caches on a real SQLite file and a real PostgreSQL."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy.orm import Session, sessionmaker

from posterlab.errors import StorageError
from posterlab.storage import caches
from posterlab.storage.engine import transaction
from posterlab.storage.models import utcnow
from posterlab.storage.vectors import pack_vectors


def test_features_and_faces_are_stored_once_per_content(factory: sessionmaker[Session]) -> None:
    sha = "b" * 64
    with transaction(factory) as s:
        for _ in range(2):
            caches.save_features(s, sha256=sha, version="v1", scalars={"mean_r": 0.5},
                                 vectors=pack_vectors({"grey_hist": np.ones(20)}))
            caches.save_faces(s, sha256=sha, face_key="local", count=2,
                              boxes=[[1, 2, 3, 4, 0.9]])
    with factory() as s:
        assert caches.has_features(s, sha, "v1") and not caches.has_features(s, sha, "v2")
        cached = caches.cached_faces(s, sha, "local")
        assert cached is not None and cached.face_count == 2


def test_features_without_a_column_are_refused(factory: sessionmaker[Session]) -> None:
    with transaction(factory) as s, pytest.raises(StorageError, match="no_such_feature"):
        caches.save_features(s, sha256="c" * 64, version="v1",
                             scalars={"no_such_feature": 1.0}, vectors=b"")


def _features(shas: list[str], version: str) -> list[dict[str, object]]:
    return [{"sha256": sha, "feature_version": version, "vectors": b"", "created_at": utcnow(),
             "mean_r": 0.1} for sha in shas]


def test_a_batch_of_contents_is_checked_for_features_at_once(
        factory: sessionmaker[Session]) -> None:
    stored = [f"{i:064x}" for i in range(0, 2 * caches.LOOKUP_CHUNK + 10, 2)]  # many chunks
    with transaction(factory) as s:
        caches.save_features_many(s, _features(stored, "v1"))
        caches.save_features_many(s, _features(["f" * 64], "v2"))
        caches.save_features_many(s, [])
    asked = [f"{i:064x}" for i in range(2 * caches.LOOKUP_CHUNK + 10)] + ["f" * 64]
    with factory() as s:
        assert caches.features_present(s, asked, "v1") == set(stored)
        assert caches.features_present(s, asked, "v2") == {"f" * 64}
        assert caches.features_present(s, [], "v1") == set()


def test_a_batch_of_contents_is_checked_for_cached_faces_at_once(
        factory: sessionmaker[Session]) -> None:
    rows = [{"sha256": sha, "face_key": key, "face_count": n, "boxes": [],
             "created_at": utcnow()}
            for sha, key, n in (("a" * 64, "local", 1), ("b" * 64, "local", 0),
                                ("a" * 64, "http", 5))]
    with transaction(factory) as s:
        caches.save_faces_many(s, rows)
        caches.save_faces_many(s, rows)  # a second save keeps the first rows
        caches.save_faces_many(s, [])
    with factory() as s:
        found = caches.cached_faces_many(s, ["a" * 64, "b" * 64, "c" * 64, "a" * 64], "local")
        assert caches.cached_faces_many(s, [], "local") == {}
    assert {sha: row.face_count for sha, row in found.items()} == {"a" * 64: 1, "b" * 64: 0}
