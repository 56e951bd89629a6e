"""Small public pages: health and the terms of each office."""
from __future__ import annotations

import logging
import re
from datetime import date
from functools import lru_cache

import yaml
from flask import Blueprint, abort, current_app, render_template, request

from bot import keycheck
from bot.db import SCHEMA_BEHIND_HINT, database_problem, schema_state
from bot.render import TEMPLATES_DIR

from bot.services import terms

log = logging.getLogger(__name__)
bp = Blueprint("web", __name__)
_VERSION_ID = re.compile(r"^\d{4}-\d{2}-\d{2}$", re.ASCII)


@bp.get("/healthz")
def healthz():
    rt = current_app.extensions["madoguchi"]
    try:
        rt.db.ping()
    except Exception as error:  # noqa: BLE001
        # The answer stays short for monitors; the log says why and what to check (never a password).
        log.error("healthz: %s", database_problem(error, rt.config.database_url) or type(error).__name__)
        return {"status": "database unavailable"}, 503
    if not rt.extras.get("schema_ready"):  # read until it is: a schema does not go back
        state = schema_state(rt.db)
        if state.behind:  # no release process ran: every webhook and worker pass would fail
            log.error("healthz: %s (%s)", SCHEMA_BEHIND_HINT, state.describe())
            return {"status": "database schema out of date: run flask --app app db upgrade"}, 503
        rt.extras["schema_ready"] = True  # current, or upgraded by a newer release while this one still runs
        keycheck.warn_if_keys_open_nothing(rt)  # once per process: logged only, the answer stays the same
    return {"status": "ok"}, 200


def _is_version_id(version: str) -> bool:
    """A terms version id is its effective date, written YYYY-MM-DD."""
    if not _VERSION_ID.match(version):
        return False
    try:
        date.fromisoformat(version)
    except ValueError:
        return False
    return True


@lru_cache(maxsize=1)
def _summary_words() -> dict:
    return yaml.safe_load((TEMPLATES_DIR / "terms" / "translated_summary.yaml").read_text(encoding="utf-8"))


def _translated_summary(office, language: str | None) -> dict | None:
    """`?lang=en|easy`: the office's consent summary in that language, labelled as a translation."""
    words = _summary_words().get(language or "")
    local = office.localized(language) if words else None
    if local is None or local.consent_summary == office.consent_summary:
        return None
    also_from = words["also_from"].format(office=local.name, notice=local.summary_notice) \
        if local.summary_notice else None
    return {**words, "lines": local.consent_summary, "also_from": also_from}


@bp.get("/terms/<office_id>")
@bp.get("/terms/<office_id>/<version>")
def terms_page(office_id: str, version: str | None = None):
    rt = current_app.extensions["madoguchi"]
    office = rt.enabled_office(office_id)
    if office is None or (version is not None and not _is_version_id(version)):
        abort(404)
    with rt.db.reading() as s:
        now = rt.clock.now()
        current = terms.current(s, office.id, now.date())
        shown = terms.get(s, office.id, version) if version else current
        all_versions = [(v.version, v.body is not None) for v in terms.versions(s, office.id)]
        if version and shown is None:
            abort(404)
        summary = _translated_summary(office, request.args.get("lang")) \
            if shown is not None and current is not None and shown.version == current.version else None
        return render_template("terms/page.html", office=office, shown=shown, current=current,
                               versions=all_versions, requested=version, translated_summary=summary,
                               basic_id=rt.config.basic_id(office.id))
