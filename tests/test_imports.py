"""Data flows one way: design.md's import rules, enforced by reading every module's imports (ast, no import).

| module              | must not import                                |
|---------------------|------------------------------------------------|
| dialogs/*           | flask, linebot, sqlalchemy, bot                |
| bot/offices.py      | flask, linebot, dialogs                        |
| bot/services/*      | flask, linebot, dialogs                        |
| bot/webhook.py      | bot.services, linebot.v3.messaging             |
| bot/line_client.py  | dialogs, bot.services                          |
| everywhere          | linebot outside linebot.v3 (the v2 API)        |
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SKIP_DIRS = {".venv", "instance", "node_modules", "__pycache__", ".git"}

RULES: list[tuple[str, tuple[str, ...]]] = [
    ("dialogs/", ("flask", "linebot", "sqlalchemy", "bot")),
    ("bot/offices.py", ("flask", "linebot", "dialogs")),
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
    ("bot/offices.py", "import linebot.v3.messaging"),
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
