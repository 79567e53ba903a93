"""Compact float32 storage of feature vectors: one blob per poster.

Layout: 4-byte little-endian header length, a JSON header ``{name: [offset, [shape...]]}``,
then the float32 data. Histograms and HOG together stay well under 8 KB at defaults.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Mapping

import numpy as np


def pack_vectors(vectors: Mapping[str, np.ndarray]) -> bytes:
    """Pack named float arrays into one blob (float32, shapes kept)."""
    header: dict[str, list[object]] = {}
    chunks: list[bytes] = []
    offset = 0
    for name in sorted(vectors):
        array = np.ascontiguousarray(vectors[name], dtype="<f4")
        header[name] = [offset, list(array.shape)]
        data = array.tobytes()
        chunks.append(data)
        offset += len(data)
    head = json.dumps(header, separators=(",", ":")).encode()
    return struct.pack("<I", len(head)) + head + b"".join(chunks)


def unpack_vectors(blob: bytes) -> dict[str, np.ndarray]:
    """Inverse of :func:`pack_vectors`."""
    if len(blob) < 4:
        raise ValueError("blob is too short to hold a vector header")
    (head_len,) = struct.unpack_from("<I", blob)
    header = json.loads(blob[4 : 4 + head_len])
    body = memoryview(blob)[4 + head_len :]
    out: dict[str, np.ndarray] = {}
    for name, (offset, shape) in header.items():
        count = int(np.prod(shape)) if shape else 1
        out[name] = np.frombuffer(body, dtype="<f4", count=count, offset=offset).reshape(shape)
    return out
