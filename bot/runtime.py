"""The app's long-lived parts, built once by create_app and handed to views, CLI and worker."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy.orm import Session

from bot import outbox, quota
from bot.clock import Clock
from bot.config import Config
from bot.db import Database
from bot.line_client import LineClient
from bot.models import StaffNotice
from bot.render import Renderer, load_labels, load_vocabulary
from bot.services import push_hours, staleness

FORM_SALT = "madoguchi-form"


@dataclass
class Runtime:
    config: Config
    db: Database
    offices: dict
    clock: Clock
    line: LineClient
    renderer: Renderer = field(default_factory=lambda: Renderer({}))
    extras: dict = field(default_factory=dict)

    # -- conversation helpers -----------------------------------------------------------------
    def button_labels(self, language: str) -> dict[str, str]:
        return load_labels(language)["buttons"]

    def vocabulary(self, language: str):
        return load_vocabulary(language)

    def template_globals(self, office, conv) -> dict[str, Any]:
        return {
            "office": office,
            "public_base_url": self.config.public_base_url,
            "terms_url": f"{self.config.public_base_url}/terms/{office.id}",
        }

    def enabled_office(self, office_id: str):
        office = self.offices.get(office_id)
        return office if office is not None and office.enabled else None

    # -- the form link ------------------------------------------------------------------------
    def _serializer(self) -> URLSafeTimedSerializer:
        return URLSafeTimedSerializer(self.config.secret_key, salt=FORM_SALT)

    def form_url(self, office_id: str, conversation_id: int, nonce: str) -> str:
        token = self._serializer().dumps({"o": office_id, "c": conversation_id, "n": nonce})
        return f"{self.config.public_base_url}/form/{token}"

    def read_form_token(self, token: str, max_age: int = 24 * 3600) -> dict | None:
        try:
            data = self._serializer().loads(token, max_age=max_age)
        except (BadSignature, SignatureExpired):
            return None
        return data if isinstance(data, dict) else None

    # -- staff ---------------------------------------------------------------------------------
    def notify_staff(self, session: Session, office, kind: str, booking_id: int, now) -> None:
        """Record a handoff for the office's staff (dashboard), in the caller's transaction."""
        session.add(StaffNotice(office_id=office.id, kind=kind, booking_id=booking_id, created_at=now))
        handler = self.extras.get("staff_cards")
        if handler is not None:
            handler(session, office, kind, booking_id, now)

    def staff_postback(self, session: Session, office, event, now) -> list[int]:
        handler = self.extras.get("staff_postback")
        return handler(session, office, event, now) if handler is not None else []

    def staff_rejoined(self, session: Session, office, event, group_id: str, left_at, now) -> list:
        """The bot is back in the staff group it was removed from at `left_at`: the rows that tell the group."""
        handler = self.extras.get("staff_rejoined")
        return handler(session, office, event, group_id, left_at, now) if handler is not None else []

    def can_push(self, session: Session, row) -> bool:
        """Nothing is pushed to a user who unfollowed (groups are always allowed)."""
        from sqlalchemy import select

        from bot.models import Conversation

        if not row.recipient or not row.recipient.startswith("U"):
            return True
        followed = session.scalar(select(Conversation.followed).where(
            Conversation.office_id == row.office_id, Conversation.line_user_id == row.recipient))
        return followed is not False

    def sender(self) -> outbox.Sender:
        guard = quota.QuotaGuard(self.line, self.offices)

        def why_not(session: Session, row, now):
            # Out of date, or a staff card while the month's quota is down to the reserve for job seekers.
            return staleness.why_stale(session, row, now) or guard.why_not(row)

        return outbox.Sender(self.db, self.line, self.clock, can_push=self.can_push, why_stale=why_not,
                             hold_until=self.hold_until)

    def hold_until(self, session: Session, row, now):
        """Until when a message that is not urgent waits for its office's push hours (None: it may go now)."""
        return push_hours.hold_until(session, row, now, self.offices)
