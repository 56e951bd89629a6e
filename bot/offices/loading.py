"""Loading a folder of office profiles: every `<id>.yaml` read, ids kept unique, every file's problems at once.

Only the standard library: this module must not import flask, linebot or dialogs.
"""
from __future__ import annotations

from pathlib import Path

from bot.offices.checks import office_warnings
from bot.offices.model import Office, ProfileError
from bot.offices.reading import TERMS_DIR, read_office


def load_offices(directory: Path, terms_dir: Path = TERMS_DIR) -> dict[str, Office]:
    """Every office profile in `directory`, by id; ProfileError if any profile is unusable."""
    offices, _warnings = check_offices(directory, terms_dir)
    return offices


def check_offices(directory: Path, terms_dir: Path = TERMS_DIR) -> tuple[dict[str, Office], list[str]]:
    """Load and validate every `*.yaml` in `directory`: the offices by id, and the to-be-confirmed warnings.

    Raises ProfileError listing the problems of every unusable file (not only the first one).
    """
    directory = Path(directory)
    if not directory.is_dir():  # a mistyped OFFICES_DIR: say so, not "no profiles" as if the folder were empty
        what = "is not a folder" if directory.exists() else "does not exist"
        raise ProfileError(f"{directory}: {what}: OFFICES_DIR names the folder that holds the office profiles "
                           "(<id>.yaml); unset it to serve the shipped ones")
    paths = sorted(directory.glob("*.yaml"))
    offices: dict[str, Office] = {}
    warnings: list[str] = []
    problems: list[str] = [  # a profile saved as .yml would otherwise be an office that silently does not exist
        f"{path.name}: not read: an office profile's file name ends in .yaml (rename it {path.stem}.yaml)"
        for path in sorted(directory.iterdir())
        if path.suffix.lower() in (".yaml", ".yml") and path.suffix != ".yaml" and not path.name.startswith(".")
    ]
    if not paths:
        raise ProfileError(*problems, f"{directory}: no office profiles (<id>.yaml) in this folder")
    for path in paths:
        try:
            office = read_office(path, terms_dir)
        except ProfileError as exc:
            problems.extend(exc.problems)
            continue
        if office.id in offices:
            other = Path(offices[office.id].source_file).name
            problems.append(f"{path.name}: id: duplicate office id {office.id!r} (also in {other})")
            continue
        offices[office.id] = office
        warnings.extend(office_warnings(office))
    if problems:
        raise ProfileError(*problems)
    return offices, warnings
