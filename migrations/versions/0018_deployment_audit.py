"""deployment-wide audit entries: an audit row may belong to no office

Lifting a client address's login throttle (`staff unthrottle`) concerns no one office: the throttle counts an
address whatever office its logins are for. Its audit row has no office (NULL), and every office's audit page
shows it.

Revision ID: 0018_deployment_audit
Revises: 0017_booking_closed_at
"""
from alembic import op
import sqlalchemy as sa

revision = "0018_deployment_audit"
down_revision = "0017_booking_closed_at"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("staff_audit") as batch:
        batch.alter_column("office_id", existing_type=sa.String(length=32), nullable=True)


def downgrade() -> None:
    # The older schema has no place for an entry of no office.
    op.execute(sa.text("DELETE FROM staff_audit WHERE office_id IS NULL"))
    with op.batch_alter_table("staff_audit") as batch:
        batch.alter_column("office_id", existing_type=sa.String(length=32), nullable=False)
