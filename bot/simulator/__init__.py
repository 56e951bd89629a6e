"""The local LINE simulator (development only): a chat page and a fake Messaging API.

`register(app)` is called by the composition root outside production only, so in production
neither /simulator nor /simulator/api exists (404).
"""
from __future__ import annotations

from flask import Flask


def register(app: Flask) -> None:
    from bot.simulator import api, pages

    app.register_blueprint(pages.bp)
    app.register_blueprint(api.bp)
