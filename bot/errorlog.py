"""What the log says about a request that failed with an exception nobody handled.

Flask logs such an exception whole: the request's path and the exception's message under its traceback. The
message of a database error may quote a row's values (PostgreSQL's DETAIL does, whatever `hide_parameters`
says), and the path of a form holds the user's link. So the app logs the route (its rule, not the path), the
method, and the exception as `describe_error` gives it (type, SQLSTATE, where), never its message.
"""
from __future__ import annotations

import logging

from flask import Flask, request

from bot.db import describe_error

log = logging.getLogger(__name__)


def register(app: Flask) -> None:
    def log_exception(exc_info) -> None:
        rule = request.url_rule.rule if request.url_rule is not None else "(no route)"
        log.error("%s %s failed: %s", request.method, rule, describe_error(exc_info[1]))

    app.log_exception = log_exception  # type: ignore[method-assign]
