"""Domain senders of the staff handoff: which template goes to whom (the outbox stores, the worker sends).

- `cards`: a Flex card to the office's staff group (`LINE_STAFF_GROUP_ID_<OFFICE>`) for a staff notice:
  reference, office, slot, status and a dashboard link only (no name, number, birth date, phone, category
  or content). Each kind can be turned off in the profile's `staff_cards`.
- `postback`: a tap on a card's button (approve / decline / attended / no-show), counted only from the configured group.
  お断り cannot be undone and tells the user at once, so it asks first (`staff_decline_confirm`): 「お断りする」
  declines, 「やめる」 changes nothing.
- `tell_user`: a push telling the user an outcome (confirmed, declined, another slot, cancelled, reminders);
  its templates get `booking.timing` (services.bookings.message_timing): what it can still promise when it is
  read (at once, or when the push hours open).
"""
from __future__ import annotations

import logging
import re
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode

from sqlalchemy.orm import Session

from bot import outbox
from bot.clock import TOKYO
from bot.models import Booking, Conversation, OutboxMessage
from bot.services import bookings, lifecycle, push_hours, requests
from bot.services import slots as slotsvc
from bot.staff import export, handoff
from bot.staff import groups as staff_groups
from bot.staff import queue as queue_lists
from bot.staff.models import BookingHandoff

log = logging.getLogger(__name__)

STAFF_ACTION = "staff"
# `decline` (a card's お断り, an old card's one-tap form too) only asks; `decline_yes` (「お断りする」, carrying the
# reason the question named in `y`) declines and `decline_no` (「やめる」) changes nothing.
GROUP_ACTIONS = ("confirm", "decline", "decline_yes", "decline_no", "attended", "no_show")
REASON_KEY = re.compile(r"^[a-z_]{1,40}$")
# Buttons on a card, by notice kind.
CARD_BUTTONS = {
    "new_request": ("confirm", "decline"),
    "undecided": ("confirm", "decline"),
    "no_show_check": ("attended", "no_show"),
}
REFERENCE = re.compile(r"^[A-HJ-NP-Z2-9]{4}-[A-HJ-NP-Z2-9]{4}$")


def booking_view(booking: Booking) -> dict[str, Any]:
    """What a LINE message may say about a booking: its reference, slot and status, nothing personal."""
    return {"reference": booking.reference, "at": booking.slot_start,
            "label": slotsvc.slot_label(booking.slot_start), "status": booking.status}


def deadline_view(office, booking: Booking, now: datetime) -> dict[str, Any]:
    """The booking deadline of the booking's slot, for staff deciding on it: when, and whether it has passed."""
    deadline = slotsvc.booking_deadline(office, booking.slot_start)
    return {"label": slotsvc.slot_label(deadline), "at": deadline, "passed": deadline <= now}


def _on_the_day(booking: Booking | None, now: datetime) -> bool:
    """Is it the booking's session day (Japan time)? Then the invitation's usual timing may be past."""
    return booking is not None and booking.slot_start.astimezone(TOKYO).date() == now.astimezone(TOKYO).date()


def dashboard_url(rt, booking: Booking) -> str:
    return f"{rt.config.public_base_url}/staff/bookings/{booking.reference}"


def staff_postback_data(office_id: str, action: str, reference: str, **extra: str) -> str:
    return urlencode({"a": STAFF_ACTION, "d": action, "r": reference, "o": office_id, **extra})


# -- staff group cards ----------------------------------------------------------------------------

# The profile's `staff_cards` switches name the four handoff kinds; follow-up cards about handling a request
# follow the `new_request` switch, so an office that turns request cards off gets none about them.
CARD_SWITCH = {"undecided": "new_request", "invitation": "new_request", "no_show_check": "new_request",
               "proposal_accepted": "new_request", "proposal_declined": "new_request"}


def card_enabled(office, kind: str) -> bool:
    return bool((office.staff_cards or {}).get(CARD_SWITCH.get(kind, kind), True))


def cards_off(office) -> set[str]:
    """The notice kinds whose cards the office turned off (the switches and the kinds that follow them)."""
    return {kind for kind in {*CARD_SWITCH, *(office.staff_cards or {})} if not card_enabled(office, kind)}


def staff_statuses() -> dict[str, str]:
    """A status as staff read it on the dashboard (確定, お断り, 出席): the group's cards and answers use the same
    words, not the ones the user reads in 予約確認 (予約確定, お受けできませんでした, 相談済み)."""
    return export.labels()["statuses"]


