"""The page a person meets when a request fails: never Werkzeug's English default, a traceback or the address.

Every HTTP error (an unknown or old address, a wrong method, a body too large, a request that could not be read,
a failure of the app itself) is answered with the site's own page, status kept: the dashboard's look under
`/staff`, the public pages' look elsewhere, in the language of the form link being used (its conversation's) or
of the terms page's `?lang=`, else Japanese. The page says what happened and what to do next (send 予約 in the
chat again, open the office's current terms, check with 予約確認 whether a request went through, call the office
at its confirmed number); it shows nothing that was sent and not the address (a form's address is the user's link).

The webhook, the health check and the simulator's fake Messaging API answer programs, not people: an error of
theirs keeps its status, with a short JSON body. So does the simulator page's script, which asks for JSON (`Accept`);
a browser opening a simulator address gets the page.
"""
from __future__ import annotations

from flask import Flask, current_app, g, render_template, request, url_for
from werkzeug.exceptions import HTTPException

from bot.forms import form_texts
from bot.render import LANGUAGES
from bot.staff.export import labels as staff_labels

# The routes that answer programs (an address no route knows is a person's, wherever it points).
MACHINE_BLUEPRINTS = ("webhook", "simulator_api")
MACHINE_ENDPOINTS = ("web.healthz",)
# The addresses a page's script calls as well as people open: a call asking for JSON gets JSON. By path, as a 405
# is matched to no route.
SCRIPT_PREFIXES = ("/simulator/",)
STAFF_PREFIX = "/staff"
# The public page's kind of each status; any other 4xx is a request that could not be used, any 5xx a failure.
KINDS = {404: "not_found", 405: "method", 413: "too_large"}


def register(app: Flask) -> None:
    app.register_error_handler(HTTPException, _answer)


def asks_for_json() -> bool:
    """The request comes from a script that reads JSON (it says so in `Accept`, or sends JSON)."""
    return request.is_json or "application/json" in (request.headers.get("Accept") or "")


def _script_call(path: str) -> bool:
    """An address of the simulator page's calls, in development (production has no simulator)."""
    return path.startswith(SCRIPT_PREFIXES) and "simulator" in current_app.blueprints


def _kind(code: int) -> str:
    return KINDS.get(code) or ("server" if code >= 500 else "bad_request")


def _answer(error: HTTPException):
    code = error.code or 500
    path = request.path
    headers = {name: value for name, value in error.get_headers() if name.lower() != "content-type"}  # 405: Allow
    if (request.blueprint in MACHINE_BLUEPRINTS or request.endpoint in MACHINE_ENDPOINTS
            or (_script_call(path) and asks_for_json())):
        return {"message": error.name}, code, headers
    if path == STAFF_PREFIX or path.startswith(STAFF_PREFIX + "/"):
        # An address no route matched (404, 405) gets none of the dashboard's template globals, yet a button's
        # message may wait in the session to be shown on this page, in words from the dashboard's labels.
        html = render_template("staff/refused.html", code=code, labels=staff_labels())
    else:
        html = _public_page(_kind(code))
    return html, code, {**headers, "Cache-Control": "no-store"}


def _public_page(kind: str) -> str:
    rt = current_app.extensions["madoguchi"]
    link = g.get("form_link")  # set once a form link's signature checked out (bot/forms.py)
    office, language = (link.office, link.language) if link is not None else (None, "ja")
    terms_url = None
    if request.endpoint == "web.terms_page":
        office = rt.enabled_office(str((request.view_args or {}).get("office_id", "")))
        if request.args.get("lang") in LANGUAGES:
            language = request.args["lang"]
        if office is not None and kind == "not_found":
            kind, terms_url = "terms_version", url_for("web.terms_page", office_id=office.id)
    basic_id = rt.config.basic_id(office.id) if office is not None else None
    return render_template("error.html", kind=kind, on_form=link is not None, terms_url=terms_url,
                           office=office.localized(language) if office is not None else None,
                           basic_id=basic_id, text=form_texts(language))
