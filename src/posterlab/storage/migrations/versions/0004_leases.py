"""leases and crash accounting on the posters' claims

``lease_expires_at``: a worker's claim on a poster holds until then; the worker renews it
while it lives, and an expired lease is re-queued. ``deliveries``: deliveries of the
poster's current stage to a process that did not end in a recorded result (the process
died); the poster fails ``worker-crashed`` once it reaches ``POSTERLAB_MAX_CRASHES``.

Revision ID: 0004_leases
Revises: 0003_deferred
Create Date: 2026-12-02 17:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0004_leases'
down_revision = '0003_deferred'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('posters', schema=None) as batch_op:
        batch_op.add_column(sa.Column('lease_expires_at', sa.DateTime(timezone=True),
                                      nullable=True))
        batch_op.add_column(sa.Column('deliveries', sa.Integer(), nullable=False,
                                      server_default='0'))
        batch_op.create_index('ix_posters_lease', ['lease_expires_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('posters', schema=None) as batch_op:
        batch_op.drop_index('ix_posters_lease')
        batch_op.drop_column('deliveries')
        batch_op.drop_column('lease_expires_at')
