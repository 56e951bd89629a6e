"""Claims of SECURITY.md that no other test held to: each test names the sentence it checks.

- "Personal values are encrypted with keys that are not stored in the database ... Rotate keys by putting the new
  key first in DATA_ENCRYPTION_KEY and running `flask --app app keys rotate`; once it reports nothing unreadable,
  remove the old key": every encrypted column of the schema is one `keys rotate` re-encrypts, the stored channel
  credentials included (a column it missed would be unreadable, or the service down, once the old key went).
- What staff write about a booking goes with its details (`データ削除`, the retention purge): the memo of an
  attendance correction too, which is free text like the cancellation memo.
- "Every POST carries a CSRF token bound to the browser's session and to the link": a token one browser got on
  one link does not pass on another link open in the same browser.
- "a guessed or altered token is a 404": a link whose contents were changed (another conversation, another
  office) under its old signature, or signed with another SECRET_KEY, opens nothing.
- "Logs carry event ids, types, states and outcomes only — never message text or personal data": no logger call
  in the code passes such a value or an exception whole (the full runs check what is logged on their paths; this
  checks every call, also on the paths they do not take); a server's log of every request line (Werkzeug's
  development server, gunicorn's access log, and gunicorn's error log at debug level or for a request failing
  outside the app) names the form's route, never the user's link.
- "a database error is logged by its type and SQLSTATE, never its message": a command stopped by one too.
"""
from __future__ import annotations

import ast
import logging
import threading
import urllib.request
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from itsdangerous import URLSafeTimedSerializer
from sqlalchemy import LargeBinary, select

from bot import channels
from bot.cli import keys
from bot.models import Booking
from bot.runtime import FORM_SALT
from bot.schema import Base
from bot.staff import jobs as staff_jobs
from bot.staff import personal
from bot.staff.models import AuditEntry
from tests.formflow import Page, hold_directly, path_of, valid_answers
from tests.staffkit import fast_password_hashing, staff, user  # noqa: F401 - fixtures
from tests.staffkit import SAKATA_MONDAY, booking, login, make_request, post, postback_value

# Binary columns that hold no personal value and are not encrypted: the simulator's rich menu image (development
# only). Any other binary column is a Fernet token under DATA_ENCRYPTION_KEY.
NOT_ENCRYPTED = {("sim_rich_menus", "image")}
# Encrypted columns stored as text (a Fernet token is ASCII).
ENCRYPTED_TEXT = {("staff_users", "totp_secret")}

MEMO = "本人より電話 090-7777-6666 通院のため遅れて参加"


def test_keys_rotate_covers_every_encrypted_column_of_the_schema():
    binary = {(table.name, column.name) for table in Base.metadata.sorted_tables for column in table.columns
              if isinstance(column.type, LargeBinary)}
    rotated = {(target.model.__table__.name, target.column) for target in keys.targets()}
    assert binary - NOT_ENCRYPTED <= rotated, "an encrypted column `keys rotate` does not re-encrypt"
    assert ENCRYPTED_TEXT <= rotated
    assert binary & NOT_ENCRYPTED and not (rotated & NOT_ENCRYPTED)


def test_keys_rotate_moves_the_stored_channel_credentials_to_the_new_key(make_app, rt):
    """The channels store is read at start-up: a credential left under the old key would stop the office (or, in
    production, the app) once the old key is removed as SECURITY.md says."""
    old = list(rt.config.data_encryption_keys)
    with rt.db.transaction() as s:
        channels.put(s, old, "sakata", {"secret": "stored-secret-0123456789", "token": "stored-token-abcdef"},
                     rt.clock.now())
    new = Fernet.generate_key().decode()
    both = make_app(data_encryption_keys=(new, *old))
    result = both.test_cli_runner().invoke(args=["keys", "rotate"])
    assert result.exit_code == 0, result.output
    assert "channel credentials: rotated=1 already_current=0 unreadable=0" in result.output
    assert "stored-secret" not in result.output and "stored-token" not in result.output
    with rt.db.reading() as s:
        assert channels.stored(s, [new])["sakata"] == {"secret": "stored-secret-0123456789",
                                                        "token": "stored-token-abcdef"}
        assert channels.stored(s, old) == {}


