"""Content-addressed blob store: poster bytes kept once, named by their sha256.

A folder on a local disk or a shared volume (every worker host must see the same
folder in distributed mode). Writes are atomic (temp file + rename), so two workers
storing the same bytes at once both succeed and leave one file.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from posterlab.errors import StorageError


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class BlobStore:
    """Bytes by sha256 under ``root/ab/cd/abcd...``."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    def path(self, sha256: str) -> Path:
        if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
            raise ValueError(f"sha256 must be 64 lowercase hex digits, got {sha256!r}")
        return self.root / sha256[:2] / sha256[2:4] / sha256

    def put(self, data: bytes) -> str:
        """Store ``data`` (idempotent) and return its sha256."""
        digest = sha256_hex(data)
        target = self.path(digest)
        if target.exists():
            return digest
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, target)
        except OSError as exc:
            raise StorageError(
                f"cannot write to the blob store {self.root}: {exc.strerror}") from None
        return digest

    def get(self, sha256: str) -> bytes:
        try:
            return self.path(sha256).read_bytes()
        except FileNotFoundError:
            raise StorageError(
                f"blob {sha256[:12]}... is missing from {self.root}; in distributed mode every "
                "worker must share the blob folder (POSTERLAB_BLOB_DIR)"
            ) from None

    def exists(self, sha256: str) -> bool:
        return self.path(sha256).exists()
