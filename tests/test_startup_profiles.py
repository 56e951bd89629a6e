"""The app refuses to start on an invalid office profile, naming the file and the field (issue 3's bad input)."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bot.config import DEFAULT_OFFICES_DIR, PROJECT_ROOT, ConfigError
from bot.offices import ProfileError


def profiles(tmp_path: Path, office: str, edit) -> Path:
    folder = tmp_path / "offices"
    shutil.copytree(DEFAULT_OFFICES_DIR, folder)
    path = folder / f"{office}.yaml"
    path.write_text(edit(path.read_text(encoding="utf-8")), encoding="utf-8")
    return folder


@pytest.mark.parametrize("office,edit,expected", [
    ("sakata", lambda t: t.replace("id: sakata", "id: Sakata"), "sakata.yaml: id: 'Sakata' must match"),
    ("otaru", lambda t: t.replace("court: 札幌地方・家庭裁判所小樽支部\n", ""),
     "otaru.yaml: court: missing required field"),
    ("otaru", lambda t: t + "\ncolour: blue\n", "otaru.yaml: colour: unknown field"),
    ("sakata", lambda t: t.replace("    passing: [\"yes\"]", "    passing: [\"maybe\"]", 1),
     "sakata.yaml: eligibility[0].passing[0]: 'maybe' is not one of"),
])
def test_the_app_refuses_to_start(tmp_path, make_app, office, edit, expected):
    folder = profiles(tmp_path, office, edit)
    with pytest.raises((ConfigError, ProfileError)) as refused:
        make_app(offices_dir=str(folder))
    assert expected in str(refused.value)


def test_a_file_named_with_a_bad_id_is_refused(tmp_path, make_app):
    folder = profiles(tmp_path, "otaru", lambda t: t)
    (folder / "otaru.yaml").rename(folder / "Otaru-2.yaml")
    with pytest.raises((ConfigError, ProfileError)) as refused:
        make_app(offices_dir=str(folder))
    assert "Otaru-2.yaml: id:" in str(refused.value)


def test_flask_commands_name_a_broken_profile_without_a_traceback(tmp_path):
    """`flask --app app offices check` is where the start-up error sends the operator: it must run and answer
    with the problems (exit 1), not a Python traceback; the same for every other command."""
    folder = profiles(tmp_path, "otaru", lambda t: t.replace("  capacity: 1", "  capacty: 1"))
    env = {**os.environ, "OFFICES_DIR": str(folder), "INSTANCE_PATH": str(tmp_path / "instance"),
           "APP_ENV": "development"}
    env.pop("DATABASE_URL", None)
    for command in (["offices", "check"], ["worker", "--once"]):
        done = subprocess.run([sys.executable, "-m", "flask", "--app", "app", *command], cwd=PROJECT_ROOT, env=env,
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 1, command
        assert "otaru.yaml: schedule.capacty: unknown field" in done.stderr
        assert "Traceback" not in done.stderr, done.stderr


@pytest.mark.parametrize("entry,expected", [
    ("nayoro:\n  call_user_on_confrim: true\n",
     "templates/staff/handoff.yaml: nayoro.call_user_on_confrim: unknown field (allowed: call_user_on_confirm, "
     "invitation)"),
    ("nayoro:\n  call_user_on_confirm: 'yes'\n",
     "templates/staff/handoff.yaml: nayoro.call_user_on_confirm: must be true or false"),
    ("nayoro:\n  invitation:\n    lable: 会議URLの送付\n",
     "templates/staff/handoff.yaml: nayoro.invitation.lable: unknown field (allowed: label, how, how_on_the_day)"),
    ("nayoro:\n  invitation: 会議URLの送付\n",
     "templates/staff/handoff.yaml: nayoro.invitation: must be a mapping"),
    # As an office profile's own handoff: the cards and the group's answers carry these (LINE's limits).
    ("nayoro:\n  invitation:\n    label: 招待\n    how: " + "送" * 501 + "\n",
     "templates/staff/handoff.yaml: nayoro.invitation.how: 501 characters; keep it to at most 500"),
    ("nayoro:\n  invitation:\n    label: " + "🍎" * 31 + "\n",
     "templates/staff/handoff.yaml: nayoro.invitation.label: 62 characters; keep it to at most 60"),
])
def test_a_misspelt_staff_handoff_setting_stops_start_up(tmp_path, make_app, monkeypatch, entry, expected):
    """An office's line in handoff.yaml that is misspelt was ignored: staff silently lost the phone task or the
    invitation's name. It now stops start-up naming the file and the field."""
    from bot.staff import handoff

    templates = tmp_path / "templates"
    (templates / "staff").mkdir(parents=True)
    shipped = (handoff.TEMPLATES_DIR / "staff" / "handoff.yaml").read_text(encoding="utf-8")
    (templates / "staff" / "handoff.yaml").write_text(shipped + entry, encoding="utf-8")
    monkeypatch.setattr(handoff, "TEMPLATES_DIR", templates)
    handoff._settings.cache_clear()
    try:
        with pytest.raises(ConfigError) as refused:
            make_app()
    finally:
        handoff._settings.cache_clear()
    assert expected in str(refused.value)


