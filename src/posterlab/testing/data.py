"""Small manifests cut from the real data, and rows read back from a run's database.

The manifests are copies of the first rows of ``../shared/data/posters/index.csv`` with
their posters beside them, so a test or a benchmark can write next to them freely.
"""

from __future__ import annotations

import csv
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

# Engines of poster_counts, kept across calls: a benchmark polls it every second or so,
# and a new engine (and connection) per poll would be most of the poll's cost.
_engines: dict[str, Any] = {}


def sample_manifest(data_dir: Path, out: Path, n: int, *, distinct: bool = False,
                    cycle: bool = False) -> Path:
    """The first ``n`` rows of ``posters/index.csv``, their posters copied beside it.

    Parameters
    ----------
    data_dir : Path
        The real data set (``../shared/data``).
    out : Path
        Folder of the new manifest; its ``posters/`` is created.
    n : int
        Rows to copy (fewer when the index has fewer).
    distinct : bool
        Give every copy a few distinct bytes after the JPEG's end, so all files have a
        distinct sha256 (posterlab caches features and faces by sha256, and the shared
        set holds byte-identical duplicates) while they decode to the same pixels.
    cycle : bool
        Past the index's last row, start again from its first with new ids (the old id
        plus a multiple of 10**8) and new files: as many rows as asked, for scale runs.

    Returns
    -------
    Path
        ``out / "index.csv"``, latin-1 like the original.
    """
    src = data_dir / "posters" / "index.csv"
    (out / "posters").mkdir(parents=True, exist_ok=True)
    nonce = uuid.uuid4().hex.encode()
    target = out / "index.csv"
    # index.csv is latin-1 (it carries MovieGenre.csv's bytes): copy it byte for byte
    with open(src, newline="", encoding="latin-1") as fin, \
            open(target, "w", newline="", encoding="latin-1") as fout:
        reader = csv.DictReader(fin)
        writer = csv.DictWriter(fout, fieldnames=reader.fieldnames or [])
        writer.writeheader()
        for i, row in enumerate(_rows(reader, n, cycle)):
            source, poster = row.pop("_source"), row["poster_file"]  # new name past a round
            if distinct:
                body = (data_dir / "posters" / source).read_bytes()
                (out / poster).write_bytes(body + b"posterlab-bench:" + nonce + b":%d" % i)
            else:
                shutil.copyfile(data_dir / "posters" / source, out / poster)
            writer.writerow(row)
    return target


def _rows(reader: csv.DictReader[str], n: int, cycle: bool) -> Iterator[dict[str, str]]:
    """``n`` rows of the index (fewer without ``cycle``), each with ``_source``: the poster
    file to copy; later rounds get new ids and file names."""
    rows = list(reader)
    total = n if cycle else min(n, len(rows))
    for i in range(total):
        row = dict(rows[i % len(rows)])
        row["_source"] = row["poster_file"]
        if i >= len(rows):
            new_id = str(int(row["imdbId"]) + (i // len(rows)) * 10**8)
            row["imdbId"], row["poster_file"] = new_id, f"posters/{new_id}.jpg"
            row["Imdb Link"] = f"http://www.imdb.com/title/tt{new_id}"
        yield row


def count_csv_rows(path: Path) -> int:
    """Data rows of a latin-1 CSV file (quoted newlines counted correctly)."""
    with open(path, newline="", encoding="latin-1") as fh:
        return sum(1 for _ in csv.reader(fh)) - 1


def manifest_posters(manifest: Path) -> list[Path]:
    """The poster files a manifest names, as paths beside it."""
    with open(manifest, newline="", encoding="latin-1") as fh:
        return [manifest.parent / row["poster_file"] for row in csv.DictReader(fh)]


def fresh_dir(path: Path) -> Path:
    """``path`` as a new empty folder (whatever was there is removed)."""
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


def rows(db_url: str, sql: str, **params: Any) -> list[dict[str, Any]]:
    """The rows of one SQL query on ``db_url``, as dicts, through a read-only engine.

    Examples
    --------
    >>> rows(db_url, "select name from runs where name = :n", n="demo")  # doctest: +SKIP
    [{'name': 'demo'}]
    """
    import sqlalchemy as sa

    from posterlab.storage.engine import make_engine

    engine = make_engine(db_url, readonly=True)
    try:
        with engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(sa.text(sql), params)]
    finally:
        engine.dispose()


def poster_counts(db_url: str, run: str | None = None) -> dict[str, int]:
    """Posters per status of a run (the latest when ``run`` is None), read directly.

    A cheap read used for polling: a ``posterlab status`` subprocess costs about a
    second of CPU, which on a two-core machine would be taken from the workers. The
    engine is kept until :func:`dispose_engines`.
    """
    import sqlalchemy as sa

    from posterlab.storage.engine import make_engine

    engine = _engines.get(db_url)
    if engine is None:
        engine = _engines[db_url] = make_engine(db_url, readonly=True)
    where = "r.name = :run" if run else "r.id = (select max(id) from runs)"
    sql = sa.text("select p.status, count(*) from posters p join runs r on r.id = p.run_id "
                  f"where {where} group by p.status")
    with engine.connect() as conn:
        return {status: int(n) for status, n in conn.execute(sql, {"run": run})}


def dispose_engines() -> None:
    """Dispose of the engines :func:`poster_counts` kept."""
    for engine in _engines.values():
        engine.dispose()
    _engines.clear()
