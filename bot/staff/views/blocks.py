"""Closing a day or a slot to bookings, and opening it again."""
from __future__ import annotations

from flask import abort, flash, redirect, request, url_for

from bot.clock import TOKYO
from bot.staff import decisions, personal
from bot.staff.views import bp
from bot.staff.views.args import _date_arg, _slot_arg
from bot.staff.views.context import _actor, _office, _rt


@bp.post("/blocks")
def add_block():
    rt = _rt()
    office = _office()
    day = _date_arg("day", None)
    start = _slot_arg(request.form.get("slot")) if request.form.get("slot") else None
    if day is None or (start is not None and start.date() != day):
        abort(400)
    with rt.db.transaction() as s:
        decisions.block(s, office, _actor(), rt.clock.now(), day, start,
                        personal.seal_note(rt, request.form.get("reason"), decisions.BLOCK_REASON_LIMIT))
        kept = decisions.open_bookings_within(s, office.id, day, start)
    # The day or slot, and how many requests and bookings on it the block left standing (kind:done:kept::moment;
    # the moment without colons, which separate the parts).
    moment = f"{start.astimezone(TOKYO):%Y-%m-%dT%H%M}" if start else day.isoformat()
    flash(f"{'block_slot' if start else 'block_day'}:done:{kept}::{moment}", "ok")
    return redirect(url_for("staff.home", **({"from": request.form["back"]} if request.form.get("back") else {})))


@bp.post("/blocks/<int:block_id>/delete")
def delete_block(block_id: int):
    rt = _rt()
    office = _office()
    day = _date_arg("day", None)
    start = _slot_arg(request.form.get("slot")) if request.form.get("slot") else None
    if day is None:
        abort(400)
    with rt.db.transaction() as s:
        try:
            decisions.unblock(s, office, _actor(), rt.clock.now(), block_id, day.isoformat(), start)
        except decisions.Refused as refused:
            flash(f"unblock:{refused.code}:", "error")
        else:
            flash("unblock:done:", "ok")
    return redirect(url_for("staff.home", **({"from": request.form["back"]} if request.form.get("back") else {})))
