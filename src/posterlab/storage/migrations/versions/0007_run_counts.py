"""a run's posters counted by status, kept by the database itself

``posterlab status`` and the dashboard read a run's counts per state and its face-API
totals many times a minute; counted from ``posters`` that is a scan of every poster of
the run (0.2-0.6 s at a million). Triggers on ``posters`` keep ``run_counts`` instead, so
every path that inserts, moves or deletes posters (whoever wrote it) is counted, and a
read touches a handful of rows.

- SQLite (one writer at a time): row triggers keep one row per (run, status).
- PostgreSQL (many writers): statement triggers over the transition tables *append*
  one delta row per (run, status) a statement changed, so concurrent workers never wait
  on one hot row nor deadlock on two; readers sum the deltas and fold them into one row
  per status now and then (``storage.counts.compact``).

Revision ID: 0007_run_counts
Revises: 0006_workers
Create Date: 2026-12-02 17:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0007_run_counts'
down_revision = '0006_workers'
branch_labels = None
depends_on = None

FIGURES = ("api_calls", "cache_hits", "rate_limited", "retries")


def upgrade() -> None:
    op.create_table(
        'run_counts',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('run_id', sa.Integer(), nullable=False),
        sa.Column('status', sa.String(length=20), nullable=False),
        sa.Column('n', sa.Integer(), nullable=False),
        *(sa.Column(name, sa.Integer(), nullable=False) for name in FIGURES),
        sa.ForeignKeyConstraint(['run_id'], ['runs.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_run_counts_run_status', 'run_counts', ['run_id', 'status'])
    statements = (_sqlite_triggers() if op.get_bind().dialect.name == "sqlite"
                  else _postgresql_triggers())
    for sql in statements:
        op.execute(sql)
    op.execute(
        "INSERT INTO run_counts (run_id, status, n, " + ", ".join(FIGURES) + ") "
        "SELECT run_id, status, count(*), " + ", ".join(f"sum({f})" for f in FIGURES)
        + " FROM posters GROUP BY run_id, status")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for name in ("insert", "update", "delete"):
            op.execute(f"DROP TRIGGER IF EXISTS posters_count_{name}")
    else:
        for name in ("insert", "update", "delete"):
            op.execute(f"DROP TRIGGER IF EXISTS posters_count_{name} ON posters")
        op.execute("DROP FUNCTION IF EXISTS posterlab_count_posters()")
    op.drop_index('ix_run_counts_run_status', table_name='run_counts')
    op.drop_table('run_counts')


def _sqlite_add(row: str, sign: str) -> str:
    """Add ``row``'s (NEW or OLD) poster to its (run, status) row, creating it if new."""
    sets = ", ".join(f"{f} = {f} {sign} {row}.{f}" for f in FIGURES)
    values = ", ".join(f"{sign}{row}.{f}" for f in FIGURES)
    return (
        f"UPDATE run_counts SET n = n {sign} 1, {sets} "
        f"WHERE run_id = {row}.run_id AND status = {row}.status; "
        f"INSERT INTO run_counts (run_id, status, n, {', '.join(FIGURES)}) "
        f"SELECT {row}.run_id, {row}.status, {sign}1, {values} "
        f"WHERE EXISTS (SELECT 1 FROM runs WHERE id = {row}.run_id) AND NOT EXISTS "
        f"(SELECT 1 FROM run_counts WHERE run_id = {row}.run_id AND status = {row}.status);"
    )


def _sqlite_triggers() -> list[str]:
    changed = " OR ".join(f"OLD.{c} IS NOT NEW.{c}" for c in ("status", "run_id", *FIGURES))
    return [
        f"CREATE TRIGGER posters_count_insert AFTER INSERT ON posters BEGIN "
        f"{_sqlite_add('NEW', '+')} END",
        f"CREATE TRIGGER posters_count_update AFTER UPDATE OF status, run_id, "
        f"{', '.join(FIGURES)} ON posters WHEN {changed} BEGIN "
        f"{_sqlite_add('OLD', '-')} {_sqlite_add('NEW', '+')} END",
        f"CREATE TRIGGER posters_count_delete AFTER DELETE ON posters BEGIN "
        f"{_sqlite_add('OLD', '-')} END",
    ]


def _postgresql_triggers() -> list[str]:
    cols = ", ".join(FIGURES)
    sums = ", ".join(f"sum({f})" for f in FIGURES)
    negated = ", ".join(f"-{f}" for f in FIGURES)
    nonzero = " OR ".join(f"sum({f}) <> 0" for f in ("n", *FIGURES))
    insert = f"INSERT INTO run_counts (run_id, status, n, {cols}) "
    live = "WHERE EXISTS (SELECT 1 FROM runs WHERE runs.id = d.run_id)"
    function = f"""
CREATE FUNCTION posterlab_count_posters() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    {insert} SELECT run_id, status, count(*), {sums} FROM new_rows
      GROUP BY run_id, status;
  ELSIF TG_OP = 'UPDATE' THEN
    {insert} SELECT run_id, status, sum(n), {sums} FROM (
        SELECT run_id, status, 1 AS n, {cols} FROM new_rows
        UNION ALL SELECT run_id, status, -1, {negated} FROM old_rows) d {live}
      GROUP BY run_id, status HAVING {nonzero};
  ELSE
    {insert} SELECT run_id, status, -count(*), {", ".join(f"-sum({f})" for f in FIGURES)}
      FROM old_rows d {live} GROUP BY run_id, status;
  END IF;
  RETURN NULL;
END $$"""
    each = "FOR EACH STATEMENT EXECUTE FUNCTION posterlab_count_posters()"
    return [
        function,
        f"CREATE TRIGGER posters_count_insert AFTER INSERT ON posters "
        f"REFERENCING NEW TABLE AS new_rows {each}",
        f"CREATE TRIGGER posters_count_update AFTER UPDATE ON posters "
        f"REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows {each}",
        f"CREATE TRIGGER posters_count_delete AFTER DELETE ON posters "
        f"REFERENCING OLD TABLE AS old_rows {each}",
    ]
