"""The crash run: real processes killed with SIGKILL at random points while people book, then restarted.

The web process is gunicorn as the Procfile runs it (`app:create_app()`, two sync workers) and the worker is
`flask --app app worker`, both on one database (a SQLite file, or PostgreSQL). The loopback fake Messaging
API plays LINE, and the run plays LINE's webhook delivery too: a body not answered 200 (refused connection,
reset, 5xx) is sent again as a redelivery until it is. Meanwhile users chat their way to a slot, fill in the
details form over HTTP (pressing the button again when a page does not come back), and a member of staff
confirms every request on the dashboard. At points drawn from the seed (counted in webhook events handled)
the web process or the worker is killed with SIGKILL — its whole process group, mid-request or mid-send —
and started again.

Afterwards the shared development clock is moved past the sending lease (what a killed process was sending
is then taken over), the outbox is drained, and every user writes once more. `CrashRun.check()` lists what
broke: an event LINE delivered but nobody recorded, a request lost or made twice, a push lost or delivered
twice, a reply token used twice, a conversation that did not resume.
"""
from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import requests
from sqlalchemy import func, select

from bot import outbox, settings_store
from bot.clock import TOKYO
from bot.models import Booking, Conversation, OutboxMessage, ProcessedEvent
from bot.staff import auth
from tests.formflow import ANSWER_WORD, _FormParser, form_link
from tests.lineuser import LineUser
from tests.reliability.kit import Person, capacity_problems, leaks, push_outcome_problem, states_valid

ROOT = Path(__file__).resolve().parent.parent.parent
GUNICORN = Path(sys.executable).with_name("gunicorn")
FAKE_NOW = "2026-12-01T10:00:00+09:00"      # a Tuesday: both offices have free slots ahead
STAFF_GROUP = "C" + "5" * 32
STAFF_PASSWORD = "crash run password"
CONFIRMED_WORDS = "予約が確定しました"
START_TIMEOUT = 40.0
JOURNEY_TIMEOUT = 90.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# -- processes ---------------------------------------------------------------------------------------------

