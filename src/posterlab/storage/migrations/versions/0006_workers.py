"""workers heartbeat table and the results view

``posterlab worker`` writes a heartbeat row per node (``posterlab status`` lists the
workers); the ``results`` view joins posters, their run and their features, one row per
poster, for anyone querying the database with SQL.

Revision ID: 0006_workers
Revises: 0005_face_detections
Create Date: 2026-12-02 17:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_workers"
down_revision = "0005_face_detections"
branch_labels = None
depends_on = None

# the scalar feature columns of the features table as of this revision (frozen here: a
# migration describes the schema of its time, not whatever the code holds later)
FEATURES = ("mean_r", "mean_g", "mean_b", "mean_h", "mean_s", "mean_v",
            "std_r", "std_g", "std_b", "std_h", "std_s", "std_v",
            "brightness", "contrast", "colorfulness", "entropy", "edge_density",
            "sift_keypoints", "centre_x", "centre_y", "thirds", "width", "height", "aspect")

RESULTS_VIEW = f"""
CREATE VIEW results AS
SELECT r.name AS run, p.run_id, p.id AS poster_id, p.imdb_id, p.movie_key, p.row,
       p.title, p.score, p.genres, p.status, p.error_code, p.error, p.sha256,
       p.face_count, p.prominent_faces, {", ".join(f"f.{name}" for name in FEATURES)}
FROM posters p
JOIN runs r ON r.id = p.run_id
LEFT JOIN features f ON f.sha256 = p.sha256 AND f.feature_version = r.feature_version
"""


def upgrade() -> None:
    op.create_table(
        "workers",
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("hostname", sa.String(length=200), nullable=False),
        sa.Column("queues", sa.String(length=200), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("processes", sa.JSON(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    with op.batch_alter_table("workers", schema=None) as batch_op:
        batch_op.create_index("ix_workers_last_seen", ["last_seen"], unique=False)
    op.execute(RESULTS_VIEW)


def downgrade() -> None:
    op.execute("DROP VIEW IF EXISTS results")
    with op.batch_alter_table("workers", schema=None) as batch_op:
        batch_op.drop_index("ix_workers_last_seen")
    op.drop_table("workers")