def _corrected(rt, staff, user_id: str | None, start) -> str:
    """A confirmed Sakata session recorded 出席, then corrected to 欠席 with a typed memo."""
    reference = make_request(rt, start=start, user_id=user_id)
    assert post(staff, f"/staff/bookings/{reference}/confirm").status_code == 302
    rt.clock.freeze(start + timedelta(minutes=11))
    login(staff)
    post(staff, f"/staff/bookings/{reference}/attended")
    rt.clock.advance(minutes=5)
    post(staff, f"/staff/bookings/{reference}/correct_attendance", to="no_show", reason="other", note=MEMO)
    assert booking(rt, reference).status == "no_show"
    assert personal.open_note(rt, _correction(rt, reference).note) == MEMO
    return reference


def _correction(rt, reference: str) -> AuditEntry:
    with rt.db.reading() as s:
        return s.scalars(select(AuditEntry).where(AuditEntry.reference == reference,
                                                  AuditEntry.action == "correct_attendance")).one()


@pytest.mark.parametrize("how", ["data deletion", "retention purge"])
def test_an_attendance_correction_memo_goes_with_the_details(rt, staff, user, how):
    reference = _corrected(rt, staff, user.user_id if how == "data deletion" else None, SAKATA_MONDAY)
    if how == "data deletion":
        user.says("データ削除")
        user.taps(postback_value(user.messages(), "削除する"))
    else:
        keep = rt.offices["sakata"].retention_rules()["personal_details_days_after_session"]
        rt.clock.freeze(SAKATA_MONDAY + timedelta(days=keep, minutes=5))
        assert staff_jobs.run_due(rt)["details_purged"] == 1
    assert booking(rt, reference).details is None
    entry = _correction(rt, reference)                      # the entry stays, without its memo
    assert entry.note is None and entry.detail == {"before": "attended", "after": "no_show", "reason": "other"}


def _bookings(rt) -> int:
    with rt.db.reading() as s:
        return len(s.scalars(select(Booking)).all())


def test_a_form_csrf_token_is_bound_to_its_link_as_well_as_the_browser(app, rt):
    _, first = hold_directly(rt, "sakata")
    _, second = hold_directly(rt, "sakata")
    browser = app.test_client()
    token_of_first = Page.get(browser, first).form.fields["csrf_token"]
    page = Page.get(browser, second)                 # the same browser: the same session secret
    answers = valid_answers(rt.offices["sakata"])
    crossed = page.submit(browser, answers, extra={"csrf_token": token_of_first})
    assert crossed.status == 400
    for step in ("/resume", "/edit", "/confirm"):    # every POST of the form, the kept page's 「続ける」 included
        data = {**page.form.fields, **answers, "csrf_token": token_of_first}
        assert browser.post(path_of(second) + step, data=data).status_code == 400, step
    confirmation = page.submit(browser, answers)
    assert confirmation.status == 200
    data = {**confirmation.form.fields, "csrf_token": token_of_first}
    assert browser.post(confirmation.form.action, data=data).status_code == 400
    assert _bookings(rt) == 0
    assert confirmation.submit(browser).status == 200 and _bookings(rt) == 1   # its own token passes


def test_a_form_link_altered_under_its_signature_or_signed_with_another_key_is_a_404(app, rt):
    conversation, url = hold_directly(rt, "sakata")
    other, _ = hold_directly(rt, "otaru")
    token = path_of(url).rsplit("/", 1)[1]
    data = rt.read_form_token(token)
    payload, signature = token.rsplit(".", 2)[0], token.rsplit(".", 2)[1:]
    genuine = URLSafeTimedSerializer(rt.config.secret_key, salt=FORM_SALT)
    forged = [
        ".".join([genuine.dumps({**data, "c": other}).split(".")[0], *signature]),      # another conversation
        ".".join([genuine.dumps({**data, "o": "otaru"}).split(".")[0], *signature]),    # another office
        URLSafeTimedSerializer("another-secret-key-" + "x" * 32, salt=FORM_SALT).dumps(data),
        URLSafeTimedSerializer(rt.config.secret_key, salt="another-purpose").dumps(data),
    ]
    assert payload and len(set(forged)) == 4
    visitor = app.test_client()
    for bad in forged:
        assert visitor.get(f"/form/{bad}").status_code == 404, bad
        assert visitor.post(f"/form/{bad}/confirm", data=valid_answers(rt.offices["sakata"])).status_code == 404
    assert visitor.get(path_of(url)).status_code == 200 and conversation != other
    assert _bookings(rt) == 0