def cards(rt, session: Session, office, kind: str, booking_id: int, now: datetime) -> OutboxMessage | None:
    """Queue the staff group's card for a notice (nothing when no group is set or the kind is off, nor while the bot
    is out of the group: LINE would refuse it; the notice is on the dashboard, and `rejoined` tells the group)."""
    group_id = rt.config.staff_group_id(office.id)
    if not group_id or not card_enabled(office, kind):
        return None
    if staff_groups.out_of(session, office.id, group_id):
        log.info("staff card office=%s kind=%s booking=%s not queued: the bot is out of the staff group",
                 office.id, kind, booking_id)
        return None
    booking = session.get(Booking, booking_id)
    if booking is None or booking.office_id != office.id:
        return None
    actions = CARD_BUTTONS.get(kind, ())
    # The same job seeker number already booked on another LINE account: approving needs the dashboard's check
    # (decisions.confirm), so the card offers no 承認 and says why (only the 受付番号 goes to LINE).
    booked_elsewhere = "confirm" in actions and booking.status in lifecycle.UNDECIDED_STATUSES and bool(
        requests.same_number(session, office.id, booking, now).booked)
    buttons = [{"action": action, "data": staff_postback_data(office.id, action, booking.reference)}
               for action in actions if not (booked_elsewhere and action == "confirm")]
    messages = rt.renderer.messages("ja", "staff_card", {
        "office": office, "kind": kind, "booking": booking_view(booking),
        "dashboard_url": dashboard_url(rt, booking), "buttons": buttons,
        "deadline": deadline_view(office, booking, now) if "confirm" in CARD_BUTTONS.get(kind, ()) else None,
        "invitation": handoff.invitation_task(office, on_the_day=_on_the_day(booking, now)),
        "decline_label": handoff.decline_reasons("ja")[handoff.default_reason()]["label"],
        "call_task": handoff.call_user_on_confirm(office), "statuses": staff_statuses(),
        "booked_elsewhere": booked_elsewhere,
    })
    log.info("staff card office=%s kind=%s booking=%s", office.id, kind, booking.id)
    return outbox.add(session, office=office.id, kind="push", recipient=group_id, messages=messages, now=now,
                      purpose="staff_card", about=booking, notice_kind=kind)


def rejoined(rt, session: Session, office, event, group_id: str, left_at: datetime,
             now: datetime) -> list[OutboxMessage]:
    """The bot was invited back into the staff group it had been removed from: one message there, answering the
    join, on what staff missed meanwhile (how many notices went to the dashboard only, of the kinds whose cards the
    office sends; how many requests wait for a decision) and where to see them; counts only, no reference or
    personal data. Not sent when request cards are turned off (`staff_cards.new_request`)."""
    if not card_enabled(office, "new_request"):
        return []
    messages = rt.renderer.messages("ja", "staff_rejoined", {
        "office": office, "missed": queue_lists.notices_since(session, office.id, left_at, cards_off(office)),
        "waiting": queue_lists.undecided_count(session, office.id),
        "since": slotsvc.slot_label(left_at), "dashboard_url": f"{rt.config.public_base_url}/staff/queue"})
    log.info("event=%s staff group rejoined office=%s", event.webhook_event_id, office.id)
    return outbox.queue_to_user(session, office=office.id, user_id=group_id, messages=messages, now=now,
                                reply_token=getattr(event, "reply_token", None), event_id=event.webhook_event_id,
                                purpose="staff_summary")


def postback(rt, session: Session, office, event, now: datetime) -> list[int]:
    """A staff member tapped a card's button: decide, and answer in the group with the current status."""
    from bot.staff import decisions
    from bot.staff.audit import Actor

    source = getattr(event, "source", None)
    group_id = getattr(source, "group_id", None)
    if not group_id or group_id != rt.config.staff_group_id(office.id):
        log.info("event=%s staff postback refused: not the staff group", event.webhook_event_id)
        return []
    fields = _parse(getattr(event.postback, "data", "") or "")
    if fields is None or fields["o"] != office.id:
        log.info("event=%s staff postback refused: not a staff action", event.webhook_event_id)
        return []
    actor = Actor.group(getattr(source, "user_id", None))
    action, reference = fields["d"], fields["r"]
    late = None
    told = None
    try:
        booking = decisions.load(session, office.id, reference=reference)
        if action == "decline_no":
            raise decisions.Refused("kept", booking)   # nothing changes, whatever happened meanwhile
        # 「お断りする」 declines with the reason its question named; one no longer offered (the reasons changed
        # since it was asked) asks again.
        sure = action == "decline_yes" and fields.get("y") in handoff.office_decline_reasons(office)
        action = "decline" if action == "decline_yes" else action
        if action == "decline" and booking.status == lifecycle.PROPOSED:
            # The card's お断り was for the request as it came; since then staff offered another slot, which
            # the user may be accepting right now. The dashboard can still withdraw the offer, with a reason.
            raise decisions.Refused("awaiting_user", booking)
        if action == "decline" and not sure and booking.status == lifecycle.REQUESTED:
            log.info("event=%s staff action=decline outcome=ask", event.webhook_event_id)
            return _ask_decline(session, rt, office, event, group_id, now, booking)
        if action == "confirm":
            result = decisions.confirm(session, rt, office, booking, actor, now)
        elif action == "decline":
            # Undecided: 「お断りする」. Decided since: a stale tap, answered with what happened meanwhile.
            result = decisions.decline(session, rt, office, booking, actor, now,
                                       reason=fields.get("y") if sure else None)
        else:
            result = decisions.mark_attendance(session, rt, office, booking, actor, now,
                                               attended=action == "attended")
        outcome = "done" if result.changed else "already"
        told = result.told
        if result.after_deadline:
            late = deadline_view(office, booking, now)
    except decisions.Refused as refused:
        booking = refused.booking
        outcome = "not_found" if booking is None else refused.code
    log.info("event=%s staff action=%s outcome=%s", event.webhook_event_id, action, outcome)
    return _reply_in_group(session, rt, office, event, group_id, now, booking, outcome=outcome, action=action,
                           reference=reference, booking=booking_view(booking) if booking else None,
                           dashboard_url=dashboard_url(rt, booking) if booking else None, late=late,
                           call_task=handoff.call_user_on_confirm(office), told=told,
                           invitation=handoff.invitation_task(office, on_the_day=_on_the_day(booking, now)))


