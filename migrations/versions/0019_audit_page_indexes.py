"""indexes for the audit page's paging and its 受付番号 filter

The 操作記録 page reads an office's entries (with the whole deployment's) newest first, 100 at a time, keyed on
(at, id), and can narrow them to one booking's reference. An index on (office_id, at, id) serves the paging and
one on (office_id, reference) the filter, so that neither reads the whole log as it grows.

Revision ID: 0019_audit_page_indexes
Revises: 0018_deployment_audit
"""
from alembic import op

revision = "0019_audit_page_indexes"
down_revision = "0018_deployment_audit"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_staff_audit_office_at", "staff_audit", ["office_id", "at", "id"])
    op.create_index("ix_staff_audit_office_reference", "staff_audit", ["office_id", "reference"])


def downgrade() -> None:
    op.drop_index("ix_staff_audit_office_reference", table_name="staff_audit")
    op.drop_index("ix_staff_audit_office_at", table_name="staff_audit")
