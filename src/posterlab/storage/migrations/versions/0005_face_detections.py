"""faces: prominent count, image height, every detection; posters: prominent count

A face-detection answer keeps, beside the count and the counted boxes, how many faces are
at least 1/10 of the image's height and every detection with its score (counted or not),
so that counts at other thresholds are made without detecting again. Answers cached
before this revision keep NULL there.

Revision ID: 0005_face_detections
Revises: 0004_leases
Create Date: 2026-12-02 17:50:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0005_face_detections'
down_revision = '0004_leases'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('faces', schema=None) as batch_op:
        batch_op.add_column(sa.Column('prominent_faces', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('image_height', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('detections', sa.JSON(), nullable=True))
    with op.batch_alter_table('posters', schema=None) as batch_op:
        batch_op.add_column(sa.Column('prominent_faces', sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('posters', schema=None) as batch_op:
        batch_op.drop_column('prominent_faces')
    with op.batch_alter_table('faces', schema=None) as batch_op:
        batch_op.drop_column('detections')
        batch_op.drop_column('image_height')
        batch_op.drop_column('prominent_faces')
