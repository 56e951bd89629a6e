"""README's two commands are the real ones: .ci/run runs exactly the README's test command."""
from pathlib import Path

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


def test_going_live_says_what_sigterm_does_to_the_worker_and_what_a_wrong_key_does_to_the_restore_check():
    """An on-call engineer restarting the worker needs to know a message is not lost (tests/test_worker.py), and
    one rehearsing a restore under the wrong key meets a refusal before any count (tests/test_channels.py)."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    processes = readme.split("### 4. Processes", 1)[1].split("\n### ", 1)[0]
    assert "SIGTERM" in processes and "the others staying queued for the next worker" in processes
    backups = readme.split("### 7. Backups", 1)[1].split("\n### ", 1)[0]
    assert "no key in `DATA_ENCRYPTION_KEY` opens the channels\nstore" in backups
    assert "never a worker with the offices' real channel settings" in backups
