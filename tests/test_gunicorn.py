"""madoguchi under real gunicorn with several sync workers, driven over HTTP like LINE drives it.

Signed, LINE-shaped webhooks for /callback/sakata and /callback/otaru (the same body from several
threads at once, redeliveries, batches) against `gunicorn -w 3 app:app` on a loopback port, with
the loopback fake Messaging API standing in for LINE.  Each event must get exactly one reply.
"""
from __future__ import annotations

import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
import requests

from bot.config import load_config
from tests.lineuser import LineUser, as_redelivery, sign

ROOT = Path(__file__).resolve().parent.parent
GUNICORN = Path(sys.executable).with_name("gunicorn")
START_TIMEOUT = 30.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Gunicorn:
    """A gunicorn subprocess serving the app; always stopped (then killed if it lingers)."""

    def __init__(self, target: str, env: dict[str, str], log_path: Path, workers: int = 3,
                 options: tuple[str, ...] = ()):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self._log = open(log_path, "wb")
        self.proc = subprocess.Popen(
            [str(GUNICORN), "-w", str(workers), "-b", f"127.0.0.1:{self.port}", "--timeout", "30",
             "--graceful-timeout", "5", *options, target],
            cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)

    def wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"gunicorn exited {self.proc.returncode}:\n{self.log()}")
            try:
                if requests.get(self.url + "/healthz", timeout=5).status_code == 200:
                    break
            except requests.RequestException:
                pass
            time.sleep(0.1)
        else:
            raise AssertionError(f"gunicorn did not answer in {START_TIMEOUT} s:\n{self.log()}")
        # Every worker builds the app on its first request: warm them all up in parallel.
        threads = [threading.Thread(target=lambda: requests.get(self.url + "/healthz", timeout=20))
                   for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=10)
            except (subprocess.TimeoutExpired, ProcessLookupError):
                pass
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(timeout=10)
        self._log.close()

    def log(self, whole: bool = False) -> str:
        self._log.flush()
        text = self.log_path.read_text(errors="replace")
        return text if whole else text[-4000:]


