"""What the log says about a request that failed with an exception nobody handled, and about every request.

Flask logs such an exception whole: the request's path and the exception's message under its traceback. The
message of a database error may quote a row's values (PostgreSQL's DETAIL does, whatever `hide_parameters`
says), and the path of a form holds the user's link. So the app logs the route (its rule, not the path), the
method, and the exception as `describe_error` gives it (type, SQLSTATE, where), never its message.

A server's log of every request (Werkzeug's development server always; gunicorn's access log when an operator
turns it on, and its error log at `--log-level debug` or for a request that failed outside the app) shows the
path too: the form's link there is logged as `/form/<token>`.
"""
from __future__ import annotations

import logging
import re

from flask import Flask, request

from bot.db import describe_error

log = logging.getLogger(__name__)

FORM_LINK = re.compile(r"/form/[^/\s?#\"]+")
# gunicorn writes a request's path to its error log too: every request at `--log-level debug` (its default
# `pre_request` hook), and a request that failed outside the app (`Error handling request POST /form/…`).
REQUEST_LOGGERS = ("werkzeug", "gunicorn.access", "gunicorn.error")


class FormLinksHidden(logging.Filter):
    """A logged request line names the form's route, not the user's link (which opens their form)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        hidden = FORM_LINK.sub("/form/<token>", message)
        if hidden != message:
            record.msg, record.args = hidden, ()
        return True


def hide_form_links() -> None:
    """On the loggers of the servers' request lines, once per process."""
    for name in REQUEST_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, FormLinksHidden) for f in logger.filters):
            logger.addFilter(FormLinksHidden())


def register(app: Flask) -> None:
    def log_exception(exc_info) -> None:
        rule = request.url_rule.rule if request.url_rule is not None else "(no route)"
        log.error("%s %s failed: %s", request.method, rule, describe_error(exc_info[1]))

    app.log_exception = log_exception  # type: ignore[method-assign]
    hide_form_links()
