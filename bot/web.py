"""Small public pages: health and the terms of each office."""
from __future__ import annotations

from flask import Blueprint, abort, current_app, render_template

from bot.services import terms

bp = Blueprint("web", __name__)


@bp.get("/healthz")
def healthz():
    rt = current_app.extensions["madoguchi"]
    try:
        rt.db.ping()
    except Exception:  # noqa: BLE001
        return {"status": "database unavailable"}, 503
    return {"status": "ok"}, 200


@bp.get("/terms/<office_id>")
@bp.get("/terms/<office_id>/<version>")
def terms_page(office_id: str, version: str | None = None):
    rt = current_app.extensions["madoguchi"]
    office = rt.enabled_office(office_id)
    if office is None:
        abort(404)
    with rt.db.reading() as s:
        now = rt.clock.now()
        current = terms.current(s, office.id, now.date())
        shown = terms.get(s, office.id, version) if version else current
        all_versions = [(v.version, v.body is not None) for v in terms.versions(s, office.id)]
        if version and shown is None:
            abort(404)
        return render_template("terms/page.html", office=office, shown=shown, current=current,
                               versions=all_versions, requested=version)
