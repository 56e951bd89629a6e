"""What staff do to a booking from its page: each action a POST, answered with the page and what happened."""
from __future__ import annotations

from datetime import datetime

from flask import abort, flash, redirect, request, url_for

from bot.models import Booking
from bot.staff import decisions
from bot.staff.views import bp
from bot.staff.views.args import _slot_arg
from bot.staff.views.booking import _booking_page
from bot.staff.views.context import _actor, _booking_or_404, _office, _rt

BOOKING_ACTIONS = ("confirm", "decline", "propose", "invitation", "called", "invitation_undo", "called_undo",
                   "attended", "no_show",
                   "correct_attendance", "cancel_user", "cancel_office", "cancel_terms", "block_user", "unblock_user",
                   "note")


@bp.post("/bookings/<reference>/<action>")
def booking_action(reference: str, action: str):
    if action not in BOOKING_ACTIONS:
        abort(404)
    rt = _rt()
    office = _office()
    form = request.form
    with rt.db.transaction() as s:
        now = rt.clock.now()
        row = _booking_or_404(s, reference, lock=True)
        done = action   # what the flash says was done
        try:
            result = _apply(s, rt, office, row, action, form, now)
            message, category = ("done" if result.changed else "already"), "ok"
            if result.blocked:
                done = f"{action}_block"   # the same tap also stopped the user's online booking
            if result.after_deadline:
                message = "done_after_deadline"
            told = {True: "line", False: "none"}.get(result.told, "")
        except decisions.Refused as refused:
            message, category, told = refused.code, "error", ""
            if message == "status" and decisions.confirmed_by_the_user(s, row):
                message = "status_accepted"   # not 「ほかの職員が先に承認しました」: nobody on the staff did
        status = row.status
    if message == "note_changed":
        # The page shows the note as it is now and keeps what this member typed, to merge and save again.
        return _booking_page(reference, note_draft=form.get("note", "")), 409
    if message == "correction_reason":
        # Said beside the reason's fields, which keep what was chosen and typed.
        draft = {"to": form.get("to", ""), "reason": form.get("reason", ""),
                 "note": form.get("note", "")[:decisions.CORRECTION_LIMIT]}
        return _booking_page(reference, correction_draft=draft), 400
    flash(f"{done}:{message}:{status}:{told}", category)
    return redirect(url_for("staff.booking", reference=reference))


def _apply(s, rt, office, row: Booking, action: str, form, now: datetime) -> decisions.Result:
    actor = _actor()
    if action == "confirm":
        return decisions.confirm(s, rt, office, row, actor, now, same_number_checked=_same_number_checked(form))
    if action == "decline":
        if not form.get("reason") and row.status in decisions.UNDECIDED:
            # The page's reason is chosen by the member, never defaulted (the group's お断り names its one reason).
            raise decisions.Refused("reason", row)
        return decisions.decline(s, rt, office, row, actor, now, reason=form.get("reason") or None)
    if action == "propose":
        start = _slot_arg(form.get("slot"))
        if start is None:
            raise decisions.Refused("not_a_slot", row)
        return decisions.propose(s, rt, office, row, actor, now, start,
                                 same_number_checked=_same_number_checked(form))
    if action == "invitation":
        return decisions.mark_invitation_sent(s, office, row, actor, now)
    if action == "called":
        return decisions.mark_called(s, office, row, actor, now)
    if action in ("invitation_undo", "called_undo"):
        return decisions.undo_preparation(s, office, row, actor, now, task=action.removesuffix("_undo"))
    if action in ("attended", "no_show"):
        return decisions.mark_attendance(s, rt, office, row, actor, now, attended=action == "attended")
    if action == "correct_attendance":
        return decisions.correct_attendance(s, rt, office, row, actor, now, to=form.get("to", ""),
                                            reason=form.get("reason") or None, note=form.get("note"))
    if action in ("cancel_user", "cancel_office"):
        return decisions.cancel(s, rt, office, row, actor, now, by_office=action == "cancel_office",
                                note=form.get("note"))
    if action == "cancel_terms":
        return decisions.cancel_under_terms(s, rt, office, row, actor, now, block=form.get("block_user") == "1")
    if action in ("block_user", "unblock_user"):
        return decisions.set_user_blocked(s, office, row, actor, now, blocked=action == "block_user")
    return decisions.set_note(s, rt, office, row, actor, now, form.get("note", ""), seen=form.get("note_seen"))


def _same_number_checked(form) -> bool:
    """The member ticked that they checked the same job seeker number's booking on another LINE account."""
    return form.get("same_number_checked") == "1"
