"""posters.deferred: posters waiting in the database for room in their queue

A queue holds at most ``POSTERLAB_MAX_QUEUED`` messages; the posters that do not fit are
marked ``deferred`` and published when the queue drains. A partial index finds them
without reading the run's other posters.

Revision ID: 0003_deferred
Revises: 0002
Create Date: 2026-12-02 17:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0003_deferred'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('posters', schema=None) as batch_op:
        batch_op.add_column(sa.Column('deferred', sa.Boolean(), nullable=False,
                                      server_default=sa.false()))
    op.create_index('ix_posters_deferred', 'posters', ['status', 'id'], unique=False,
                    sqlite_where=sa.text('deferred'), postgresql_where=sa.text('deferred'))


def downgrade() -> None:
    op.drop_index('ix_posters_deferred', table_name='posters')
    with op.batch_alter_table('posters', schema=None) as batch_op:
        batch_op.drop_column('deferred')
