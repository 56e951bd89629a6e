"""The app refuses to start on an invalid office profile, naming the file and the field (issue 3's bad input)."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bot.config import DEFAULT_OFFICES_DIR, ConfigError
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
