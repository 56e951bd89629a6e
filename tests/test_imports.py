"""Data flows one way: design.md's import rules, enforced by reading every module's imports (ast, no import).

| module              | must not import                                |
|---------------------|------------------------------------------------|
| dialogs/*           | flask, linebot, sqlalchemy, bot                |
| bot/offices/*       | flask, linebot, dialogs                        |
| bot/services/*      | flask, linebot, dialogs                        |
| bot/webhook.py      | bot.services, linebot.v3.messaging             |
| bot/line_client.py  | dialogs, bot.services                          |
| everywhere          | linebot outside linebot.v3 (the v2 API)        |

Then, by the same reading of the source: domain code that takes a session never commits or opens a transaction,
dialogs do no I/O (a small pure import list, no clock reads, no files), views build no query (sqlalchemy.exc
only), only the outbox sends messages to LINE, Python holds no Japanese text for people to read (templates/ does),
and no function is longer than 80 lines.
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SKIP_DIRS = {".venv", "instance", "node_modules", "__pycache__", ".git"}

RULES: list[tuple[str, tuple[str, ...]]] = [
    ("dialogs/", ("flask", "linebot", "sqlalchemy", "bot")),
    ("bot/offices/", ("flask", "linebot", "dialogs")),
    ("bot/services/", ("flask", "linebot", "dialogs")),
    ("bot/webhook.py", ("bot.services", "linebot.v3.messaging")),
    ("bot/line_client.py", ("dialogs", "bot.services")),
]


def python_files() -> list[Path]:
    return sorted(p for p in ROOT.rglob("*.py") if not SKIP_DIRS & set(p.relative_to(ROOT).parts))


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(source: str, module: str, is_package: bool = False) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in the source, function-level ones included.

    `from a import b` yields both `a` and `a.b` (b may be a submodule); relative imports are resolved.
    """
    found: list[tuple[int, str]] = []
    package = module.split(".") if is_package else module.split(".")[:-1]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                target = ".".join(part for part in [*base, node.module or ""] if part)
            else:
                target = node.module or ""
            found.append((node.lineno, target))
            found += [(node.lineno, f"{target}.{alias.name}" if target else alias.name)
                      for alias in node.names if alias.name != "*"]
    return found


def _matches(name: str, forbidden: str) -> bool:
    return name == forbidden or name.startswith(forbidden + ".")


def violations(relative: str, imports: list[tuple[int, str]]) -> list[str]:
    out = []
    for prefix, forbidden in RULES:
        if relative == prefix or (prefix.endswith("/") and relative.startswith(prefix)):
            out += [f"{relative}:{line} imports {name} (forbidden: {bad})"
                    for line, name in imports for bad in forbidden if _matches(name, bad)]
    out += [f"{relative}:{line} imports {name} (line-bot-sdk v2 API; use linebot.v3)"
            for line, name in imports if _matches(name, "linebot") and not _matches(name, "linebot.v3")]
    return sorted(set(out))


def scan(path: Path) -> list[str]:
    relative = path.relative_to(ROOT).as_posix()
    imports = imported_modules(path.read_text(encoding="utf-8"), module_name(path), path.name == "__init__.py")
    return violations(relative, imports)


def test_the_scan_sees_the_modules_the_rules_are_about():
    relatives = {p.relative_to(ROOT).as_posix() for p in python_files()}
    for prefix, _ in RULES:
        assert any(r == prefix or r.startswith(prefix) for r in relatives), prefix


