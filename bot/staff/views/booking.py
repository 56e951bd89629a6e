"""One booking's page: what is needed to act on it, and its personal details while revealed."""
from __future__ import annotations

import logging
from datetime import datetime, timedelta

from flask import render_template

from bot.clock import TOKYO
from bot.models import Booking, Conversation
from bot.services import holds, requests, terms
from bot.services import slots as slotsvc
from bot.staff import audit, decisions, handoff, personal, undelivered
from bot.staff.models import BookingHandoff
from bot.staff.views import bp
from bot.staff.views.context import _booking_or_404, _office, _rt
from bot.staff.views.details import REVEAL_FOR, _holds_personal, _reveal, _revealed_until

log = logging.getLogger(__name__)

DETAIL_FIELDS = ("name", "name_kana", "birth_date", "seeker_number", "phone", "category", "consultation",
                 "companion", "companion_detail", "mypage_email_confirmed")


def _proposable(s, office, now: datetime, exclude: datetime) -> list:
    taken, blocked, blocked_days = holds.seats(s, office.id, now)
    found = slotsvc.available_slots(office, now, taken, blocked, blocked_days, limit=40)
    return [slot for slot in found if slot.start != exclude]


@bp.get("/bookings/<reference>")
def booking(reference: str):
    return _booking_page(reference)


def _booking_page(reference: str, note_draft: str | None = None, correction_draft: dict | None = None) -> str:
    """The booking's page; `note_draft`: a note that could not be saved, kept in the box beside the current one
    (which the member must read to merge: shown, as a reveal); `correction_draft`: an attendance correction sent
    without a usable reason, kept as chosen and typed. Personal details only while revealed in this session."""
    rt = _rt()
    office = _office()
    with rt.db.transaction() as s:
        now = rt.clock.now()
        row = _booking_or_404(s, reference)
        if note_draft is not None and row.staff_note is not None:
            _reveal(s, office, row, now)
        until = _revealed_until(s, row, now)
        details = personal.decrypt(rt, row.details) if until else None
        details_unreadable = until is not None and row.details is not None and details is None
        if details_unreadable:  # kept, but under a key no longer configured: not the same as erased
            log.error("booking=%s details open under no key in DATA_ENCRYPTION_KEY: add the key they were "
                      "written with after the newest (`flask --app app keys rotate` lists every such row)", row.id)
        conv = s.get(Conversation, row.conversation_id) if row.conversation_id else None
        entries = audit.for_booking(s, row.id)
        handed = s.get(BookingHandoff, row.id)
        note = personal.open_note(rt, row.staff_note) if until else None
        # What LINE has not delivered to the user about this booking: staff may need to phone instead.
        stuck = undelivered.of_booking(s, conv.line_user_id, row.reference, now) if conv else []
        no_shows, sessions = decisions.earlier_no_shows(s, office, row), decisions.earlier_sessions(s, office, row)
        other_open = decisions.other_open_bookings(s, office, row, now) \
            if row.status in ("requested", "proposed", "no_show") else []
        page = render_template(
            "staff/booking.html", booking=row, details=details, details_unreadable=details_unreadable,
            fields=DETAIL_FIELDS, revealed_until=until.astimezone(TOKYO) if until else None,
            reveal_minutes=REVEAL_FOR // timedelta(minutes=1),
            personal_held=_holds_personal(s, row), has_note=row.staff_note is not None,
            staff_note=note, note_draft=note_draft, note_seen=personal.note_digest(note),
            note_unreadable=until is not None and row.staff_note is not None and note is None,
            memos={e.id: personal.open_note(rt, e.note) if until else None for e in entries if e.note is not None},
            handoff=handed,
            override_reason=personal.open_note(rt, handed.override_reason) if until and handed else None,
            conv=conv, consent=terms.consent_behind(s, conv.id, row.created_at) if conv else None,
            terms_in_force=terms.current_version(s, office.id, now.date()),
            entries=entries, reachable=conv is not None and bool(conv.followed), undelivered=stuck,
            undelivered_states={m.id: undelivered.state(m, now) for m in stuck},
            reasons=handoff.decline_reasons("ja"), offered_reasons=handoff.office_decline_reasons(office), now=now,
            deadline=slotsvc.booking_deadline(office, row.slot_start),
            deadline_passed=slotsvc.deadline_passed(office, row.slot_start, now),
            proposable=_proposable(s, office, now, row.slot_start) if row.status == "requested" else [],
            attendance_open=row.status == "confirmed" and row.slot_start <= now,
            no_show_from=decisions.no_show_from(office, row),
            earlier_no_shows=no_shows, same_number=requests.same_number(s, office.id, row, now),
            earlier_sessions=sessions, other_open=other_open,
            typed_elsewhere=decisions.typed_elsewhere(row, [*no_shows, *sessions, *other_open]),
            correction=_correction_view(office, row, now, decisions.correction_target(row)),
            cancel_correction=_correction_view(office, row, now, "cancelled"), correction_draft=correction_draft,
        )
    return page



def _correction_view(office, row: Booking, now: datetime, to: str | None) -> dict | None:
    """A recorded attendance's correction to `to` as the page offers it: why it cannot be made now (None: it can)
    and the reasons that fit it. None: nothing recorded, or no such correction of this record."""
    if to is None or to not in decisions.correction_targets(row.status):
        return None
    return {"to": to, "problem": decisions.correction_problem(office, row, now, to),
            "reasons": decisions.correction_reasons(to), "limit": decisions.CORRECTION_LIMIT}
