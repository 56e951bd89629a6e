"""Composition root: create_app() builds madoguchi; `app` is the WSGI entry point (built on first access)."""
from __future__ import annotations

import logging

from flask import Flask


def create_app(config: dict | None = None) -> Flask:
    """Build the app from the environment, with `config` overriding settings (tests)."""
    from functools import partial

    from bot import (channels, error_pages, errorlog, forms, notify, request_guard, security_headers, settings_store,
                     textfmt, web, webhook)
    from bot.cli import register_cli
    from bot.clock import Clock, parse_instant
    from bot.config import ConfigError, check_production, load_config, warn_unread_line_settings
    from bot.db import Database, upgrade_schema
    from bot.line_client import LineClient
    from bot.offices import ProfileError, load_offices
    from bot.render import Renderer, office_wording_problems
    from bot.runtime import Runtime
    from bot.staff import handoff as staff_handoff
    from bot.staff import views as staff_views

    cfg = load_config(config)
    try:
        offices = load_offices(cfg.offices_dir)
    except ProfileError as exc:
        raise ConfigError(f"invalid office profiles in {cfg.offices_dir} (fix each field named below; "
                          "`flask --app app offices check` checks them again):\n"
                          + "\n".join(getattr(exc, "problems", None) or [str(exc)])) from exc
    if handoff_problems := staff_handoff.problems():
        raise ConfigError("invalid staff handoff settings:\n" + "\n".join(handoff_problems))
    if wording_problems := office_wording_problems(offices):
        raise ConfigError("invalid office wording (fix each template named below):\n" + "\n".join(wording_problems))
    db = Database(cfg.database_url)
    cfg = channels.attach(cfg, db, [o.id for o in offices.values() if o.enabled])  # env wins; store fills gaps
    check_production(cfg, [o.id for o in offices.values() if o.enabled])
    warn_unread_line_settings(cfg, list(offices))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("transitions").setLevel(logging.WARNING)  # two INFO lines per event, nothing ops need
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)  # seven lines on importing Alembic

    clock = Clock(None if cfg.is_production else (lambda: settings_store.clock_offset(db)))
    line = LineClient(cfg.line_api_base_url, cfg.line_api_data_base_url, cfg.channel_token,
                      timeout=cfg.line_timeout_seconds)
    rt = Runtime(config=cfg, db=db, offices=offices, clock=clock, line=line, renderer=Renderer({}))

    app = Flask(__name__, template_folder="templates", static_folder="static", instance_path=str(cfg.instance_path))
    app.config.update(SECRET_KEY=cfg.secret_key, MAX_CONTENT_LENGTH=webhook.MAX_BODY, OFFICES_DIR=str(cfg.offices_dir),
                      # A `__Host-` name (production) needs Path=/ and no Domain: see Config.session_cookie_name.
                      SESSION_COOKIE_NAME=cfg.session_cookie_name, SESSION_COOKIE_PATH="/", SESSION_COOKIE_DOMAIN=None,
                      SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Lax",
                      SESSION_COOKIE_SECURE=cfg.is_production, TESTING=cfg.testing)
    if cfg.trusted_proxy_hops:  # behind a router: the client's address and scheme are in its headers
        from werkzeug.middleware.proxy_fix import ProxyFix

        hops = cfg.trusted_proxy_hops
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)  # type: ignore[method-assign]
    app.extensions["madoguchi"] = rt
    app.session_interface = webhook.SessionInterface()   # none opened for LINE's webhook
    request_guard.register(app)   # before the blueprints' own hooks (the dashboard's session check reads the database)
    textfmt.register(app)
    app.register_blueprint(webhook.bp)
    app.register_blueprint(web.bp)
    app.register_blueprint(forms.bp)
    app.register_blueprint(staff_views.bp)
    security_headers.register(app, production=cfg.is_production)
    errorlog.register(app)
    error_pages.register(app)
    rt.extras["staff_cards"] = partial(notify.cards, rt)
    rt.extras["staff_postback"] = partial(notify.postback, rt)
    rt.extras["staff_rejoined"] = partial(notify.rejoined, rt)
    register_cli(app)

    if not cfg.is_production:
        from bot.simulator import register as register_simulator  # the local LINE simulator: never in production
        register_simulator(app)
        upgrade_schema(db, cfg.data_encryption_keys)
        if cfg.fake_now:
            settings_store.start_fake_clock(db, parse_instant(cfg.fake_now))
            clock.forget()  # the offset it may have cached before is stale now
        settings_store.seed(rt)
    return app


def __getattr__(name: str) -> Flask:
    """`app` for gunicorn/flask (PEP 562): built on first access, so importing this module has no side effects.

    Built when `gunicorn app:app` looks the name up, not at the first request: a configuration error is then
    ConfigError (gunicorn's AppImportError) while the worker loads the app, so gunicorn prints the message alone
    and stops ("App failed to load"), as the Procfile's `app:create_app()` does, instead of booting and answering
    every request with a traceback."""
    if name != "app":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    built = globals()["app"] = create_app()
    return built