# -- what the log may say ---------------------------------------------------------------------------------

# "Logs carry event ids, types, states and outcomes only — never message text or personal data; a database error
# is logged by its type and SQLSTATE, never its message". Read from the code: no call of a logger in bot/ passes
# a value named like a personal one, a LINE id or token, a request's address or body, or an exception itself (its
# message may quote a row); `describe_error` and `type(...).__name__` are how an error is named.
LOG_LEVELS = {"debug", "info", "warning", "error", "exception", "critical", "log"}
PERSONAL_NAMES = {"user_id", "line_user_id", "recipient", "reply_token", "token", "text", "details", "note",
                  "staff_note", "name", "name_kana", "phone", "seeker_number", "birth_date", "consultation",
                  "companion", "values", "payload", "messages", "path", "full_path", "url", "form", "args", "data",
                  "json", "body", "override_reason", "memo"}
# The local LINE simulator (development only, 404 in production) names its made-up users.
DEVELOPMENT_ONLY = ("bot/simulator/",)
# Names that mean something else where they are logged: (file, name) -> what it is.
NOT_PERSONAL = {("bot/staff/jobs.py", "details"): "the number of bookings whose details the purge took"}


def _logger_calls(tree):
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in LOG_LEVELS
                and isinstance(node.func.value, ast.Name) and node.func.value.id in ("log", "logger", "logging")):
            yield node


def _what_a_log_call_passes(call, caught: set[str]) -> list[str]:
    """The problems of one call: names of personal values among its arguments, an exception passed whole."""
    found = []
    if call.func.attr == "exception" or any(k.arg == "exc_info" for k in call.keywords):
        found.append("a traceback (with the error's message)")
    for argument in [*call.args, *(k.value for k in call.keywords)]:
        for node in ast.walk(argument):
            named = node.attr if isinstance(node, ast.Attribute) else node.id if isinstance(node, ast.Name) else None
            if named in PERSONAL_NAMES:
                found.append(named)
        if isinstance(argument, ast.Name) and argument.id in caught:
            found.append(f"the exception {argument.id} itself")
        if (isinstance(argument, ast.Call) and isinstance(argument.func, ast.Name)
                and argument.func.id in ("str", "repr") and any(
                    isinstance(a, ast.Name) and a.id in caught for a in argument.args)):
            found.append(f"the message of {argument.args[0].id}")
    return found


def logger_problems(root) -> list[str]:
    problems = []
    for path in sorted(Path(root).rglob("*.py")):
        shown = path.relative_to(Path(root).parent).as_posix()
        if shown.startswith(DEVELOPMENT_ONLY):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        caught = {h.name for h in ast.walk(tree) if isinstance(h, ast.ExceptHandler) and h.name}
        for call in sorted(_logger_calls(tree), key=lambda c: c.lineno):
            problems += [f"{shown}:{call.lineno}: {what}" for what in _what_a_log_call_passes(call, caught)
                         if (shown, what) not in NOT_PERSONAL]
    return problems


def test_no_logger_call_passes_a_personal_value_or_an_errors_message():
    root = Path(__file__).resolve().parent.parent / "bot"
    calls = [c for p in root.rglob("*.py") for c in _logger_calls(ast.parse(p.read_text(encoding="utf-8")))]
    assert len(calls) > 40, "no logger call was found: the check proves nothing"
    assert logger_problems(root) == []


def test_the_log_check_finds_what_it_looks_for(tmp_path):
    """The check above, on a module that does each thing it refuses (so it cannot pass by finding nothing)."""
    bot = tmp_path / "bot"
    bot.mkdir()
    (bot / "leaky.py").write_text(
        "import logging\nlog = logging.getLogger(__name__)\n"
        "def f(conv, request, row):\n"
        "    log.info('user=%s', conv.line_user_id)\n"
        "    log.info('path=%s', request.path)\n"
        "    try:\n        pass\n    except Exception as exc:\n"
        "        log.error('failed: %s', exc)\n"
        "        log.error('failed: %s', str(exc))\n"
        "        log.warning('failed', exc_info=True)\n"
        "        log.exception('failed')\n"
        "    log.info('note=%s', row.staff_note)\n", encoding="utf-8")
    found = logger_problems(bot)
    assert [line.split(": ", 1)[1] for line in found] == [
        "line_user_id", "path", "the exception exc itself", "the message of exc",
        "a traceback (with the error's message)", "a traceback (with the error's message)", "staff_note"], found


