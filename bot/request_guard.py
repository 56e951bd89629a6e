"""Requests carrying a NUL character are refused (400) before any view reads them.

No person types one (the form refuses control characters anyway), PostgreSQL text cannot hold one (a query
carrying it fails, which would be answered as the database being down and logged as an error), and a value
stored with one is not what it shows. Checked in the address, the query string and a form's fields. Two
blueprints keep their own checks: the webhook, which reads its body as bytes before anything else, and the
details form, whose link is signed (a guessed or altered one is a 404) and whose fields its validation checks,
refusing a control character beside the field and keeping what was typed.
"""
from __future__ import annotations

from flask import Flask, abort, request

FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
OWN_CHECKS = ("webhook", "forms")


def _holds_nul(pairs) -> bool:
    return any("\x00" in key or "\x00" in value for key, value in pairs)


def register(app: Flask) -> None:
    @app.before_request
    def _refuse_nul():
        if request.blueprint in OWN_CHECKS:
            return None
        if "\x00" in request.path or _holds_nul(request.args.items(multi=True)):
            abort(400)
        if request.mimetype in FORM_TYPES and _holds_nul(request.form.items(multi=True)):
            abort(400)
        return None