class Process:
    """One of the app's processes, in its own process group (killed whole), logging to a file."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log_path: Path):
        self.name, self.argv, self.env, self.log_path = name, argv, env, log_path
        self.proc: subprocess.Popen | None = None
        self.starts = 0

    def start(self) -> None:
        log = open(self.log_path, "ab")
        log.write(f"\n--- start {self.starts + 1} ---\n".encode())
        log.flush()
        self.proc = subprocess.Popen(self.argv, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        log.close()
        self.starts += 1

    def kill(self) -> None:
        """SIGKILL the whole group: no handler runs, nothing is flushed, nothing is released."""
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=10)
        except (subprocess.TimeoutExpired, ProcessLookupError):
            self.kill()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, chars: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:] if self.log_path.exists() else ""


def process_env(workdir: Path, database_url: str, fake_url: str, base_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LINE_", "APP_", "DATABASE_URL"))}
    env.update({
        "APP_ENV": "development", "APP_FAKE_NOW": FAKE_NOW, "DATABASE_URL": database_url,
        "INSTANCE_PATH": str(workdir / "instance"), "LINE_API_BASE_URL": fake_url,
        "LINE_API_DATA_BASE_URL": fake_url, "PUBLIC_BASE_URL": base_url, "PYTHONPATH": str(ROOT),
        "LINE_STAFF_GROUP_ID_SAKATA": STAFF_GROUP,
    })
    return env


class Stack:
    """gunicorn and the worker, started, killed and restarted on one port and one database."""

    def __init__(self, workdir: Path, database_url: str, fake_url: str):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = process_env(workdir, database_url, fake_url, self.url)
        self.web = Process("web", [str(GUNICORN), "--workers", "2", "--bind", f"127.0.0.1:{self.port}",
                                   "--timeout", "30", "app:create_app()"], self.env, workdir / "web.log")
        self.worker = Process("worker", [sys.executable, "-m", "flask", "--app", "app", "worker"], self.env,
                              workdir / "worker.log")

    def start_web(self) -> None:
        self.web.start()
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if not self.web.alive():
                raise RuntimeError(f"gunicorn exited:\n{self.web.log_tail()}")
            try:
                if requests.get(self.url + "/healthz", timeout=5).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"gunicorn did not answer in {START_TIMEOUT} s:\n{self.web.log_tail()}")

    def start(self) -> None:
        self.start_web()
        self.worker.start()

    def stop(self) -> None:
        self.worker.stop()
        self.web.stop()


# -- figures -----------------------------------------------------------------------------------------------

@dataclass
class CrashFigures:
    seed: int
    backend: str
    users: int
    web_kills: int = 0
    worker_kills: int = 0
    events: int = 0               # webhook events LINE delivered (each until answered 200)
    redeliveries: int = 0         # deliveries that had to be made again
    form_retries: int = 0         # form or dashboard requests a person had to send again
    requests: int = 0
    confirmed: int = 0
    pushes: int = 0
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)

    def row(self) -> dict[str, object]:
        return {"seed": self.seed, "database": self.backend, "users": self.users, "web kills": self.web_kills,
                "worker kills": self.worker_kills, "events": self.events, "redelivered": self.redeliveries,
                "resent by people": self.form_retries, "requests": self.requests, "confirmed": self.confirmed,
                "pushes": self.pushes, "seconds": round(self.seconds, 1)}


# -- people ------------------------------------------------------------------------------------------------

class Courier:
    """LINE's webhook delivery: every event is posted until it is answered 200 (redelivered after a failure)."""

    def __init__(self, run: "CrashRun"):
        self.run = run
        self.lock = threading.Lock()
        self.delivered: list[str] = []        # webhookEventIds answered 200

    def deliver(self, user: LineUser, event: dict) -> None:
        user.history.append(event)
        attempt, deadline = 0, time.monotonic() + JOURNEY_TIMEOUT
        while True:
            body = user.body(event if attempt == 0 else {**event, "deliveryContext": {"isRedelivery": True}})
            try:
                if user.post(body).status_code == 200:
                    break
            except requests.RequestException:
                pass
            attempt += 1
            if time.monotonic() > deadline:
                raise RuntimeError(f"event {event['webhookEventId']} never answered 200")
            time.sleep(0.1 * min(attempt, 5))
        with self.lock:
            self.delivered.append(event["webhookEventId"])
            self.run.figures.events += 1
            self.run.figures.redeliveries += attempt
        self.run.on_event()


class Seeker:
    """One job seeker: chat to a slot, fill in the form (again when a page fails), and come back at the end."""

    def __init__(self, run: "CrashRun", n: int, office: str):
        self.run, self.n, self.office = run, n, office
        self.user = LineUser(run.stack.url, office, channel_secret=run.rt.config.channel_secret(office),
                             fake=run.fake, timeout=8.0)
        self.reference: str | None = None
        self.error: str | None = None
        self.resumed = False

    def say(self, text: str) -> None:
        self.run.courier.deliver(self.user, self.user.text_event(text))

    def journey(self) -> None:
        try:
            office = self.run.rt.offices[self.office]
            self.say("予約")
            self.say("同意する")
            for question in office.eligibility:
                self.say(ANSWER_WORD[question.passing[0]])
            for _ in office.checklist:
                self.say("はい")
            url = self._hold_a_slot()
            self.reference = self._fill_in(url)
        except Exception as exc:  # noqa: BLE001 - reported by check()
            self.error = f"{type(exc).__name__}: {exc}"

    def _links(self) -> list[str]:
        try:
            return [form_link(self.run.fake.messages_to(self.user.user_id))]
        except AssertionError:
            return []

    def _hold_a_slot(self) -> str:
        """"1" until a slot is held; when a reply was lost with a crash, 予約 shows the step (and link) again."""
        for attempt in range(12):
            before = self._links()
            self.say("次の週" if attempt in (4, 8) else "1")
            for _ in range(2):
                found = self._links()
                if found and found != before:
                    return found[0]
                self.say("予約")
                time.sleep(0.2)
        raise RuntimeError("never got a form link")

    def _fill_in(self, url: str) -> str:
        browser = requests.Session()
        page = self.run.http(browser, "get", url)
        form = _one_form(page.text)
        answers = Person(500 + self.n).answers(self.run.rt.offices[self.office])
        confirmation = self.run.http(browser, "post", _absolute(url, form.action), data={**form.fields, **answers})
        confirm_form = _one_form(confirmation.text)
        done = self.run.http(browser, "post", _absolute(url, confirm_form.action), data=confirm_form.fields)
        found = [line for line in done.text.splitlines() if "受付番号:" in line]
        if not found:
            raise RuntimeError(f"no completion page ({done.status_code})")
        return found[0].split("受付番号:")[1].strip()[:9]