def test_a_servers_request_log_names_the_forms_route_never_the_users_link(app, rt, caplog):
    """Werkzeug's development server logs every request line, gunicorn's access log too when turned on: the
    path of the form is the user's link, which opens their form while the slot is held."""
    from werkzeug.serving import make_server

    _, url = hold_directly(rt, "sakata")
    token = path_of(url).rsplit("/", 1)[1]
    caplog.set_level(logging.DEBUG)
    server = make_server("127.0.0.1", 0, app)
    thread = threading.Thread(target=server.serve_forever)
    thread.start()
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{server.port}{path_of(url)}") as answer:
            assert answer.status == 200
    finally:
        server.shutdown()
        thread.join()
    logging.getLogger("gunicorn.access").info('%(h)s "%(r)s" %(s)s', {   # as gunicorn's access log writes it
        "h": "127.0.0.1", "r": f"GET {path_of(url)}/confirm HTTP/1.1", "s": "200"})
    lines = [r.getMessage() for r in caplog.records if r.name in ("werkzeug", "gunicorn.access")]
    assert len(lines) == 2 and all("/form/<token>" in line for line in lines), lines
    assert token not in caplog.text


def test_gunicorns_error_log_names_the_forms_route_never_the_users_link(app, rt):
    """gunicorn's error log (`gunicorn.error`, on by default) writes a request's path too: at `--log-level debug`
    its default `pre_request` hook logs every request as `GET /form/…`, and a request failing outside the app
    is logged as `Error handling request POST /form/…`. Neither may carry the user's link."""
    from types import SimpleNamespace

    from gunicorn.config import Config
    from gunicorn.glogging import Logger

    _, url = hold_directly(rt, "sakata")
    token = path_of(url).rsplit("/", 1)[1]
    cfg = Config()
    cfg.set("loglevel", "debug")
    error_log = logging.getLogger("gunicorn.error")
    level, propagate, handlers = error_log.level, error_log.propagate, list(error_log.handlers)
    seen: list[str] = []

    class Kept(logging.Handler):
        def emit(self, record):
            seen.append(record.getMessage())

    kept = Kept()
    glog = Logger(cfg)  # as gunicorn's arbiter sets its loggers up (its handler: stderr, not propagated)
    error_log.addHandler(kept)
    try:
        request = SimpleNamespace(method="POST", path=path_of(url), uri=f"{path_of(url)}/confirm")
        cfg.pre_request(SimpleNamespace(log=glog), request)
        try:
            raise OSError("client went away")
        except OSError:
            glog.exception("Error handling request %s %s", request.method, request.uri)  # gunicorn/workers/base.py
    finally:
        for handler in list(error_log.handlers):
            if handler not in handlers:
                error_log.removeHandler(handler)
        error_log.setLevel(level)
        error_log.propagate = propagate
    assert len(seen) == 2 and all("/form/<token>" in line for line in seen), seen
    assert not any(token in line for line in seen), seen


def test_a_command_stopped_by_a_database_error_prints_its_type_never_its_message(app, monkeypatch):
    """"a database error is logged by its type and SQLSTATE, never its message (which may quote row values)": a
    command is run by hand or by a scheduler whose output goes to the same log, and a `worker --once` pass (or
    `keys rotate`, a purge) that meets a constraint violation got the driver's traceback, with PostgreSQL's DETAIL
    quoting the row (here a LINE user id)."""
    from sqlalchemy.exc import IntegrityError

    from bot.outbox import Sender

    line_id = "U" + "7" * 32

    class UniqueViolation(Exception):
        sqlstate = "23505"

    def violated(self):
        raise IntegrityError("UPDATE conversations SET line_user_id=%(line_user_id)s", None, UniqueViolation(
            'duplicate key value violates unique constraint "uq_conversations_office_user"\n'
            f"DETAIL:  Key (office_id, line_user_id)=(sakata, {line_id}) already exists."), hide_parameters=True)

    monkeypatch.setattr(Sender, "recover_stale", violated)
    result = app.test_cli_runner().invoke(args=["worker", "--once"])
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit), "an exception left the command: a traceback with its message"
    assert "IntegrityError (UniqueViolation, 23505)" in result.output, result.output
    assert line_id not in result.output