def _ask_decline(session: Session, rt, office, event, group_id: str, now: datetime, booking: Booking) -> list[int]:
    """お断り tapped on an undecided request: ask in the group, naming the reference, the slot and the reason the user
    will be told (as the dashboard words it), or that LINE cannot tell them (tell_user's rule); 「お断りする」 carries
    that reason, 「やめる」 changes nothing."""
    reason = handoff.default_reason()
    conv = session.get(Conversation, booking.conversation_id) if booking.conversation_id else None
    return _reply_in_group(
        session, rt, office, event, group_id, now, booking, template="staff_decline_confirm",
        booking=booking_view(booking), dashboard_url=dashboard_url(rt, booking),
        reason_label=handoff.decline_reasons("ja")[reason]["label"], reachable=conv is not None and conv.followed,
        yes_data=staff_postback_data(office.id, "decline_yes", booking.reference, y=reason),
        no_data=staff_postback_data(office.id, "decline_no", booking.reference))


def _parse(data: str) -> dict[str, str] | None:
    if not data or len(data) > 300:
        return None
    try:
        fields = dict(parse_qsl(data, strict_parsing=True))
    except ValueError:
        return None
    if fields.get("a") != STAFF_ACTION or fields.get("d") not in GROUP_ACTIONS:
        return None
    if not REFERENCE.match(fields.get("r", "")) or not fields.get("o"):
        return None
    if "y" in fields and not REASON_KEY.match(fields["y"]):
        return None
    return fields


def _reply_in_group(session: Session, rt, office, event, group_id: str, now: datetime, about: Booking | None,
                    template: str = "staff_group_reply", **vars: Any) -> list[int]:
    token = getattr(event, "reply_token", None)
    if not token:
        return []
    messages = rt.renderer.messages("ja", template, {"office": office, "statuses": staff_statuses(), **vars})
    row = outbox.add(session, office=office.id, kind="reply", recipient=group_id, reply_token=token,
                     messages=messages, now=now, event_id=event.webhook_event_id, purpose="staff_reply",
                     about=about)
    session.flush()
    return [row.id]


# -- the user -------------------------------------------------------------------------------------

def tell_user(session: Session, rt, office, booking: Booking, template: str, now: datetime,
              purpose: str | None = None, **vars: Any) -> OutboxMessage | None:
    """One push to the user behind a booking (none for phone/window bookings or a user who unfollowed); its
    purpose is the template's name unless given (what the message is, for staleness and the dashboard)."""
    if booking.conversation_id is None:
        return None
    conv = session.get(Conversation, booking.conversation_id)
    if conv is None or not conv.followed:
        return None
    handed = session.get(BookingHandoff, booking.id)
    # Worded for when it will be read: a push queued at night waits for the push hours (on the session's day,
    # perhaps).
    read_at = push_hours.user_opening(office, purpose or template, booking.slot_start, now) or now
    view = {**booking_view(booking), "timing": bookings.message_timing(
        office, booking.slot_start, read_at, invitation_sent=booking.invitation_sent_at is not None,
        called=handed is not None and handed.called_at is not None),
        "phone_opens": bookings.phone_opens(office, booking, read_at)}
    context = {**rt.template_globals(office, conv), "booking": view, **vars}
    if "reason" in vars:
        context["reason_text"] = handoff.decline_reasons(conv.language)[vars["reason"]]["text"]
    if template == "outcome_proposed":
        from dialogs.router import postback as user_postback

        context["accept_data"] = user_postback("proposal", "any", office.id, "accept", r=booking.reference)
        context["decline_data"] = user_postback("proposal", "any", office.id, "decline", r=booking.reference)
    messages = rt.renderer.messages(conv.language, template, context)
    log.info("user push office=%s booking=%s template=%s", office.id, booking.id, template)
    return outbox.add(session, office=office.id, kind="push", recipient=conv.line_user_id, messages=messages,
                      now=now, purpose=(purpose or template)[:40], about=booking)