def _one_form(html: str):
    parser = _FormParser()
    parser.feed(html)
    if len(parser.forms) != 1:
        raise RuntimeError(f"expected one form, found {len(parser.forms)}")
    return parser.forms[0]


def _absolute(url: str, action: str) -> str:
    from urllib.parse import urljoin

    return urljoin(url, action)


class Staff:
    """A member of staff on the dashboard, confirming every request as it comes in."""

    def __init__(self, run: "CrashRun", office: str, username: str):
        self.run, self.office, self.username = run, office, username
        self.browser = requests.Session()
        self.error: str | None = None

    def _csrf(self, html: str) -> str:
        parser = _FormParser()
        parser.feed(html)
        for form in parser.forms:
            if "csrf_token" in form.fields:
                return form.fields["csrf_token"]
        raise RuntimeError("no CSRF token on the page")

    def work(self, done: threading.Event) -> None:
        try:
            base = self.run.stack.url
            page = self.run.http(self.browser, "get", base + "/staff/login")
            self.run.http(self.browser, "post", base + "/staff/login", data={
                "username": self.username, "password": STAFF_PASSWORD, "csrf_token": self._csrf(page.text)})
            while True:
                waiting = self.run.requested(self.office)
                for reference in waiting:
                    page = self.run.http(self.browser, "get", f"{base}/staff/bookings/{reference}")
                    self.run.http(self.browser, "post", f"{base}/staff/bookings/{reference}/confirm",
                                  data={"csrf_token": self._csrf(page.text)})
                if done.is_set() and not waiting:
                    return
                time.sleep(0.2)
        except Exception as exc:  # noqa: BLE001 - reported by check()
            self.error = f"{type(exc).__name__}: {exc}"


# -- the run -----------------------------------------------------------------------------------------------