@pytest.mark.parametrize("path", python_files(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_imports_follow_the_rules(path):
    assert scan(path) == []


# -- the scanner itself ---------------------------------------------------------------------------

@pytest.mark.parametrize("relative,source", [
    ("dialogs/machine.py", "import flask"),
    ("dialogs/machine.py", "def f():\n    from sqlalchemy import select\n"),
    ("dialogs/machine.py", "from bot.models import Conversation"),
    ("dialogs/machine.py", "from .. import bot"),
    ("bot/services/terms.py", "from dialogs.machine import State"),
    ("bot/services/terms.py", "from ...dialogs import machine"),
    ("bot/services/terms.py", "from flask import current_app"),
    ("bot/offices/model.py", "import linebot.v3.messaging"),
    ("bot/line_client.py", "from bot.services import terms"),
    ("bot/line_client.py", "from bot import services"),
    ("bot/webhook.py", "from linebot.v3.messaging import ApiClient"),
    ("bot/runtime.py", "from linebot import LineBotApi"),
    ("bot/runtime.py", "import linebot"),
    ("app.py", "from linebot.models import TextSendMessage"),
])
def test_the_scan_catches_forbidden_imports(relative, source):
    module = relative.removesuffix(".py").replace("/", ".")
    assert violations(relative, imported_modules(source, module))


@pytest.mark.parametrize("relative,source", [
    ("dialogs/machine.py", "from transitions import Machine\nfrom dialogs.router import route"),
    ("dialogs/engine.py", "from .router import route"),
    ("bot/services/slots.py", "from bot.offices import Office\nfrom sqlalchemy import select"),
    ("bot/line_client.py", "from linebot.v3.messaging import ApiClient"),
    ("bot/webhook.py", "from linebot.v3 import WebhookParser\nfrom bot.dispatch import Dispatcher"),
    ("bot/dispatch.py", "from bot.services import terms\nfrom dialogs import engine"),
])
def test_the_scan_allows_what_the_rules_allow(relative, source):
    module = relative.removesuffix(".py").replace("/", ".")
    assert violations(relative, imported_modules(source, module)) == []


# -- who owns the transaction, and what a dialog may touch -----------------------------------------
# design.md: domain code takes a session and never commits (dispatch, the worker's jobs, the views and the CLI own
# the transaction: one per event or request); dialogs emit effects and do no I/O (no clock read but `talk.now`,
# no files, no network), so their imports stay within the pure standard library, transitions and dialogs itself.

SESSION_TAKERS = ("bot/services/", "dialogs/", "bot/ports.py", "bot/notify.py",
                  "bot/staff/decisions.py", "bot/staff/audit.py", "bot/staff/timeline.py", "bot/staff/queue.py",
                  "bot/staff/undelivered.py", "bot/staff/handoff.py", "bot/staff/personal.py", "bot/staff/groups.py",
                  "bot/staff/auth.py")
VIEWS = ("bot/staff/views/", "bot/forms.py", "bot/webhook.py", "bot/web.py")  # adapters: read, hand off, answer
TRANSACTION_CALLS = frozenset({"commit", "rollback", "begin", "transaction", "reading", "close"})
DIALOG_IMPORTS = ("__future__", "collections", "dataclasses", "datetime", "enum", "functools", "itertools", "re",
                  "typing", "unicodedata", "urllib.parse", "transitions", "dialogs")
CLOCK_CALLS = frozenset({"now", "utcnow", "today", "time", "monotonic", "perf_counter"})


def _covered(relative: str, prefixes: tuple[str, ...]) -> bool:
    return any(relative == p or (p.endswith("/") and relative.startswith(p)) for p in prefixes)


def _scanned(path: Path, scanner) -> list[str]:
    return scanner(path.relative_to(ROOT).as_posix(), path.read_text(encoding="utf-8"))


def _called(tree: ast.AST) -> list[tuple[int, str, bool]]:
    """(line, name, is a method) of every call: `x.commit()` gives ("commit", True), `open()` ("open", False)."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            if isinstance(node.func, ast.Attribute):
                found.append((node.lineno, node.func.attr, True))
            elif isinstance(node.func, ast.Name):
                found.append((node.lineno, node.func.id, False))
    return found


def layer_violations(relative: str, source: str) -> list[str]:
    tree = ast.parse(source)
    out = []
    if _covered(relative, VIEWS):
        module = relative.removesuffix(".py").replace("/", ".")
        out += [f"{relative}:{line} imports {name} (a view builds no query: a service or staff module does)"
                for line, name in imported_modules(source, module)
                if _matches(name, "sqlalchemy") and not _matches(name, "sqlalchemy.exc")]
    if _covered(relative, SESSION_TAKERS):
        out += [f"{relative}:{line} calls .{name}() (the caller owns the transaction)"
                for line, name, method in _called(tree) if method and name in TRANSACTION_CALLS]
    if relative.startswith("dialogs/"):
        module = relative.removesuffix(".py").replace("/", ".")
        out += [f"{relative}:{line} imports {name} (dialogs do no I/O)"
                for line, name in imported_modules(source, module, relative.endswith("__init__.py"))
                if not any(_matches(name, allowed) for allowed in DIALOG_IMPORTS)]
        out += [f"{relative}:{line} calls {'.' if method else ''}{name}() (I/O or a clock read in a dialog)"
                for line, name, method in _called(tree)
                if (method and name in CLOCK_CALLS) or (not method and name in {"open", "print", "input"})]
    return sorted(set(out))


def test_the_layer_scan_sees_the_modules_it_is_about():
    relatives = {p.relative_to(ROOT).as_posix() for p in python_files()}
    for prefix in SESSION_TAKERS:
        assert any(r == prefix or r.startswith(prefix) for r in relatives), prefix


@pytest.mark.parametrize("path", [p for p in python_files()
                                  if _covered(p.relative_to(ROOT).as_posix(), (*SESSION_TAKERS, *VIEWS))],
                         ids=lambda p: p.relative_to(ROOT).as_posix())
def test_domain_code_leaves_the_transaction_to_its_caller_dialogs_do_no_io_and_views_build_no_query(path):
    assert _scanned(path, layer_violations) == []


@pytest.mark.parametrize("relative,source", [
    ("bot/services/holds.py", "def f(session):\n    session.commit()\n"),
    ("bot/services/terms.py", "def f(session):\n    session.rollback()\n"),
    ("bot/staff/decisions.py", "def f(rt):\n    with rt.db.transaction() as s:\n        pass\n"),
    ("bot/ports.py", "def f(rt):\n    with rt.db.reading() as s:\n        pass\n"),
    ("dialogs/machine.py", "def f(session):\n    session.commit()\n"),
    ("dialogs/machine.py", "from datetime import datetime\ndef f():\n    return datetime.now()\n"),
    ("dialogs/machine.py", "import time\ndef f():\n    return time.time()\n"),
    ("dialogs/engine.py", "def f():\n    return open('x').read()\n"),
    ("dialogs/router.py", "import urllib.request"),
    ("dialogs/router.py", "import os"),
    ("dialogs/router.py", "from pathlib import Path"),
    ("dialogs/router.py", "import requests"),
    ("dialogs/router.py", "import socket"),
    ("bot/staff/views/booking.py", "from sqlalchemy import select"),
    ("bot/forms.py", "import sqlalchemy"),
])
def test_the_layer_scan_catches_transactions_and_io(relative, source):
    assert layer_violations(relative, source)


@pytest.mark.parametrize("relative,source", [
    ("bot/services/requests.py", "def f(session):\n    with session.begin_nested():\n        session.flush()\n"),
    ("bot/dispatch.py", "def f(rt):\n    with rt.db.transaction() as s:\n        s.commit()\n"),
    ("bot/staff/views/day.py", "from sqlalchemy.exc import DBAPIError\n"
                               "def f(rt):\n    with rt.db.transaction() as s:\n        pass\n"),
    ("dialogs/machine.py", "from datetime import timedelta\nfrom transitions import Machine\n"
                           "def f(talk):\n    return talk.now + timedelta(minutes=5)\n"),
    ("dialogs/router.py", "from urllib.parse import parse_qsl\nfrom dialogs.inputs import Incoming\n"),
])
def test_the_layer_scan_allows_what_the_design_allows(relative, source):
    assert layer_violations(relative, source) == []


# -- who sends to LINE -----------------------------------------------------------------------------
# Messages go through the transactional outbox (bot/outbox.py sends its rows). Two known exceptions, each with its
# own record: dispatch's apology when the database is down (no outbox to write to), and the operator's terms
# announcement (`flask terms tell`: its runs and chunks are rows of bot/services/broadcasts.py, with retry keys).

SEND_CALLS = frozenset({"reply", "push", "multicast", "broadcast", "narrowcast",
                        "reply_message", "push_message", "multicast_message", "broadcast_message"})
SENDERS = ("bot/outbox.py", "bot/line_client.py", "bot/dispatch.py", "bot/cli/terms.py")


def send_violations(relative: str, source: str) -> list[str]:
    if _covered(relative, SENDERS) or relative.startswith(("tests/", "bot/simulator/")):
        return []
    return [f"{relative}:{line} calls .{name}() (messages go through the outbox)"
            for line, name, method in _called(ast.parse(source)) if method and name in SEND_CALLS]


@pytest.mark.parametrize("path", python_files(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_only_the_outbox_sends_messages_to_line(path):
    assert _scanned(path, send_violations) == []


@pytest.mark.parametrize("relative,source", [
    ("bot/staff/decisions.py", "def f(rt, user):\n    rt.line.push('sakata', user, [], 'key')\n"),
    ("bot/notify.py", "def f(client):\n    client.reply('sakata', 'token', [])\n"),
    ("bot/worker.py", "def f(api):\n    api.push_message(None)\n"),
])
def test_the_send_scan_catches_a_message_sent_beside_the_outbox(relative, source):
    assert send_violations(relative, source)


# -- user-facing words live in templates/ -----------------------------------------------------------
# Python holds no Japanese text for people to read: messages, pages and labels are templates found by name. What it
# may hold is what it reads: the words and marks of typed input (a slot, a date of birth, a 受付番号), in the parsers
# below, and the weekday of the fixed slot format `M/D(曜) HH:MM` (interface.md). Docstrings and comments may quote.

JAPANESE = re.compile(r"[\u3000-\u303f\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uff00-\uffef]")
READERS_OF_TYPED_TEXT = ("bot/services/slot_text.py", "bot/services/validation.py", "bot/services/slots.py",
                         "dialogs/router.py", "bot/textfmt.py", "bot/staff/decisions.py")


def japanese_violations(relative: str, source: str) -> list[str]:
    if not relative.startswith(("bot/", "dialogs/", "app.py")) or _covered(relative, READERS_OF_TYPED_TEXT):
        return []
    tree = ast.parse(source)
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                  and node.body and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)}
    return [f"{relative}:{node.lineno} holds Japanese text {node.value[:30]!r} (it belongs in templates/)"
            for node in ast.walk(tree) if isinstance(node, ast.Constant) and isinstance(node.value, str)
            and id(node) not in docstrings and JAPANESE.search(node.value)]


@pytest.mark.parametrize("path", python_files(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_python_holds_no_japanese_text_for_people_to_read(path):
    assert _scanned(path, japanese_violations) == []


@pytest.mark.parametrize("relative,source", [
    ("bot/notify.py", "def f():\n    return '予約が確定しました。'\n"),
    ("bot/staff/views/day.py", "def f(n):\n    return f'{n}件の申込みがあります'\n"),
    ("dialogs/machine.py", "LABEL = '\\u540c\\u610f\\u3059\\u308b'\n"),   # escaped is still Japanese
])
def test_the_japanese_scan_catches_text_in_python(relative, source):
    assert japanese_violations(relative, source)


def test_the_japanese_scan_lets_docstrings_quote():
    assert japanese_violations("bot/notify.py", 'def f():\n    """Sends 予約確定のお知らせ."""\n    # 予約\n') == []


# -- functions one can read at once ---------------------------------------------------------------

LONGEST_FUNCTION = 80   # lines, decorators left out


def long_functions(relative: str, source: str) -> list[str]:
    if not relative.startswith(("bot/", "dialogs/", "app.py")):
        return []
    return [f"{relative}:{node.lineno} {node.name} has {node.end_lineno - node.lineno + 1} lines "
            f"(split it at most at {LONGEST_FUNCTION})" for node in ast.walk(ast.parse(source))
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
            and node.end_lineno - node.lineno + 1 > LONGEST_FUNCTION]


@pytest.mark.parametrize("path", python_files(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_no_function_is_longer_than_a_screen(path):
    assert _scanned(path, long_functions) == []


def test_the_length_scan_counts_a_functions_lines():
    body = "".join(f"    x{i} = {i}\n" for i in range(LONGEST_FUNCTION))
    assert long_functions("bot/notify.py", "def f():\n" + body)
    assert long_functions("bot/notify.py", "def f():\n" + body[: -len(body.splitlines(True)[-1])]) == []
