"""Browser fixtures: the app served for real (with its worker alongside) and Debian's Chromium via Playwright.

No Chromium is a failure, never a skip: the README's test command installs it.
"""
from __future__ import annotations

import logging
import os
import shutil
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from tests.conftest import DEFAULT_NOW
from tests.formflow import uris
from tests.lineuser import LineUser

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--no-first-run", "--disable-sync"]
TIMEOUT_MS = 10_000


def chromium_executable() -> str:
    path = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium")
    if not path:
        pytest.fail("Chromium not found: install Debian's chromium (see README) or set CHROMIUM_PATH")
    return path


class LiveServer:
    """The app on 127.0.0.1:<free port>, its LINE API pointing at its own simulator, a worker thread beside it."""

    def __init__(self, tmp: Path):
        from app import create_app
        from bot.worker import Worker

        self._server = make_server("127.0.0.1", 0, self._wsgi, threaded=True)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self.app = create_app({
            "instance_path": str(tmp / "instance"),
            "database_url": f"sqlite:///{tmp / 'browser.sqlite3'}",
            "public_base_url": self.url,
            "line_api_base_url": f"{self.url}/simulator/api",
            "line_api_data_base_url": f"{self.url}/simulator/api",
            "testing": True,
        })
        self.rt = self.app.extensions["madoguchi"]
        self.rt.clock.freeze(DEFAULT_NOW)
        self._worker = Worker(self.rt)
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                          daemon=True),
                         threading.Thread(target=self._work, daemon=True)]

    def _wsgi(self, environ, start_response):
        return self.app(environ, start_response)

    def _work(self) -> None:
        while not self._stop.is_set():
            try:
                self._worker.run_once()
            except Exception:  # noqa: BLE001 - like `flask … worker`: log and keep going
                logging.getLogger(__name__).exception("worker pass failed")
            self._stop.wait(0.3)

    def start(self) -> "LiveServer":
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._server.shutdown()
        for thread in self._threads:
            thread.join(timeout=5)
        self.rt.db.dispose()


class SimulatorLine:
    """The fake LINE a `LineUser` talks through, for the live server: its replies and pushes go to the
    simulator the server is configured with, which accepts the reply tokens registered here and keeps what
    it was sent."""

    def __init__(self, rt, office_id: str):
        self.rt, self.office_id = rt, office_id

    def register_reply_token(self, token: str, chat_id: str) -> None:
        from bot.simulator import store

        with self.rt.db.transaction() as s:
            store.issue_reply_token(s, self.office_id, chat_id, token, datetime.now(timezone.utc))

    def messages_to(self, chat_id: str) -> list[dict]:
        from bot.simulator import store

        with self.rt.db.reading() as s:
            return [row.message for row in store.messages_after(s, self.office_id, chat_id, 0) if row.sender == "bot"]

    def new_form_link(self, chat_id: str, before: str | None = None) -> str:
        """The form link the chat sent last, once it is not `before` (a reply the worker delivers comes a
        moment after the webhook's answer)."""
        deadline = time.monotonic() + TIMEOUT_MS / 1000
        link = _last_form_link(self.messages_to(chat_id))
        while link in (None, before) and time.monotonic() < deadline:
            time.sleep(0.1)
            link = _last_form_link(self.messages_to(chat_id))
        said = [m.get("text", "")[:80] for m in self.messages_to(chat_id)][-3:]
        assert link not in (None, before), f"the chat sent no new form link: {said}"
        return link


def _last_form_link(messages: list[dict]) -> str | None:
    links = [uri for uri in uris(messages) if "/form/" in uri]
    return links[-1] if links else None


@pytest.fixture
def line_user(live_server):
    """A job seeker chatting with the live server by signed webhooks over HTTP: `make(office)` -> LineUser,
    whose `fake` (a SimulatorLine) reads what the chat sent."""
    def make(office_id: str = "sakata") -> LineUser:
        rt = live_server.rt
        return LineUser(live_server.url, office_id, channel_secret=rt.config.channel_secret(office_id),
                        fake=SimulatorLine(rt, office_id), clock=rt.clock)
    return make


@pytest.fixture(scope="module")
def live_server(tmp_path_factory):
    server = LiveServer(tmp_path_factory.mktemp("browser")).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    executable = chromium_executable()
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, live_server):
    from playwright.sync_api import expect

    expect.set_options(timeout=TIMEOUT_MS)
    context = browser.new_context(viewport={"width": 1280, "height": 1000}, locale="ja-JP", timezone_id="Asia/Tokyo")
    tab = context.new_page()
    tab.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    yield tab
    context.close()
    assert errors == [], f"the page raised: {errors}"


@pytest.fixture
def screenshot(page, request):
    def take(name: str) -> Path:
        ARTIFACTS.mkdir(exist_ok=True)
        path = ARTIFACTS / f"{request.node.name}-{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path
    return take
