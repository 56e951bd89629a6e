"""indexes for the worker's jobs, which read every office's rows every few seconds

A pass of the jobs (every 5 s) looks, across every office, for what is due: requests whose slot began, closed
requests old enough to delete, receipts not yet shown, details, notes and memos to erase, sent messages to
delete, users who unfollowed long ago. Without these indexes each of those read the whole table (the year's
bookings, the audit log, the outbox) on every pass; with them each reads the few rows it acts on.

- bookings (status, slot_start): requests still undecided when their slot begins; closed requests to delete.
- bookings (slot_start) where details / staff_note are set: what the retention purge erases (most rows of a
  year have none left).
- bookings (id) where receipt_pending: receipts not yet shown in chat.
- staff_audit (booking_id) where a memo is kept: the memos erased with the details.
- outbox (created_at): finished messages deleted after `outbox_days`.
- conversations (id) where the user unfollowed and is not forgotten yet: users to forget.

The partial indexes' conditions are the jobs' own, written as literals in their queries, so that a prepared
statement's plan uses them too. Created in place (no table copy), as in 0019.

Revision ID: 0021_worker_job_indexes
Revises: 0020_terms_corrections
"""
from alembic import op
import sqlalchemy as sa

revision = "0021_worker_job_indexes"
down_revision = "0020_terms_corrections"
branch_labels = None
depends_on = None

PARTIAL = {  # name: (table, columns, condition)
    "ix_bookings_details_kept": ("bookings", ["slot_start"], "details IS NOT NULL"),
    "ix_bookings_noted": ("bookings", ["slot_start"], "staff_note IS NOT NULL"),
    "ix_bookings_receipt_pending": ("bookings", ["id"], "receipt_pending IS true"),
    "ix_staff_audit_noted": ("staff_audit", ["booking_id"], "note IS NOT NULL"),
    "ix_conversations_to_forget": ("conversations", ["id"], "followed IS false AND line_user_id NOT LIKE 'forgotten:%'"),
}


def upgrade() -> None:
    op.create_index("ix_bookings_status_slot", "bookings", ["status", "slot_start"])
    op.create_index("ix_outbox_created_at", "outbox", ["created_at"])
    for name, (table, columns, condition) in PARTIAL.items():
        op.create_index(name, table, columns, postgresql_where=sa.text(condition), sqlite_where=sa.text(condition))


def downgrade() -> None:
    for name, (table, _, _) in reversed(PARTIAL.items()):
        op.drop_index(name, table_name=table)
    op.drop_index("ix_outbox_created_at", table_name="outbox")
    op.drop_index("ix_bookings_status_slot", table_name="bookings")
