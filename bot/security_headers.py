"""Security headers on every response, and a Content-Security-Policy on every HTML page.

Registered once on the app (`register(app)`), after the blueprints: a blueprint that sets its own values (the
dashboard) keeps them, because this hook only fills in what is missing.
No page of madoguchi runs inline script or inline style, so the policy allows neither, and no page may be
framed. Two kinds of page run script, each only its own file of this site: a signed-in dashboard page (the
warning before the session ends, `static/staff/session.js`, which calls only this site), and, in development
only, the local LINE simulator, which talks to its own API and shows the terms and the details form in its
in-app browser, a same-origin frame; each gets a policy that allows exactly that. In production no path gets
the simulator's allowances (`/simulator` is a 404 there).
Production also expires the session cookie of before its `__Host-` name (bot/config.py, `session_cookie_name`)
where a browser still sends it: read no more, it would otherwise stay in the browser until it ends.
"""
from __future__ import annotations

from flask import Flask, Response, request
from werkzeug.datastructures import Headers

PAGE_CSP = ("default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
            "frame-ancestors 'none'; base-uri 'none'")
# A signed-in dashboard page (set by the staff blueprint): the page's one script, the session warning, is a file
# of this site, and it talks to this site only (the keep-alive POST). Still no inline script.
DASHBOARD_CSP = PAGE_CSP + "; script-src 'self'; connect-src 'self'"
SIMULATOR_CSP = ("default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self'; frame-src 'self'; "
                 "img-src 'self' data: https:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
SIMULATOR_PREFIX = "/simulator"
FRAMED_IN_DEV = ("/terms/", "/form/")  # the pages the simulator's in-app browser shows
DEV_FRAMED_CSP = PAGE_CSP.replace("frame-ancestors 'none'", "frame-ancestors 'self'")
ALWAYS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
}
HSTS = "max-age=31536000; includeSubDomains"
# Production's session cookie before it was named `__Host-session`, and how it was set (Path=/, no Domain).
RETIRED_SESSION_COOKIE = "session"


def policy_for(path: str, production: bool = False) -> str:
    """The Content-Security-Policy of an HTML page at `path`."""
    if not production and (path == SIMULATOR_PREFIX or path.startswith(SIMULATOR_PREFIX + "/")):
        return SIMULATOR_CSP
    return PAGE_CSP


class _Missing:
    """Adds a header only where the response has none of that name yet, as `Headers.setdefault` does, without
    the KeyError it raises and catches for each header not set yet (every response lacks five or six)."""

    def __init__(self, headers: Headers):
        self._headers = headers
        self._present = {name.lower() for name in headers.keys()}

    def add(self, name: str, value: str) -> None:
        if name.lower() not in self._present:
            self._headers.add(name, value)
            self._present.add(name.lower())


def register(app: Flask, *, production: bool) -> None:
    """Add the headers to every response of `app` (HSTS only in production, where the site is https)."""

    @app.after_request
    def _security_headers(response: Response) -> Response:
        fill = _Missing(response.headers)
        if not production and request.path.startswith(FRAMED_IN_DEV):
            # Development: the simulator's in-app browser shows the terms and the form in a same-origin frame.
            fill.add("X-Frame-Options", "SAMEORIGIN")
            fill.add("Content-Security-Policy", DEV_FRAMED_CSP)
        for name, value in ALWAYS.items():
            fill.add(name, value)
        if response.mimetype == "text/html":
            fill.add("Content-Security-Policy", policy_for(request.path, production))
        if production:
            fill.add("Strict-Transport-Security", HSTS)
            if (RETIRED_SESSION_COOKIE in request.cookies
                    and app.config["SESSION_COOKIE_NAME"] != RETIRED_SESSION_COOKIE):   # never the live one
                response.delete_cookie(RETIRED_SESSION_COOKIE, path="/", domain=None, secure=True, httponly=True,
                                       samesite="Lax")
        return response
