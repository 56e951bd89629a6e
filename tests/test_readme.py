"""README's two commands are the real ones: .ci/run runs exactly the README's test command."""
from pathlib import Path
from types import SimpleNamespace

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _commands(text: str) -> list[str]:
    lines = text.splitlines()
    return [lines[i + 1] for i, line in enumerate(lines) if line.strip() == "```sh"]


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    run_command, test_command = _commands(readme)[:2]
    assert "pytest" in test_command and "requirements-dev.txt" in test_command
    assert test_command in ci.splitlines()
    assert "requirements.txt" in run_command and "flask --app app dev" in run_command


def test_procfile_has_the_three_processes():
    procfile = (ROOT / "Procfile").read_text()
    kinds = {line.split(":", 1)[0] for line in procfile.splitlines() if line.strip()}
    assert kinds == {"web", "worker", "release"}
    assert "gunicorn" in procfile and "app:create_app()" in procfile


def test_going_live_says_where_the_bare_commands_come_from():
    """Going live writes `gunicorn …` and `flask …` bare; after README's set-up they are in .venv/bin, which a
    service outside a Procfile platform must put on its PATH ("gunicorn: command not found" otherwise)."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    processes = readme.split("### 4. Processes", 1)[1].split("\n### ", 1)[0]
    assert "`.venv/bin` first on its `PATH`" in processes


def test_going_live_says_the_commands_run_in_the_project_folder():
    """`flask --app app` and gunicorn's `app:create_app()` import app.py from the working directory: a service
    started elsewhere (systemd's default is /) or a restore check run beside the dump says only "Could not import
    'app'"."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    processes = readme.split("### 4. Processes", 1)[1].split("\n### ", 1)[0]
    assert "in the project's folder\n(systemd's `WorkingDirectory=`" in processes
    assert "Could not import 'app'" in processes


def test_going_live_says_what_sigterm_does_to_the_worker_and_what_a_wrong_key_does_to_the_restore_check():
    """An on-call engineer restarting the worker needs to know a message is not lost (tests/test_worker.py), and
    one rehearsing a restore under the wrong key meets a refusal before any count (tests/test_channels.py)."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    processes = readme.split("### 4. Processes", 1)[1].split("\n### ", 1)[0]
    assert "SIGTERM" in processes and "the others staying queued for the next worker" in processes
    backups = readme.split("### 7. Backups", 1)[1].split("\n### ", 1)[0]
    assert "no key in `DATA_ENCRYPTION_KEY` opens the channels\nstore" in backups
    assert "never a worker with the offices' real channel settings" in backups


@pytest.mark.parametrize(("nodeid", "hidden"), [
    ("tests/test_db.py::test_postgresql_only[sqlite]", False),
    ("tests/test_x.py::test_both_counted[sqlite-known_name]", False),
    ("tests/test_x.py::test_y[a-sqlite-b]", False),
    ("tests/test_golive.py::test_backup_drill[postgresql]", True),
    ("tests/test_db.py::test_a_race_that_did_not_happen", True),
    ("tests/test_x.py::test_sqlite_file_name[postgresql]", True),
])
def test_with_postgresql_configured_a_skip_fails_the_run_unless_it_is_a_sqlite_variant(monkeypatch, nodeid, hidden):
    """CI (`.ci/run` sets TEST_DATABASE_URL) fails rather than going green around a test that did not run."""
    from tests import conftest

    monkeypatch.setattr(conftest, "_UNEXPECTED_SKIPS", [])
    skipped = SimpleNamespace(nodeid=nodeid, skipped=True)
    monkeypatch.setenv(conftest.PG_ENV, "postgresql://postgres@127.0.0.1:5432/test")
    conftest.pytest_runtest_logreport(skipped)
    assert conftest._UNEXPECTED_SKIPS == ([nodeid] if hidden else [])
    session = SimpleNamespace(config=SimpleNamespace(), exitstatus=0)
    conftest.pytest_sessionfinish(session, 0)
    assert session.exitstatus == (1 if hidden else 0)
    monkeypatch.delenv(conftest.PG_ENV)                     # without PostgreSQL, skipping is how its tests go
    monkeypatch.setattr(conftest, "_UNEXPECTED_SKIPS", [])
    conftest.pytest_runtest_logreport(skipped)
    assert conftest._UNEXPECTED_SKIPS == []