class CrashRun:
    def __init__(self, rt, fake, workdir: Path, database_url: str, *, seed: int, users: int = 6, kills: int = 6):
        self.rt, self.fake, self.seed = rt, fake, seed
        self.rng = random.Random(seed)
        self.stack = Stack(workdir, database_url, fake.url)
        self.figures = CrashFigures(seed=seed, backend=rt.db.engine.dialect.name, users=users)
        self.courier = Courier(self)
        self.people = [Seeker(self, n, "sakata" if n % 3 == 0 else "otaru") for n in range(users)]
        self.staff = [Staff(self, office, f"crashrun-{office}") for office in ("sakata", "otaru")]
        # Kill points, counted in events handled: spread over the journeys (15 to 20 events a person).
        span = 12 * users
        points = sorted(self.rng.sample(range(8, span), kills))
        self.kill_plan = [(p, "web" if k % 2 == 0 else "worker") for k, p in enumerate(points)]
        self._next_kill = threading.Event()
        self._kills_done = threading.Event()
        # Set before the stack stops, on every way out of run(): the killer then kills and restarts nothing more.
        # `_restarting` is held across each kill and restart and across the stack's stop, so a restart the
        # killer has begun ends before the stop, and none begins after it.
        self._stopping = threading.Event()
        self._restarting = threading.Lock()

    # -- helpers used by people --------------------------------------------------------------------------
    def http(self, session: requests.Session, method: str, url: str, **kwargs) -> requests.Response:
        """A browser request; a person tries again while the site does not answer (counted)."""
        deadline = time.monotonic() + JOURNEY_TIMEOUT
        while True:
            try:
                response = getattr(session, method)(url, timeout=8, allow_redirects=True, **kwargs)
                if response.status_code < 500:
                    return response
            except requests.RequestException:
                pass
            self.figures.form_retries += 1
            if time.monotonic() > deadline:
                raise RuntimeError(f"{method.upper()} {url} never answered")
            time.sleep(0.3)

    def requested(self, office: str) -> list[str]:
        with self.rt.db.reading() as s:
            return list(s.scalars(select(Booking.reference).where(Booking.office_id == office,
                                                                  Booking.status == "requested")))

    def on_event(self) -> None:
        if self.kill_plan and self.figures.events >= self.kill_plan[0][0]:
            self._next_kill.set()

    # -- killing -----------------------------------------------------------------------------------------
    def _killer(self) -> None:
        try:
            while self.kill_plan and not self._stopping.is_set():
                if not self._next_kill.wait(timeout=JOURNEY_TIMEOUT):
                    break
                self._next_kill.clear()
                with self._restarting:
                    if self._stopping.is_set() or not self.kill_plan:
                        break
                    _, target = self.kill_plan.pop(0)
                    process = self.stack.web if target == "web" else self.stack.worker
                    process.kill()
                    if target == "web":
                        self.figures.web_kills += 1
                    else:
                        self.figures.worker_kills += 1
                    time.sleep(self.rng.uniform(0.0, 0.4))
                    self.stack.start_web() if target == "web" else self.stack.worker.start()
                if self.kill_plan and self.figures.events >= self.kill_plan[0][0]:
                    self._next_kill.set()
        finally:
            self._kills_done.set()

    def _stop_killer(self, killer: threading.Thread) -> None:
        """No kill and no restart after this: the killer is told to stop, and waited for."""
        self._stopping.set()
        self.kill_plan.clear()
        self._next_kill.set()
        if killer.is_alive():
            killer.join(timeout=START_TIMEOUT + 15)

    def _stop_stack(self, killer: threading.Thread) -> None:
        self._stop_killer(killer)
        with self._restarting:   # a restart still running (the join timed out) ends first; none starts after
            self.stack.stop()

    # -- the run -----------------------------------------------------------------------------------------
    def prepare(self) -> None:
        with self.rt.db.transaction() as s:
            for staff in self.staff:
                auth.create_user(s, office_id=staff.office, username=staff.username, password=STAFF_PASSWORD,
                                 role="staff", now=self.rt.clock.now())

    def run(self) -> CrashFigures:
        started = time.monotonic()
        self.prepare()
        killer = threading.Thread(target=self._killer, daemon=True)
        try:
            self.stack.start()   # inside: a gunicorn that did not answer in time is stopped too
            killer.start()
            journeys = [threading.Thread(target=p.journey) for p in self.people]
            staff_done = threading.Event()
            staffers = [threading.Thread(target=staff.work, args=(staff_done,)) for staff in self.staff]
            for thread in journeys + staffers:
                thread.start()
            for thread in journeys:
                thread.join(timeout=JOURNEY_TIMEOUT * 3)
            staff_done.set()
            for thread in staffers:
                thread.join(timeout=JOURNEY_TIMEOUT)
            self._stop_killer(killer)
            self._settle()
            seen = {person: len(self.fake.texts_to(person.user.user_id)) for person in self.people}
            for person in self.people:
                person.say("予約確認")
            self._drain(("reply", "push"))
            for person in self.people:
                person.resumed = len(self.fake.texts_to(person.user.user_id)) > seen[person]
        finally:
            self._stop_stack(killer)
        self.figures.seconds = time.monotonic() - started
        self._tally()
        return self.figures

    def _settle(self) -> None:
        """Everything is up: move the shared clock past the sending lease, and wait for the outbox to drain."""
        if not self.stack.web.alive():
            self.stack.start_web()
        if not self.stack.worker.alive():
            self.stack.worker.start()
        shared_now = datetime.now(TOKYO) + timedelta(seconds=settings_store.clock_offset(self.rt.db))
        settings_store.set_clock(self.rt.db, shared_now + outbox.SENDING_LEASE + timedelta(minutes=1))
        self._drain(("push",))

    def _drain(self, kinds: tuple[str, ...], seconds: float = 30.0) -> None:
        """Wait until the worker has sent every row of these kinds (it does within seconds once all is up)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            with self.rt.db.reading() as s:
                waiting = s.scalar(select(func.count()).select_from(OutboxMessage).where(
                    OutboxMessage.kind.in_(kinds), OutboxMessage.status.in_(("pending", "sending", "held"))))
            if not waiting:
                return
            time.sleep(0.2)

    def _tally(self) -> None:
        with self.rt.db.reading() as s:
            self.figures.requests = s.scalar(select(func.count()).select_from(Booking)) or 0
            self.figures.confirmed = s.scalar(select(func.count()).select_from(Booking).where(
                Booking.status == "confirmed")) or 0
            self.figures.pushes = s.scalar(select(func.count()).select_from(OutboxMessage).where(
                OutboxMessage.kind == "push")) or 0

    # -- what must hold ----------------------------------------------------------------------------------
    def check(self) -> list[str]:
        problems = [f"{p.user.user_id[:9]}… did not finish: {p.error}" for p in self.people if p.error]
        problems += [f"{s.username} could not work: {s.error}" for s in self.staff if s.error]
        problems += [f"{p.user.user_id[:9]}… got no answer after the crashes" for p in self.people if not p.resumed]
        with self.rt.db.reading() as s:
            recorded = set(s.scalars(select(ProcessedEvent.webhook_event_id)))
            rows = list(s.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))
            bookings = Counter(s.scalars(select(Booking.conversation_id)))
            convs = dict(s.execute(select(Conversation.line_user_id, Conversation.id)).all())
            by_reference = dict(s.execute(select(Booking.reference, Booking.status)).all())
        lost = [e for e in self.courier.delivered if e not in recorded]
        if lost:
            problems.append(f"{len(lost)} events answered 200 but never recorded (lost)")
        for person in self.people:
            conv_id = convs.get(person.user.user_id)
            if bookings.get(conv_id, 0) != (1 if person.reference else 0):
                problems.append(f"{person.user.user_id[:9]}… has {bookings.get(conv_id, 0)} requests")
            if person.reference and by_reference.get(person.reference) != "confirmed":
                problems.append(f"request {person.reference} is {by_reference.get(person.reference)}, not confirmed")
            texts = self.fake.texts_to(person.user.user_id)
            if person.reference and sum(CONFIRMED_WORDS in t for t in texts) != 1:
                problems.append(f"{person.user.user_id[:9]}… got the confirmation "
                                f"{sum(CONFIRMED_WORDS in t for t in texts)} times")
        pushes = {r.retry_key: r for r in rows if r.kind == "push"}
        delivered = Counter(d.retry_key for d in self.fake.deliveries("push"))
        problems += [p for p in (push_outcome_problem(row, delivered[key]) for key, row in pushes.items()) if p]
        if any(key not in pushes for key in delivered):
            problems.append("a push was delivered that no row asked for")
        tokens = Counter(d.reply_token for d in self.fake.deliveries("reply"))
        problems += [f"reply token used {n} times" for n in tokens.values() if n > 1]
        problems += states_valid(self.rt) + capacity_problems(self.rt)
        typed = [value for n in range(len(self.people)) for value in Person(500 + n).secrets()]
        for process in (self.stack.web, self.stack.worker):
            if process.log_path.exists() and leaks(process.log_path.read_bytes(), typed):
                problems.append(f"the {process.name} log holds personal values")
        return problems

    def logs(self) -> str:
        return f"--- web ---\n{self.stack.web.log_tail()}\n--- worker ---\n{self.stack.worker.log_tail()}"


def run_crash(rt, fake, workdir: Path, database_url: str, *, seed: int, users: int = 6,
              kills: int = 6) -> tuple[CrashFigures, list[str], str]:
    """One crash run: figures, what broke (empty when every promise held), and the processes' log tails."""
    run = CrashRun(rt, fake, workdir, database_url, seed=seed, users=users, kills=kills)
    figures = run.run()
    problems = run.check()
    figures.problems = problems
    return figures, problems, run.logs()


__all__ = ["CrashFigures", "CrashRun", "run_crash"]
