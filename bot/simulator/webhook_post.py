"""Deliver a signed webhook body to POST /callback/<office> through the app's WSGI stack.

The request takes exactly the path LINE's would (routing, size limit, signature check, dispatch);
only the network hop is skipped, so it works whatever host and port the app is served on.
"""
from __future__ import annotations

from flask import Flask
from werkzeug.test import EnvironBuilder, run_wsgi_app

USER_AGENT = "LineBotWebhook/2.0"


def post(app: Flask, office_id: str, raw: bytes, signature: str) -> int:
    """POST the raw body with its X-Line-Signature; returns the HTTP status the webhook answered."""
    builder = EnvironBuilder(
        path=f"/callback/{office_id}", method="POST", data=raw,
        headers={"Content-Type": "application/json; charset=utf-8", "X-Line-Signature": signature,
                 "User-Agent": USER_AGENT},
    )
    try:
        environ = builder.get_environ()
    finally:
        builder.close()
    app_iter, status, _headers = run_wsgi_app(app.wsgi_app, environ, buffered=True)
    try:
        for _chunk in app_iter:
            pass
    finally:
        close = getattr(app_iter, "close", None)
        if close is not None:
            close()
    return int(status.split(" ", 1)[0])
