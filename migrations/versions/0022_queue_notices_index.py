"""an index for the 対応待ち page's latest notices

The queue page shows an office's 50 newest staff notices, newest first, with each one's booking. Found by
office only, every notice of the office was sorted, and joined to the bookings of every office (read whole: 40,000
rows for a year of a national deployment) on every load. An index on (office_id, created_at, id) gives the 50 in
order, and each booking is then read by its key.

Revision ID: 0022_queue_notices_index
Revises: 0021_worker_job_indexes
"""
from alembic import op

revision = "0022_queue_notices_index"
down_revision = "0021_worker_job_indexes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_staff_notices_office_created", "staff_notices", ["office_id", "created_at", "id"])


def downgrade() -> None:
    op.drop_index("ix_staff_notices_office_created", table_name="staff_notices")