def test_the_misspelt_handoff_test_leaves_the_staff_labels_where_they_are():
    """The test above points handoff's templates at a folder holding only handoff.yaml. The export module, when
    first imported during it (the app imports it), took that folder as its own for good, and every later staff
    page of that test process failed to read labels.yaml: its templates are the app's, not handoff's."""
    script = (
        "from pathlib import Path\n"
        "from bot.staff import handoff\n"
        "handoff.TEMPLATES_DIR = Path('nowhere')\n"
        "from bot.staff import export\n"
        "print(sorted(export.labels())[:1])\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=PROJECT_ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]


def web_command_env(tmp_path: Path, **settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LINE_", "APP_", "DATABASE_URL", "SECRET_KEY",
                                                                     "DATA_ENCRYPTION_KEY", "OFFICES_DIR"))}
    env.update({"INSTANCE_PATH": str(tmp_path / "instance"), "WEB_CONCURRENCY": "1", "PORT": "0",
                "DATABASE_URL": f"sqlite:///{tmp_path / 'web.sqlite3'}",
                "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}", **settings})
    return env


@pytest.mark.parametrize("target", ["'app:create_app()'", "app:app"])
@pytest.mark.parametrize("setting,expected", [
    ({"APP_ENV": "production"}, "production needs these settings: SECRET_KEY, DATA_ENCRYPTION_KEY"),
    # The Procfile's processes are production unless APP_ENV says otherwise: a platform deploy that forgot it
    # stops here instead of serving the development simulator (which can speak as any user) to the internet.
    ({}, "production needs these settings: SECRET_KEY, DATA_ENCRYPTION_KEY"),
    ("broken profile", "otaru.yaml: schedule.capacty: unknown field"),
])
def test_the_procfiles_web_command_names_what_stops_the_start_without_a_traceback(tmp_path, setting, expected,
                                                                                 target):
    """Under gunicorn a configuration error was a worker's traceback with the message as its last line, then
    "Worker failed to boot": the operator sees the message alone, and gunicorn stops with a failure status.
    The same for `gunicorn app:app` (interface.md's form), which booted and then answered every request with a
    traceback: the lazy `app` is built when gunicorn looks it up."""
    if setting == "broken profile":
        folder = profiles(tmp_path, "otaru", lambda t: t.replace("  capacity: 1", "  capacty: 1"))
        setting = {"APP_ENV": "development", "OFFICES_DIR": str(folder)}
    procfile = (PROJECT_ROOT / "Procfile").read_text(encoding="utf-8")
    web = next(line.split(":", 1)[1] for line in procfile.splitlines() if line.startswith("web:"))
    assert "'app:create_app()'" in web
    web = web.replace("'app:create_app()'", target)
    done = subprocess.run(["bash", "-c", web.replace("0.0.0.0", "127.0.0.1")], cwd=PROJECT_ROOT,
                          env=web_command_env(tmp_path, **setting), capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    assert expected in done.stderr, done.stderr
    assert "Traceback" not in done.stderr, done.stderr


@pytest.mark.parametrize("process", ["worker", "release"])
def test_the_procfiles_other_processes_are_production_unless_app_env_says_otherwise(tmp_path, process):
    procfile = (PROJECT_ROOT / "Procfile").read_text(encoding="utf-8")
    command = next(line.split(":", 1)[1] for line in procfile.splitlines() if line.startswith(f"{process}:"))
    done = subprocess.run(["bash", "-c", command], cwd=PROJECT_ROOT, env=web_command_env(tmp_path),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    assert "production needs these settings: SECRET_KEY, DATA_ENCRYPTION_KEY" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
