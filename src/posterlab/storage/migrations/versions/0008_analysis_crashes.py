"""runs.analysis_crashes: deliveries of an analysis that found it already running

A worker process that dies in a run's analysis (out of memory, a native crash) leaves it
``running`` and the broker hands its message out again. Counting those deliveries lets
the analysis fail ``worker-crashed`` after ``POSTERLAB_MAX_CRASHES`` of them, as a
poster does, instead of killing every worker it reaches.

Revision ID: 0008_analysis_crashes
Revises: 0007_run_counts
Create Date: 2026-12-03 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0008_analysis_crashes'
down_revision = '0007_run_counts'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('runs', sa.Column('analysis_crashes', sa.Integer(), nullable=False,
                                    server_default='0'))


def downgrade() -> None:
    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.drop_column('analysis_crashes')
