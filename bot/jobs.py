"""Scheduled jobs the worker runs; each idempotent and driven by the app clock."""
from __future__ import annotations

from datetime import timedelta

from bot import booking_jobs
from bot.staff import jobs as staff_jobs

DEDUPE_KEEP = timedelta(days=7)


def run_due(rt) -> dict[str, int]:
    now = rt.clock.now()
    figures: dict[str, int] = {}
    # Holds that ran out stay until the retention purge (`drafts_days`): a form sent late may still take
    # its slot if nobody else did (`holds.revive`); they count for nothing meanwhile.
    # Reminders, attendance prompts and retention (dedupe rows included, per office profile).
    figures.update(staff_jobs.run_due(rt))
    # Receipts not yet seen, undecided requests whose slot began, used form links.
    figures.update(booking_jobs.run_due(rt))
    return figures
