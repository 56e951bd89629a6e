"""README's run command, its last part (`flask --app app dev`), run for real as a subprocess.

It prints the simulator's URL, /simulator answers, the worker it started delivers a push queued in the
outbox to the simulator's fake Messaging API, and SIGTERM stops the web process and the worker alike. Without
PUBLIC_BASE_URL the port given to --port is the public URL (so the bot's calls reach its own simulator), and
each office's staff group is the simulator's. README's list of commands names every command the app has.
"""
from __future__ import annotations

import json
import os
import queue
import re
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from datetime import datetime
from pathlib import Path

import pytest

from bot.clock import TOKYO

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
START_SECONDS = 60        # bounds, not expectations: a slow machine gets this long before the test fails
DELIVERY_SECONDS = 20
STOP_SECONDS = 20
URL_LINE = re.compile(r"open (http://\S+)/simulator\b")
# Settings of the developer's shell that would point the subprocess elsewhere than its tmp dir.
CLEARED = re.compile(r"^(APP_ENV|APP_FAKE_NOW|DATABASE_URL|INSTANCE_PATH|PUBLIC_BASE_URL|SECRET_KEY|"
                     r"DATA_ENCRYPTION_KEY|OFFICES_DIR|LINE_.*|FLASK_.*)$")


def readme_run_command() -> list[str]:
    """README's first command block, its last step, as this interpreter runs it."""
    lines = README.read_text(encoding="utf-8").splitlines()
    run = next(lines[i + 1] for i, line in enumerate(lines) if line.strip() == "```sh")
    last = shlex.split(run.split("&&")[-1])
    assert last[0] == ".venv/bin/flask" and last[1:] == ["--app", "app", "dev"], run
    return [sys.executable, "-m", "flask", *last[1:]]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class DevProcess:
    """`flask --app app dev --port <port>` with its own instance folder and database; its output kept."""

    def __init__(self, tmp: Path, port: int, public_base_url: str | None):
        env = {k: v for k, v in os.environ.items() if not CLEARED.match(k)}
        env.update(INSTANCE_PATH=str(tmp / "instance"), DATABASE_URL=f"sqlite:///{tmp / 'dev.sqlite3'}",
                   PYTHONUNBUFFERED="1")
        if public_base_url:
            env["PUBLIC_BASE_URL"] = public_base_url
        self.database_url = env["DATABASE_URL"]
        self.port = port
        self.lines: list[str] = []
        self._queue: queue.Queue[str] = queue.Queue()
        self.proc = subprocess.Popen([*readme_run_command(), "--port", str(port)], cwd=ROOT, env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                     start_new_session=True)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self._queue.put(line.rstrip("\n"))

    def output(self) -> str:
        while not self._queue.empty():
            self.lines.append(self._queue.get_nowait())
        return "\n".join(self.lines)

    def wait_for_line(self, pattern: re.Pattern) -> re.Match:
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            try:
                line = self._queue.get(timeout=0.2)
            except queue.Empty:
                assert self.proc.poll() is None, f"dev exited with {self.proc.returncode}:\n{self.output()}"
                continue
            self.lines.append(line)
            found = pattern.search(line)
            if found:
                return found
        pytest.fail(f"dev printed no line matching {pattern.pattern} in {START_SECONDS}s:\n{self.output()}")

    def children(self) -> list[tuple[int, str]]:
        """(pid, command line) of the processes this one started, read from /proc."""
        found = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
                if int(fields[1]) == self.proc.pid:
                    cmdline = (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode()
                    found.append((int(stat.parent.name), cmdline))
            except (OSError, IndexError, ValueError):
                continue  # a process that ended meanwhile
        return found

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=STOP_SECONDS)


@pytest.fixture
def start_dev(tmp_path):
    started: list[DevProcess] = []

    def start(public_base_url: str | None = "matching") -> DevProcess:
        port = free_port()
        url = f"http://127.0.0.1:{port}" if public_base_url == "matching" else public_base_url
        started.append(DevProcess(tmp_path, port, url))
        return started[-1]

    yield start
    for dev in started:
        dev.kill()


