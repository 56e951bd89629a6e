"""Finding bookings: by the 受付番号 a caller quotes, or by a job seeker number."""
from __future__ import annotations

from flask import redirect, render_template, request, url_for

from bot.staff import audit, decisions, personal
from bot.staff.views import bp
from bot.staff.views.context import _actor, _office, _rt

@bp.route("/search", methods=["GET", "POST"])
def search():
    rt = _rt()
    office = _office()
    found = None
    invalid = False
    if request.method == "GET" and "reference" in request.args:
        # A caller quotes the only number the chat gave them: open that booking of this office.
        reference = decisions.typed_reference(request.args["reference"])
        if reference is not None:
            with rt.db.reading() as s:
                try:
                    known = decisions.load(s, office.id, reference=reference, lock=False).reference
                except decisions.Refused:
                    known = None
            if known is not None:
                return redirect(url_for("staff.booking", reference=known))
        return render_template("staff/search.html", found=None, invalid=False,
                               reference_missing=request.args["reference"][:20]), 404
    if request.method == "POST":
        seeker_hash = personal.seeker_hash(rt, request.form.get("seeker_number", ""))
        invalid = seeker_hash is None
        with rt.db.transaction() as s:
            found = [] if invalid else decisions.by_seeker(s, office.id, seeker_hash)
            audit.record(s, office.id, _actor(), "search", rt.clock.now(), results=len(found))
    return render_template("staff/search.html", found=found, invalid=invalid, reference_missing=None), \
        400 if invalid else 200
