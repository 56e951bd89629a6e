"""Scheduled jobs the worker runs; each idempotent and driven by the app clock."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete

from bot.models import ProcessedEvent, SlotHold

DEDUPE_KEEP = timedelta(days=7)


def run_due(rt) -> dict[str, int]:
    now = rt.clock.now()
    figures: dict[str, int] = {}
    with rt.db.transaction() as s:
        figures["holds_expired"] = s.execute(delete(SlotHold).where(SlotHold.expires_at <= now)).rowcount or 0
        figures["dedupe_purged"] = s.execute(delete(ProcessedEvent).where(
            ProcessedEvent.received_at < now - DEDUPE_KEEP)).rowcount or 0
    return figures
