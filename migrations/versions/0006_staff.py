"""staff handoff: accounts, sessions, login failures, audit log, booking handoffs, job marks

Revision ID: 0006_staff
Revises: 0001
"""
from alembic import op
import sqlalchemy as sa
import bot.models

revision = "0006_staff"
down_revision = "0001"
branch_labels = None
depends_on = None

UTC = bot.models.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "staff_users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("office_id", sa.String(length=32), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("totp_secret", sa.String(length=255), nullable=True),
        sa.Column("totp_last_step", sa.Integer(), nullable=False),
        sa.Column("created_at", UTC, nullable=False),
        sa.Column("last_login_at", UTC, nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("username"),
    )
    op.create_index(op.f("ix_staff_users_office_id"), "staff_users", ["office_id"], unique=False)
    op.create_table(
        "staff_sessions",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("created_at", UTC, nullable=False),
        sa.Column("last_seen_at", UTC, nullable=False),
        sa.Column("ip", sa.String(length=45), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["staff_users.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_staff_sessions_user_id"), "staff_sessions", ["user_id"], unique=False)
    op.create_table(
        "staff_login_failures",
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("first_at", UTC, nullable=False),
        sa.Column("locked_until", UTC, nullable=True),
        sa.PrimaryKeyConstraint("username"),
    )
    op.create_table(
        "staff_audit",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("office_id", sa.String(length=32), nullable=False),
        sa.Column("at", UTC, nullable=False),
        sa.Column("actor", sa.String(length=80), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("line_member_id", sa.String(length=64), nullable=True),
        sa.Column("action", sa.String(length=40), nullable=False),
        sa.Column("booking_id", sa.Integer(), nullable=True),
        sa.Column("reference", sa.String(length=9), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("ip", sa.String(length=45), nullable=True),
        sa.ForeignKeyConstraint(["booking_id"], ["bookings.id"]),
        sa.ForeignKeyConstraint(["user_id"], ["staff_users.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_staff_audit_at"), "staff_audit", ["at"], unique=False)
    op.create_index(op.f("ix_staff_audit_booking_id"), "staff_audit", ["booking_id"], unique=False)
    op.create_index(op.f("ix_staff_audit_office_id"), "staff_audit", ["office_id"], unique=False)
    op.create_table(
        "booking_handoffs",
        sa.Column("booking_id", sa.Integer(), nullable=False),
        sa.Column("decline_reason", sa.String(length=40), nullable=True),
        sa.Column("proposed_from", UTC, nullable=True),
        sa.Column("call_needed", sa.Boolean(), nullable=False),
        sa.Column("called_at", UTC, nullable=True),
        sa.Column("override_reason", sa.String(length=200), nullable=True),
        sa.Column("updated_at", UTC, nullable=False),
        sa.ForeignKeyConstraint(["booking_id"], ["bookings.id"]),
        sa.PrimaryKeyConstraint("booking_id"),
    )
    op.create_table(
        "staff_job_marks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("job", sa.String(length=40), nullable=False),
        sa.Column("key", sa.String(length=80), nullable=False),
        sa.Column("created_at", UTC, nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("job", "key"),
    )
    op.create_index(op.f("ix_staff_job_marks_created_at"), "staff_job_marks", ["created_at"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_staff_job_marks_created_at"), table_name="staff_job_marks")
    op.drop_table("staff_job_marks")
    op.drop_table("booking_handoffs")
    op.drop_index(op.f("ix_staff_audit_office_id"), table_name="staff_audit")
    op.drop_index(op.f("ix_staff_audit_booking_id"), table_name="staff_audit")
    op.drop_index(op.f("ix_staff_audit_at"), table_name="staff_audit")
    op.drop_table("staff_audit")
    op.drop_table("staff_login_failures")
    op.drop_index(op.f("ix_staff_sessions_user_id"), table_name="staff_sessions")
    op.drop_table("staff_sessions")
    op.drop_index(op.f("ix_staff_users_office_id"), table_name="staff_users")
    op.drop_table("staff_users")