def get(url: str, data: dict | None = None) -> tuple[int, str]:
    body = json.dumps(data).encode() if data is not None else None
    headers = {"Content-Type": "application/json", "Accept": "application/json"} if data is not None else {}
    request = urllib.request.Request(url, data=body, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def wait_until_serving(base: str) -> tuple[int, str]:
    deadline = time.monotonic() + START_SECONDS
    while True:
        try:
            return get(f"{base}/simulator")
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def chat_texts(base: str, user_id: str) -> list[str]:
    status, body = get(f"{base}/simulator/poll?office=sakata&user={user_id}")
    assert status == 200
    return [m["message"].get("text", "") for m in json.loads(body)["user"] if m["sender"] == "bot"]


def wait_for_text(base: str, user_id: str, text: str | None) -> None:
    """Until the bot's message (any, for None) is in the user's chat in the simulator."""
    deadline = time.monotonic() + DELIVERY_SECONDS
    while not (text in chat_texts(base, user_id) if text else chat_texts(base, user_id)):
        assert time.monotonic() < deadline, f"{text or 'no message'!r} did not reach the simulator's chat"
        time.sleep(0.2)


def queue_push(database_url: str, user_id: str, text: str) -> None:
    """A push written straight into the outbox, as a job would: only the worker sends it."""
    from bot import outbox
    from bot.db import Database

    db = Database(database_url)
    try:
        with db.transaction() as s:
            # An answer's push (its event named): never held for the office's push hours, as this test runs on
            # the real clock, at any hour.
            outbox.add(s, office="sakata", kind="push", recipient=user_id, now=datetime.now(TOKYO),
                       messages=[{"type": "text", "text": text}], purpose="test", event_id="dev-command-test")
    finally:
        db.engine.dispose()


def add_user(base: str) -> str:
    status, body = get(f"{base}/simulator/users", {"office": "sakata", "name": "dev test"})
    assert status == 201, body
    return json.loads(body)["user_id"]


def stop_and_check(dev: DevProcess, worker_pid: int) -> None:
    dev.proc.send_signal(signal.SIGTERM)
    assert dev.proc.wait(timeout=STOP_SECONDS) == 0, dev.output()
    deadline = time.monotonic() + STOP_SECONDS
    while Path(f"/proc/{worker_pid}").exists():   # reaped by dev before it exits: gone, not orphaned
        assert time.monotonic() < deadline, f"the worker {worker_pid} outlived dev:\n{dev.output()}"
        time.sleep(0.1)


def test_dev_serves_the_simulator_runs_the_worker_and_stops_both_on_sigterm(start_dev):
    dev = start_dev()
    base = dev.wait_for_line(URL_LINE).group(1)
    assert base == f"http://127.0.0.1:{dev.port}"
    status, page = wait_until_serving(base)
    assert status == 200 and "LINE シミュレーター" in page
    workers = [pid for pid, cmd in dev.children() if cmd.split()[-1:] == ["worker"]]
    assert len(workers) == 1, dev.children()

    user_id = add_user(base)
    text = f"outbox push {uuid.uuid4().hex[:8]}"
    queue_push(dev.database_url, user_id, text)
    wait_for_text(base, user_id, text)
    stop_and_check(dev, workers[0])


def test_without_public_base_url_dev_uses_its_port_and_the_simulators_staff_group(start_dev):
    dev = start_dev(public_base_url=None)
    base = dev.wait_for_line(URL_LINE).group(1)
    assert base == f"http://localhost:{dev.port}"
    status, page = wait_until_serving(base)
    assert status == 200
    assert re.search(r"LINE_STAFF_GROUP_ID_SAKATA</code>\s*で設定済み", page), "the staff pane is not wired"
    workers = [pid for pid, cmd in dev.children() if cmd.split()[-1:] == ["worker"]]
    user_id = add_user(base)
    wait_for_text(base, user_id, None)   # the greeting: a reply sent to LINE_API_BASE_URL, which follows the port
    stop_and_check(dev, workers[0])


def test_flask_run_serves_the_app(tmp_path):
    """interface.md: `flask --app app run` serves the app (as `gunicorn app:app` does, tests/test_gunicorn.py):
    Flask finds `app` in app.py, and the health check and the development simulator answer."""
    env = {k: v for k, v in os.environ.items() if not CLEARED.match(k)}
    port = free_port()
    env.update(INSTANCE_PATH=str(tmp_path / "instance"), DATABASE_URL=f"sqlite:///{tmp_path / 'run.sqlite3'}",
               PUBLIC_BASE_URL=f"http://127.0.0.1:{port}")
    proc = subprocess.Popen([sys.executable, "-m", "flask", "--app", "app", "run", "--port", str(port)], cwd=ROOT,
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + START_SECONDS
        while True:
            try:
                status, body = get(f"{base}/healthz")
                break
            except OSError:
                assert proc.poll() is None, f"flask run exited with {proc.returncode}"
                assert time.monotonic() < deadline, "flask run did not serve"
                time.sleep(0.2)
        assert (status, json.loads(body)) == (200, {"status": "ok"})
        assert get(f"{base}/simulator")[0] == 200
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=STOP_SECONDS)


# -- README's list of commands --------------------------------------------------------------------------

def _commands(group, prefix: str = "") -> set[str]:
    import click

    names: set[str] = set()
    for name, command in group.commands.items():
        full = f"{prefix}{name}"
        if isinstance(command, click.Group):
            names |= _commands(command, f"{full} ")
        else:
            names.add(full)
    return names


def test_readme_lists_every_command():
    from flask import Flask

    from bot.cli import register_cli

    app = Flask(__name__)
    register_cli(app)
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## Commands"):]
    section = section[:section.index("\n## ", 1)]
    missing = sorted(name for name in _commands(app.cli) if f"`{name}" not in section)
    assert not missing, f"README's Commands section does not name: {missing}"


def settings_set_by_hand(monkeypatch) -> None:
    """Nothing for `dev` to fill in: the environment stays as it is (no second app is built)."""
    for office in ("SAKATA", "OTARU"):
        monkeypatch.setenv(f"LINE_BASIC_ID_{office}", f"@{office.lower()}")
        monkeypatch.setenv(f"LINE_STAFF_GROUP_ID_{office}", "C" + "0" * 32)
    monkeypatch.setenv("PUBLIC_BASE_URL", "http://localhost:5000")


def test_a_port_in_use_stops_dev_before_it_says_it_is_running(app, monkeypatch):
    """`dev` started the worker and printed "madoguchi is running: open …" before Werkzeug found the port taken."""
    settings_set_by_hand(monkeypatch)
    started = []
    monkeypatch.setattr(subprocess, "Popen", lambda *a, **k: started.append(a) or pytest.fail("worker started"))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = app.test_cli_runner().invoke(args=["dev", "--port", str(port)])
    assert result.exit_code == 1, result.output
    assert f"cannot serve 127.0.0.1 port {port}" in result.output and "--port <another port>" in result.output
    assert "is running" not in result.output and not started


class _Worker:
    """Stands for the worker `dev` starts, in a test that serves nothing."""

    def __init__(self, *args, **kwargs):
        pass

    def terminate(self) -> None:
        pass

    def wait(self, timeout=None) -> int:
        return 0


@pytest.mark.parametrize("moved", [False, True])
def test_dev_says_when_it_starts_on_a_clock_an_earlier_run_moved(app, rt, monkeypatch, moved):
    """The clock's offset outlives `dev` (it is in the database): a run after APP_FAKE_NOW or the simulator's
    clock control starts at that moved time, and `dev` says so, naming how to set it back."""
    from bot import settings_store
    from bot.cli import dev

    settings_set_by_hand(monkeypatch)
    monkeypatch.setattr(subprocess, "Popen", _Worker)
    monkeypatch.setattr(dev, "run_simple", lambda *args, **kwargs: None)
    if moved:
        settings_store.set_clock(rt.db, datetime(2026, 12, 1, 10, 0, tzinfo=TOKYO))
    rt.clock.forget()
    result = app.test_cli_runner().invoke(args=["dev", "--port", str(free_port())])
    assert result.exit_code == 0, result.output
    assert "madoguchi is running" in result.output
    said = "the app's clock is not the real time: it reads " in result.output
    assert said == moved, result.output
    if moved:
        assert f"it reads {rt.clock.now():%Y-%m-%d %H:%M} (Japan time)" in result.output
        assert "button for the real time sets it back" in result.output


@pytest.mark.parametrize(("port", "refused"), [(5061, True), (6667, True), (5062, False)])
def test_dev_warns_of_a_port_browsers_refuse_to_open(app, monkeypatch, port, refused):
    """Chromium and Firefox refuse some ports (5060/5061 SIP, 6665-6669 IRC, ...) with ERR_UNSAFE_PORT: `dev`
    would serve there, but the simulator's URL it prints would not open in the newcomer's browser."""
    from bot.cli import dev

    settings_set_by_hand(monkeypatch)
    monkeypatch.setattr(subprocess, "Popen", _Worker)
    monkeypatch.setattr(dev, "run_simple", lambda *args, **kwargs: None)
    monkeypatch.setattr(dev, "_exit_if_taken", lambda host, port: None)   # whether the port is free is not asked
    result = app.test_cli_runner().invoke(args=["dev", "--port", str(port)])
    assert result.exit_code == 0, result.output
    assert (f"browsers refuse port {port} (ERR_UNSAFE_PORT" in result.output) == refused, result.output
    assert "--port <another port>" in result.output or not refused
