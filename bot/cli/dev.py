"""`flask --app app dev`: the web process and the worker together, for trying madoguchi locally.

With nothing configured, the local simulator covers the whole journey: `dev` fills in the development
settings that are unset (the public URL on the port served, each office's staff group and basic ID as the
simulator's) before it builds the app it serves and starts the worker, and stops the worker on Ctrl+C and
on SIGTERM alike.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from typing import Iterable, Mapping

import click
from flask import current_app
from flask.cli import with_appcontext
from werkzeug.serving import run_simple

from bot import settings_store

# Hosts a browser on this machine reaches as `localhost` (the documented default PUBLIC_BASE_URL's host).
LOCAL_HOSTS = frozenset({"", "127.0.0.1", "localhost", "0.0.0.0", "::", "::1"})
WORKER_STOP_SECONDS = 10


def default_public_base_url(host: str, port: int) -> str:
    """PUBLIC_BASE_URL when unset: the port being served (the LINE API base URLs follow it in development)."""
    name = "localhost" if host in LOCAL_HOSTS else (f"[{host}]" if ":" in host else host)
    return f"http://{name}:{port}"


def simulator_office_settings(environ: Mapping[str, str], office_ids: Iterable[str]) -> dict[str, str]:
    """Each office's settings the simulator stands in for, where unset.

    - `LINE_STAFF_GROUP_ID_<OFFICE>`: the simulator's staff group, so request cards (approve / decline)
      appear in its staff pane.
    - `LINE_BASIC_ID_<OFFICE>`: an id for the completion page's back-to-LINE link, which the simulator turns
      into the bookings word typed in the chat (so the receipt comes as a reply).
    """
    from bot.simulator import events

    added: dict[str, str] = {}
    for office_id in office_ids:
        group, basic = f"LINE_STAFF_GROUP_ID_{office_id.upper()}", f"LINE_BASIC_ID_{office_id.upper()}"
        if not environ.get(group):
            added[group] = events.default_group_id(office_id)
        if not environ.get(basic):
            added[basic] = f"@sim-{office_id}"
    return added


def development_settings(environ: Mapping[str, str], office_ids: Iterable[str], host: str,
                         port: int) -> dict[str, str]:
    """Every setting `dev` adds because it is unset: the public URL, then the offices' simulator settings."""
    added = {} if environ.get("PUBLIC_BASE_URL") else {"PUBLIC_BASE_URL": default_public_base_url(host, port)}
    return {**added, **simulator_office_settings(environ, office_ids)}


def _raise_interrupt(signum, frame) -> None:
    """SIGTERM ends the server as Ctrl+C does, so the worker is stopped on the way out."""
    raise KeyboardInterrupt


# Ports above 1023 that Chromium and Firefox refuse to open (net::ERR_UNSAFE_PORT): kept for other protocols
# (SIP 5060/5061, X11 6000, IRC 6665-6669, ...), from Chromium's net/base/port_util.cc kRestrictedPorts.
BROWSER_BLOCKED_PORTS = frozenset({1719, 1720, 1723, 2049, 3659, 4045, 4190, 5060, 5061, 6000, 6566,
                                   6665, 6666, 6667, 6668, 6669, 6679, 6697, 10080})


def _warn_if_browsers_refuse(port: int) -> None:
    """`dev --port 5061` serves, but the browser the newcomer opens the simulator in refuses that port."""
    if port in BROWSER_BLOCKED_PORTS:
        click.echo(f"browsers refuse port {port} (ERR_UNSAFE_PORT: it is kept for another protocol), so the "
                   "simulator will not open there: start with `--port <another port>`", err=True)


def _exit_if_taken(host: str, port: int) -> None:
    """A port another program serves stops `dev` before it starts the worker and says it is running (Werkzeug
    would say so too, but only after both)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as Werkzeug binds: a closing port is free
        try:
            probe.bind((host, port))
        except OSError as error:
            click.echo(f"cannot serve {host} port {port} ({error.strerror or error}): stop the program that uses "
                       "it, or start with `--port <another port>`", err=True)
            sys.exit(1)


def _say_if_the_clock_is_moved(rt) -> None:
    """The shared clock's offset lives in the database: a run after one that moved it (the simulator's clock
    control, APP_FAKE_NOW) starts at that moved time, which the newcomer would otherwise take for today."""
    if settings_store.clock_offset(rt.db):
        click.echo(f"the app's clock is not the real time: it reads {rt.clock.now():%Y-%m-%d %H:%M} (Japan time), "
                   "as an earlier run moved it (the simulator's clock control or APP_FAKE_NOW); the simulator's "
                   "button for the real time sets it back")


def _stop(worker: subprocess.Popen) -> None:
    worker.terminate()
    try:
        worker.wait(timeout=WORKER_STOP_SECONDS)
    except subprocess.TimeoutExpired:
        worker.kill()
        worker.wait()


@click.command("dev")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@with_appcontext
def dev_command(host: str, port: int) -> None:
    """Run the bot in development with its worker, and print the simulator's URL."""
    rt = current_app.extensions["madoguchi"]
    if rt.config.is_production:
        click.echo("`dev` is for development only; use gunicorn and `flask --app app worker`.", err=True)
        sys.exit(2)
    _exit_if_taken(host, port)
    _warn_if_browsers_refuse(port)
    app = current_app._get_current_object()
    added = development_settings(os.environ, [o.id for o in rt.offices.values() if o.enabled], host, port)
    if added:
        from app import create_app  # the composition root, built again with the settings added

        os.environ.update(added)  # the worker inherits them too
        app = create_app()
        click.echo("development settings (unset, so filled in for the simulator): " + ", ".join(sorted(added)))
    base = app.extensions["madoguchi"].config.public_base_url
    _say_if_the_clock_is_moved(app.extensions["madoguchi"])
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    worker: subprocess.Popen | None = None
    try:
        worker = subprocess.Popen([sys.executable, "-m", "flask", "--app", "app", "worker"], env=dict(os.environ))
        click.echo(f"madoguchi is running: open {base}/simulator (staff dashboard: {base}/staff)")
        # Not app.run(): Flask ignores it inside a `flask` command (FLASK_RUN_FROM_CLI) and returns at once.
        run_simple(host, port, app, use_reloader=False, threaded=True)
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)
        if worker is not None:
            _stop(worker)
