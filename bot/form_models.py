"""Tables of the details form (issue 5): which form link became which request."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from bot.models import Base


class FormSubmission(Base):
    """One completed form link (its hold nonce) and the request it created.

    Sending the same form twice finds this row and shows the same completion; the completion page
    reads the reference from here after the hold is gone.
    """

    __tablename__ = "form_submissions"
    nonce: Mapped[str] = mapped_column(String(32), primary_key=True)
    office_id: Mapped[str] = mapped_column(String(32))
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"), index=True)
    booking_id: Mapped[int] = mapped_column(ForeignKey("bookings.id", ondelete="CASCADE"), unique=True)
    created_at: Mapped[datetime] = mapped_column(index=True)
