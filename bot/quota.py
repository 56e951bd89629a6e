"""The month's message quota nearly used up: the job seekers' messages come first.

A push counts against the office's monthly quota, a push to the staff group once per member (README "Monthly
message cost"). Once LINE refuses for the quota, every push waits (held) until the next month or a larger plan:
a confirmation or a reminder would then be lost to a staff card sent just before. So when fewer than the
profile's `quota_reserve` messages are left, a staff-group card is not pushed: it is dropped like a message gone
out of date (reason `quota_reserved`, listed on LINE送信状況), as the dashboard shows every handoff anyway, and
what is left goes to the job seekers. With nothing left, LINE refuses every push and cards are held with the rest
(they all go if the office chooses a larger plan, less those gone out of date). The quota is asked of LINE at most once per CHECK_EVERY per office and
worker pass loop, only when a card is about to go; when LINE does not answer, the card goes. It asks LINE (through
the client it is given), so it sits beside the outbox and not in bot/services, whose rules never talk to LINE.
"""
from __future__ import annotations

import logging
import time

from bot.models import OutboxMessage
from bot.services.staleness import QUOTA_RESERVED   # the reason, listed with the others for the dashboard

log = logging.getLogger(__name__)

CHECK_EVERY = 300.0   # seconds a quota reading is used for


class QuotaGuard:
    def __init__(self, client, offices) -> None:
        self.client = client
        self.offices = offices
        self._left: dict[str, tuple[float, int | None]] = {}

    def why_not(self, row: OutboxMessage) -> str | None:
        """QUOTA_RESERVED when `row` is a staff-group card and the office's quota is down to its reserve."""
        if row.kind != "push" or row.purpose != "staff_card":
            return None
        office = self.offices.get(row.office_id)
        if office is None or not office.quota_reserve:
            return None
        left = self.left(office.id)
        # None left: LINE refuses every push, and a card is held with the rest (a larger plan sends them all).
        return QUOTA_RESERVED if left is not None and 0 < left < office.quota_reserve else None

    def left(self, office_id: str) -> int | None:
        """Messages left this month (None: unlimited, or LINE did not say)."""
        checked = self._left.get(office_id)
        if checked is not None and time.monotonic() - checked[0] < CHECK_EVERY:
            return checked[1]
        try:
            limit, used = self.client.remaining_quota(office_id)
            left = None if limit is None else limit - used
        except Exception as exc:  # noqa: BLE001 - unknown: the card goes as before
            log.warning("office=%s monthly quota unknown (%s): staff cards go", office_id, type(exc).__name__)
            left = None
        self._left[office_id] = (time.monotonic(), left)
        return left
