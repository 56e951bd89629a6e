"""`flask --app app dev`: the web process and the worker together, for trying madoguchi locally."""
from __future__ import annotations

import os
import subprocess
import sys

import click
from flask import current_app
from flask.cli import with_appcontext


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
    env = dict(os.environ)
    worker = subprocess.Popen([sys.executable, "-m", "flask", "--app", "app", "worker"], env=env)
    base = rt.config.public_base_url
    click.echo(f"madoguchi is running: open {base}/simulator (staff dashboard: {base}/staff)")
    try:
        current_app.run(host=host, port=port, debug=False, use_reloader=False, threaded=True)
    finally:
        worker.terminate()
        worker.wait(timeout=10)
