"""The dialog's ports, implemented over one database session (no commits, no LINE calls)."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from bot.models import Conversation
from bot.services import bookings, holds, terms
from bot.services.slot_text import read_slot_text
from dialogs.ports import TypedSlot


class SessionPorts:
    """Everything a dialog step may ask, for one conversation during one event."""

    def __init__(self, session: Session, runtime, office, conv: Conversation, now: datetime,
                 event_id: str = ""):
        self.s = session
        self.rt = runtime
        self.office = office
        self.conv = conv
        self.now = now
        self.event_id = event_id

    # -- terms --------------------------------------------------------------------------------
    def _current_terms(self):
        version = terms.current_version(self.s, self.office.id, self.now.date())
        return version or self.office.current_terms.version

    def terms_version(self) -> str:
        if not hasattr(self, "_terms_version"):
            self._terms_version = self._current_terms()
        return self._terms_version

    def terms_url(self, version: str) -> str:
        return f"{self.rt.config.public_base_url}/terms/{self.office.id}/{version}"

    def has_consented(self, version: str) -> bool:
        return terms.has_consented(self.s, self.conv.id, version)

    def consented_version(self) -> str | None:
        return terms.latest_consented_version(self.s, self.conv.id)

    def upcoming_terms(self) -> dict[str, Any] | None:
        found = terms.upcoming(self.s, self.office.id, self.now.date())
        if found is None:
            return None
        return {"version": found[0], "summary": found[1], "url": self.terms_url(found[0])}

    def terms_changes(self, since: str | None, version: str) -> tuple[list[dict], bool]:
        return terms.changes_since(self.s, self.office.id, since, version)

    def record_consent(self, version: str, method: str) -> None:
        terms.record_consent(self.s, self.conv, version, now=self.now, event_id=self.event_id,
                             method="text" if method == "text" else "button")

    # -- the user -----------------------------------------------------------------------------
    def set_followed(self, followed: bool) -> None:
        self.conv.followed = followed

    def set_language(self, language: str) -> None:
        self.conv.language = language

    def booking_blocked(self) -> bool:
        return bool(self.conv.booking_blocked)

    # -- bookings -----------------------------------------------------------------------------
    def bookings(self) -> list[dict[str, Any]]:
        return bookings.summaries(self.s, self.office, self.conv, self.now)

    def open_booking(self) -> dict[str, Any] | None:
        return bookings.open_summary(self.s, self.office, self.conv, self.now)

    def withdraw(self, reference: str, offered: str | None = None, *, confirmed: bool,
                 asked_status: str | None = None) -> dict[str, Any]:
        return bookings.withdraw_in_chat(self.s, self.rt, self.office, self.conv, reference, self.now, offered,
                                         confirmed=confirmed, asked_status=asked_status)

    def delete_personal_data(self) -> dict[str, Any]:
        return bookings.delete_personal_data(self.s, self.rt, self.office, self.conv, self.now)

    def receipt(self) -> dict[str, Any] | None:
        return bookings.take_receipt(self.s, self.office, self.conv, self.now)

    def answer_proposal(self, reference: str, accept: bool) -> dict[str, Any]:
        from bot.staff import decisions

        return decisions.answer_proposal(self.s, self.rt, self.office, self.conv, reference, accept, self.now)

    # -- slots --------------------------------------------------------------------------------
    def week(self, index: int, page: int = 0) -> dict[str, Any]:
        return holds.week_page(self.s, self.office, self.now, index, page)

    def hold(self, start_iso: str) -> dict[str, Any]:
        return holds.hold(self.s, self.rt, self.office, self.conv, start_iso, self.now)

    def release_hold(self) -> None:
        holds.release(self.s, self.conv)

    def held_slot(self) -> dict[str, Any] | None:
        return holds.held(self.s, self.rt, self.office, self.conv, self.now)

    def hold_ran_out(self) -> bool:
        return holds.ran_out(self.s, self.conv, self.now)

    def read_slot(self, text: str) -> TypedSlot:
        reading = read_slot_text(text, self.now)
        return TypedSlot(start=reading.start.isoformat() if reading.start else None, declined=reading.declined,
                         closed_day=holds.closed_day(self.office, reading.day) if reading.day else None,
                         time=reading.time.strftime("%H:%M") if reading.time else None)
