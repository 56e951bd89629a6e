"""Phone and window bookings: a booking staff make for a caller or a visitor."""
from __future__ import annotations

from datetime import datetime, timedelta

from flask import flash, redirect, render_template, request, url_for

from bot.services import holds, validation
from bot.services import slots as slotsvc
from bot.staff import decisions
from bot.staff.views import bp
from bot.staff.views.args import _slot_arg
from bot.staff.views.context import _actor, _office, _rt

def _staff_slot_choices(s, office, now: datetime) -> list[tuple[datetime, str | None]]:
    """Every scheduled start from now to the window's end, with why a user could not book it: a full slot says
    `full` whatever else stops users (its deadline passed, a block), as no reason staff give books it."""
    taken, blocked, blocked_days = holds.seats(s, office.id, now)
    end = now.date() + timedelta(weeks=office.booking.window_weeks + 4)
    starts = [t for t in slotsvc.candidate_starts(office, now.date(), end) if t > now]
    choices = [(t, slotsvc.is_bookable(office, now, t, taken, blocked, blocked_days)) for t in starts]
    return [(t, "full" if why in decisions.OVERRIDABLE and taken.get(t, 0) >= office.schedule.capacity else why)
            for t, why in choices]


@bp.route("/bookings/new", methods=["GET", "POST"])
def new_booking():
    rt = _rt()
    office = _office()
    errors: list[str] = []
    form = request.form
    if request.method == "POST":
        start = _slot_arg(form.get("slot"))
        # What staff learnt on the phone: the name at least; every value given is checked as the form does.
        given = [f for f in office.form_fields if f == "name" or (form.get(f) or "").strip()]
        checked = validation.validate(given, form, rt.clock.now().date(), [c.id for c in office.categories])
        details = {k: v for k, v in checked.values.items() if v not in ("", None)}
        errors.extend(sorted(checked.errors))
        if start is None:
            errors.append("slot")
        if form.get("source") not in decisions.SOURCES:
            errors.append("source")
        if not errors:
            try:
                with rt.db.transaction() as s:
                    created = decisions.create_booking(
                        s, rt, office, _actor(), rt.clock.now(), start=start, source=form["source"],
                        details=details, override_reason=form.get("override_reason"))
                    reference = created.reference
                flash(f"create_booking:done:{created.status}", "ok")
                return redirect(url_for("staff.booking", reference=reference))
            except decisions.Refused as refused:
                errors.append(refused.code)
                if refused.code == "needs_override":
                    errors.extend(f"override_{o}" for o in refused.detail.get("overrides", []))
    with rt.db.reading() as s:
        now = rt.clock.now()
        choices = _staff_slot_choices(s, office, now)
    status = 400 if errors else 200
    return render_template("staff/new_booking.html", choices=choices, errors=errors, form=form,
                           fields=office.form_fields), status
