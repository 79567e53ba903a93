"""Results as pandas frames, streamed in chunks, and written as CSV, Parquet or JSON lines.

Memory stays flat on any run size: rows are read from a server-side cursor in chunks
and each chunk is written before the next is read.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import numpy as np
from sqlalchemy.orm import Session

from posterlab.errors import InputError
from posterlab.manifest.fields import parse_year
from posterlab.storage.models import SCALAR_COLUMNS, Run
from posterlab.storage.queries import results_select
from posterlab.storage.vectors import unpack_vectors

if TYPE_CHECKING:  # pandas is imported by the functions that build frames, when called
    import pandas as pd

LEADING = ("imdb_id", "title", "score", "genres", "status", "error", "face_count",
           "prominent_faces")
CONTRACT_SCALARS = ("mean_r", "mean_g", "mean_b", "mean_h", "mean_s", "mean_v",
                    "brightness", "contrast", "colorfulness")
COLUMNS: tuple[str, ...] = (
    *LEADING, *CONTRACT_SCALARS, "year",  # release year, from the title's "(YYYY)"
    *(c for c in SCALAR_COLUMNS if c not in CONTRACT_SCALARS),
    "sha256", "manifest_row",
)
VECTOR_COLUMNS = ("grey_hist", "rgb_hist", "lbp_hist", "dominant_colors", "hog")
FORMATS = ("csv", "parquet", "json")
CHUNK = 5000  # rows per chunk: ~10 MB of frame with vectors


def iter_results(session: Session, run: Run, *, vectors: bool = False,
                 columns: Sequence[str] | None = None, chunk_size: int = CHUNK
                 ) -> Iterator[pd.DataFrame]:
    """Yield the run's results, one DataFrame of at most ``chunk_size`` rows at a time."""
    wanted = _check_columns(columns, vectors)
    result = session.execute(results_select(run).execution_options(yield_per=chunk_size))
    for part in result.partitions(chunk_size):
        yield _frame([r._mapping for r in part], wanted, vectors)


def results_frame(session: Session, run: Run, *, vectors: bool = True) -> pd.DataFrame:
    """The whole run as one DataFrame (for notebooks and the analysis)."""
    import pandas as pd

    frames = list(iter_results(session, run, vectors=vectors))
    if not frames:
        return _frame([], _check_columns(None, vectors), vectors)
    return pd.concat(frames, ignore_index=True)


def _check_columns(columns: Sequence[str] | None, vectors: bool) -> list[str]:
    known = list(COLUMNS) + (list(VECTOR_COLUMNS) if vectors else [])
    if not columns:
        return known
    unknown = [c for c in columns if c not in COLUMNS and c not in VECTOR_COLUMNS]
    if unknown:
        raise InputError(f"unknown export columns {unknown}; choose from {', '.join(known)}")
    return list(columns)


def _frame(rows: list[Any], wanted: list[str], vectors: bool) -> pd.DataFrame:
    import pandas as pd

    records = []
    for m in rows:
        rec = {c: m[c] for c in SCALAR_COLUMNS}
        rec.update(imdb_id=m["imdb_id"], title=m["title"], year=parse_year(m["title"]),
                   score=m["score"],
                   genres=m["genres"], status=m["status"], error=m["error"] or "",
                   face_count=m["face_count"], prominent_faces=m["prominent_faces"],
                   sha256=m["sha256"], manifest_row=m["row"])
        if vectors:
            vecs = unpack_vectors(m["vectors"]) if m["vectors"] else {}
            for name in VECTOR_COLUMNS:
                v = vecs.get(name)
                rec[name] = v.ravel() if v is not None else None
        records.append(rec)
    frame = pd.DataFrame.from_records(records, columns=[*COLUMNS, *VECTOR_COLUMNS] if vectors
                                      else list(COLUMNS))
    frame["face_count"] = frame["face_count"].astype("Int64")
    frame["year"] = frame["year"].astype("Int64")
    frame["prominent_faces"] = frame["prominent_faces"].astype("Int64")
    frame["manifest_row"] = frame["manifest_row"].astype("Int64")
    return frame[wanted]


# OWASP, CSV injection: a cell starting with one of these is a formula to a spreadsheet
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value: Any) -> Any:
    """A text cell a spreadsheet will not run: a leading ``=``, ``+``, ``-``, ``@``, tab
    or CR gets a single quote before it (OWASP's advice). Other values are unchanged.

    >>> neutralise("=1+2"), neutralise("-30-"), neutralise("Up"), neutralise(-1.5)
    ("'=1+2", "'-30-", 'Up', -1.5)
    """
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def neutralised(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with every text column passed through :func:`neutralise` (numbers stay
    numbers: a negative score is not a formula)."""
    import pandas as pd

    text = [c for c in frame.columns
            if frame[c].dtype == object or pd.api.types.is_string_dtype(frame[c].dtype)]
    if not text:
        return frame
    return frame.assign(**{c: frame[c].map(neutralise) for c in text})


def write_export(frames: Iterator[pd.DataFrame], fmt: str, out: str | Path | None, *,
                 raw: bool = False) -> int:
    """Write chunks to ``out`` (stdout when None or "-"); returns the number of rows.

    CSV text cells are :func:`neutralise`-d unless ``raw`` (the exact text, for programs
    rather than spreadsheets); Parquet and JSON always keep the exact text.
    """
    if fmt == "csv" and not raw:
        frames = (neutralised(frame) for frame in frames)
    if fmt not in FORMATS:
        raise InputError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if fmt == "parquet":
        if out in (None, "-"):
            raise InputError("parquet is binary: give --out FILE")
        return _write_parquet(frames, Path(str(out)))
    if out in (None, "-"):
        return _write_text(frames, fmt, sys.stdout)
    with open(str(out), "w", encoding="utf-8", newline="") as fh:
        return _write_text(frames, fmt, fh)


def _write_text(frames: Iterator[pd.DataFrame], fmt: str, fh: IO[str]) -> int:
    total = 0
    for i, frame in enumerate(frames):
        if fmt == "csv":
            frame.to_csv(fh, header=(i == 0), index=False)
        else:  # JSON lines: one object a row, streamable and pandas-readable (lines=True)
            for rec in frame.to_dict(orient="records"):
                fh.write(json.dumps({k: _jsonable(v) for k, v in rec.items()}) + "\n")
        total += len(frame)
    if total == 0 and fmt == "csv":
        fh.write(",".join(COLUMNS) + "\n")
    return total


def _write_parquet(frames: Iterator[pd.DataFrame], out: Path) -> int:
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    writer = None
    total = 0
    try:
        for frame in frames:
            for col in VECTOR_COLUMNS:
                if col in frame:
                    frame[col] = frame[col].map(lambda v: None if v is None else v.tolist())
            table = pa.Table.from_pandas(frame, preserve_index=False)
            if writer is None:
                writer = pq.ParquetWriter(out, table.schema)
            else:
                table = table.cast(writer.schema)
            writer.write_table(table)
            total += len(frame)
    finally:
        if writer is not None:
            writer.close()
    if writer is None:
        pd.DataFrame(columns=list(COLUMNS)).to_parquet(out, index=False)
    return total


def _jsonable(value: Any) -> Any:
    import pandas as pd

    if isinstance(value, np.ndarray):
        return [float(x) for x in value]
    if isinstance(value, (np.floating, float)):
        return None if math.isnan(value) else float(value)
    if isinstance(value, np.integer):
        return int(value)
    if value is pd.NA or value is pd.NaT:
        return None
    return value