def server_env(tmp_path: Path, database_url: str, fake_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LINE_", "APP_", "DATABASE_URL"))}
    env.update({
        "APP_ENV": "development",
        "DATABASE_URL": database_url,
        "INSTANCE_PATH": str(tmp_path / "instance"),
        "LINE_API_BASE_URL": fake_url,
        "LINE_API_DATA_BASE_URL": fake_url,
        "PUBLIC_BASE_URL": "http://127.0.0.1:5000",
        "PYTHONPATH": str(ROOT),
    })
    return env


@pytest.fixture
def served(tmp_path, database_url, fake_line):
    def start(target: str = "app:app", workers: int = 3, options: tuple[str, ...] = ()) -> Gunicorn:
        server = Gunicorn(target, server_env(tmp_path, database_url, fake_line.url), tmp_path / "gunicorn.log",
                          workers=workers, options=options)
        servers.append(server)
        server.wait_ready()
        return server

    servers: list[Gunicorn] = []
    yield start
    for server in servers:
        server.stop()


def secrets_for(tmp_path: Path) -> dict[str, str]:
    cfg = load_config(environ={"INSTANCE_PATH": str(tmp_path / "instance")})
    return {office: cfg.channel_secret(office) for office in ("sakata", "otaru")}


def _post_from_threads(url: str, path: str, raw: bytes, secret: str, n: int) -> list[int]:
    barrier = threading.Barrier(n)
    statuses: list[int] = []

    def one():
        barrier.wait(timeout=10)
        r = requests.post(url + path, data=raw, timeout=20, headers={
            "Content-Type": "application/json; charset=utf-8", "X-Line-Signature": sign(raw, secret)})
        statuses.append(r.status_code)

    threads = [threading.Thread(target=one) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    return statuses


def test_gunicorn_with_three_workers_replies_once_to_every_event(served, tmp_path, fake_line):
    started = time.monotonic()
    server = served("app:app")
    secrets = secrets_for(tmp_path)
    users = [LineUser(server.url, office, channel_secret=secrets[office], fake=fake_line)
             for office in ("sakata", "otaru") for _ in range(3)]
    expected_tokens: list[str] = []
    statuses: list[int] = []
    latencies: list[float] = []
    lock = threading.Lock()

    def conversation(user: LineUser):
        """Each user in their own thread: a follow, words, a batch, the same body at once, a redelivery."""
        mine = []
        for send in (user.follows, lambda: user.says("予約"), lambda: user.says("ヘルプ")):
            began = time.monotonic()
            response = send()
            with lock:
                latencies.append(time.monotonic() - began)
            mine.append((response.status_code, user.last_reply_token))
        now_ms = int(time.time() * 1000)
        batch = [user.text_event("予約確認", timestamp=now_ms + 1), user.text_event("中止", timestamp=now_ms)]
        response = user.post(user.body(batch))
        mine += [(response.status_code, ev["replyToken"]) for ev in batch]
        same = user.text_event("予約")
        raw = user.body(same)
        codes = _post_from_threads(server.url, user.path, raw, user.channel_secret, 4)
        mine += [(code, None) for code in codes] + [(200, same["replyToken"])]
        response = user.post(user.body(as_redelivery(batch[0])))  # LINE redelivers one already handled
        mine.append((response.status_code, None))
        with lock:
            for code, token in mine:
                statuses.append(code)
                if token:
                    expected_tokens.append(token)

    threads = [threading.Thread(target=conversation, args=(u,)) for u in users]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert all(not t.is_alive() for t in threads)
    assert statuses and set(statuses) == {200}, server.log()

    # Replies are sent by the web processes right after their commits: wait for stragglers only.
    deadline = time.monotonic() + 10
    while len(fake_line.deliveries("reply")) < len(expected_tokens) and time.monotonic() < deadline:
        time.sleep(0.05)
    replies = Counter(d.reply_token for d in fake_line.deliveries("reply"))
    assert set(replies) == set(expected_tokens), server.log()
    assert max(replies.values()) == 1  # no event answered twice
    assert fake_line.deliveries("push") == []
    for user in users:
        assert user.texts(), user
    took = time.monotonic() - started
    latencies.sort()
    print(f"gunicorn -w 3: {len(expected_tokens)} events from {len(users)} users, one reply each; {took:.1f} s; "
          f"single-event webhook median {latencies[len(latencies) // 2]:.3f} s, max {latencies[-1]:.3f} s")
    log = server.log()
    assert "Traceback" not in log, log
    assert "予約" not in log  # message text never logged


def test_procfile_web_command_serves_the_webhook(served, tmp_path, fake_line):
    procfile = (ROOT / "Procfile").read_text()
    web = next(line.split(":", 1)[1] for line in procfile.splitlines() if line.startswith("web:"))
    target = shlex.split(web)[-1]
    assert re.match(r"^app:", target)
    server = served(target, workers=2)
    user = LineUser(server.url, "otaru", channel_secret=secrets_for(tmp_path)["otaru"], fake=fake_line)
    assert user.follows().status_code == 200
    assert len(user.texts()) == 1
    assert user.post(user.body(user.last_event)).status_code == 200
    assert len(user.texts()) == 1


# An operator chasing a problem: everything at DEBUG, SQLAlchemy's engine logger too, gunicorn's access log on.
DEBUG_LOGGING = """\
[loggers]
keys = root, sqlalchemy, access, error

[handlers]
keys = out

[formatters]
keys = plain

[logger_root]
level = DEBUG
handlers = out

[logger_sqlalchemy]
level = DEBUG
handlers =
qualname = sqlalchemy.engine

[logger_access]
level = DEBUG
handlers = out
propagate = 0
qualname = gunicorn.access

[logger_error]
level = DEBUG
handlers = out
propagate = 0
qualname = gunicorn.error

[handler_out]
class = StreamHandler
formatter = plain
args = (sys.stdout,)

[formatter_plain]
format = %(levelname)s %(name)s %(message)s
"""


def _form_post(session: requests.Session, url: str, html: str, values: dict[str, str]) -> requests.Response:
    """The page's one form sent with `values` over its own fields (hidden ones, the CSRF token)."""
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', html))
    action = re.search(r'<form method="post" action="([^"]+)"', html)[1]
    return session.post(url + action, data={**fields, **values}, timeout=20, allow_redirects=True)


def test_a_booking_under_gunicorn_at_debug_logs_no_personal_value_nor_the_form_link(served, tmp_path, fake_line,
                                                                                      rt):
    """SECURITY.md, "The operator": a whole booking through gunicorn with every logger at DEBUG (the app's,
    SQLAlchemy's engine logger, gunicorn's access and error logs), and the form's error paths (a value refused,
    a stale CSRF token, an altered link): the server's output holds none of the values typed, the sensitive
    answer or the user's form link."""
    from tests.formflow import form_link, path_of, walk_to_slots
    from tests.reliability.kit import Person, leaks

    config = tmp_path / "logging.ini"
    config.write_text(DEBUG_LOGGING)
    server = served("app:app", workers=1, options=("--log-config", str(config), "--log-level", "debug",
                                                   "--access-logfile", "-"))
    user = LineUser(server.url, "sakata", channel_secret=secrets_for(tmp_path)["sakata"], fake=fake_line)
    walk_to_slots(user, rt)
    user.says("1")
    path = path_of(form_link(fake_line.messages_to(user.user_id)))
    token = path.rsplit("/form/", 1)[1]
    person = Person(4242)
    answers = {**person.answers(rt.offices["sakata"]), "category": "disability"}
    browser = requests.Session()
    page = browser.get(server.url + path, timeout=20)
    assert page.status_code == 200 and 'name="csrf_token"' in page.text, server.log()
    refused = _form_post(browser, server.url, page.text, {**answers, "phone": "12"})    # a value refused
    assert refused.status_code == 200 and person.name in refused.text
    stale = browser.post(server.url + path, data={**answers, "csrf_token": "stale"}, timeout=20)
    assert stale.status_code in (400, 403)
    altered = browser.post(server.url + path[:-3] + "xyz", data=answers, timeout=20)
    assert altered.status_code == 404
    confirmation = _form_post(browser, server.url, page.text, answers)
    assert confirmation.status_code == 200 and "/confirm" in confirmation.text, server.log()
    done = _form_post(browser, server.url, confirmation.text, {})
    assert "受付番号: " in done.text, server.log()
    user.says("予約確認")
    log = server.log(whole=True)
    assert "sqlalchemy.engine" in log and "gunicorn.access" in log and "bot.forms" in log, log[-4000:]
    assert "/form/<token>" in log
    assert leaks(log.encode(), [*person.secrets(), token, "disability", user.user_id]) == []
