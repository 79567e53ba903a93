"""index posters by (run_id, updated_at)

``posterlab status`` counts a run's recent completions and the workers seen lately;
without this index both read every poster of the run (a million rows on a big run).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02 14:00:00
"""

from __future__ import annotations

from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('posters', schema=None) as batch_op:
        batch_op.create_index('ix_posters_run_updated', ['run_id', 'updated_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('posters', schema=None) as batch_op:
        batch_op.drop_index('ix_posters_run_updated')
