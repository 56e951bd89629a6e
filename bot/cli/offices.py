"""`flask --app app offices …`: validate the office profiles, show an office's dialog as data.

Register with `app.cli.add_command(offices_group)`. The profiles are read from `OFFICES_DIR` in the app's config
when set, else from the shipped `dialogs/offices/`.
Exit codes: 0 success (warnings allowed), 1 an unusable profile, 2 misuse (e.g. an unknown office).
"""
from __future__ import annotations

import json
from datetime import time
from pathlib import Path
from typing import Any

import click
from flask import current_app
from flask.cli import AppGroup

from bot.config import DEFAULT_OFFICES_DIR
from bot.offices import NOTICE_DAYS, Office, ProfileError, check_offices
from bot import render
from bot.render import LANGUAGES, load_labels
from bot.staff import handoff

offices_group = AppGroup("offices", help="Check the office profiles and show an office's dialog.")

CONSENT_CHOICES = ("agree", "disagree")   # button ids; the labels come from templates/messages/ja/labels.yaml
CHECKLIST_CHOICES = ("yes", "no")
CHECKLIST_PASSING = ("yes",)


def offices_dir() -> Path:
    """The profiles folder: the app's OFFICES_DIR, else the shipped profiles."""
    return Path(current_app.config.get("OFFICES_DIR") or DEFAULT_OFFICES_DIR)


def _load(ctx: click.Context) -> tuple[dict[str, Office], list[str]]:
    directory = offices_dir()
    try:
        return check_offices(directory)
    except ProfileError as exc:
        for problem in exc.problems:
            click.echo(f"error: {problem}", err=True)
        click.echo(f"{len(exc.problems)} error(s) in the office profiles in {directory}", err=True)
        ctx.exit(1)


@offices_group.command("check")
@click.pass_context
def check_command(ctx: click.Context) -> None:
    """Validate every office profile (errors name the file and field; warnings list values to confirm)."""
    offices, warnings = _load(ctx)
    warnings = [*warnings, *wording_warnings(set(offices), offices_dir())]
    for warning in warnings:
        click.echo(f"warning: {warning}")
    click.echo(f"{len(offices)} office profile(s) OK ({', '.join(offices)}); {len(warnings)} warning(s)")


def wording_warnings(office_ids: set[str], directory: Path | None = None) -> list[str]:
    """Office wording kept outside the profiles, found by office id, that would silently not be used: a
    handoff.yaml entry or an invitation_<id>.j2 naming no office, or an office's invitation_<id>.j2 missing in
    a language (that language shows the generic invitation_default.j2). The join wording may sit beside the
    profiles in `directory` (`messages/<language>/`) or in templates/messages/<language>/."""
    found = [f"templates/staff/handoff.yaml: {office_id}: no office profile has this id; its settings are not used"
             for office_id in handoff.office_ids() if office_id not in office_ids]
    have: dict[str, dict[str, str]] = {}   # office id -> language -> the file, as named in a warning
    folders = [("templates/messages", render.TEMPLATES_DIR / "messages")]
    if directory is not None:   # looked for there first, as the templates' include lists do
        folders.insert(0, (f"{directory}/messages", directory / "messages"))
    for shown, folder in reversed(folders):
        for language in LANGUAGES:
            for path in sorted((folder / language).glob("invitation_*.j2")):
                have.setdefault(path.stem.removeprefix("invitation_"), {})[language] = f"{shown}/{language}/{path.name}"
    for office_id, files in sorted(have.items()):
        if office_id == "default":
            continue
        if office_id not in office_ids:
            found += [f"{file}: no office profile has the id {office_id}; it is not used" for file in files.values()]
            continue
        first, where = next(iter(files.items()))   # the missing one belongs beside it
        folder = where.rsplit("/", 2)[0]
        found += [f"{folder}/{language}/invitation_{office_id}.j2: missing: {first} has "
                  f"invitation_{office_id}.j2; this language shows the generic invitation_default.j2"
                  for language in LANGUAGES if language not in files]
    return found


@offices_group.command("show")
@click.argument("office")
@click.option("--json", "as_json", is_flag=True, help="Print the dialog as JSON.")
@click.pass_context
def show_command(ctx: click.Context, office: str, as_json: bool) -> None:
    """Show OFFICE's dialog: its steps, their choices and the answers that pass."""
    offices, _warnings = _load(ctx)
    if office not in offices:
        raise click.BadParameter(f"unknown office {office!r} (known: {', '.join(offices)})", param_hint="OFFICE")
    data = dialog_data(offices[office])
    click.echo(json.dumps(data, ensure_ascii=False, indent=2) if as_json else dialog_text(data))


def dialog_data(office: Office) -> dict[str, Any]:
    """The office's dialog as plain data, steps in the order the user meets them.

    Consent lists its button labels (the words to tap or type); the other steps list answer ids
    (yes/no/unsure) with `labels` giving the Japanese button label of each.
    """
    buttons = load_labels("ja")["buttons"]
    answer_labels = {answer: buttons[answer] for answer in ("yes", "no", "unsure")}
    consent = [buttons[choice] for choice in CONSENT_CHOICES]
    terms = office.current_terms
    steps: list[dict[str, Any]] = [{
        "step": "consent",
        "id": "consent",
        "version": terms.version,
        "terms_path": f"/terms/{office.id}/{terms.version}",
        "summary": list(office.consent_summary),
        "choices": consent,
        "passing": consent[:1],
    }]
    steps += [{
        "step": "eligibility",
        "id": question.id,
        "text": question.text,
        "detail": list(question.detail),
        "choices": list(question.choices),
        "passing": list(question.passing),
        "labels": {choice: answer_labels[choice] for choice in question.choices},
        "record": question.record,
        "on_fail": question.on_fail,
        "on_unsure": question.on_unsure,
        "redirects": [
            {"topic": r.topic, "window": r.window, "phone": r.phone.value if r.phone.confirmed else None}
            for r in question.redirects
        ],
    } for question in office.eligibility]
    steps += [{
        "step": "checklist",
        "id": item.id,
        "text": item.text,
        "choices": list(CHECKLIST_CHOICES),
        "passing": list(CHECKLIST_PASSING),
        "labels": {choice: answer_labels[choice] for choice in CHECKLIST_CHOICES},
        "fix": item.fix,
    } for item in office.checklist]
    schedule, notice = office.schedule, office.booking.notice
    steps.append({
        "step": "slot",
        "id": "slot",
        "schedule": {
            "weekdays": list(schedule.weekdays),
            "starts": [_hhmm(start) for start in schedule.starts],
            "duration_minutes": schedule.duration_minutes,
            "capacity": schedule.capacity,
            "closures": [day.isoformat() for day in schedule.closures],
        },
        "notice": {
            "kind": notice.kind,
            NOTICE_DAYS[notice.kind]: notice.days,
            "deadline": _hhmm(notice.deadline),
            "confirmed": notice.confirmed,
        },
        "window_weeks": office.booking.window_weeks,
        "hold_minutes": office.booking.hold_minutes,
    })
    form: dict[str, Any] = {"step": "form", "id": "form", "fields": list(office.form_fields)}
    if office.categories:   # the choices of its `category` field
        form["categories"] = [{"id": c.id, "text": c.text, "sensitive": c.sensitive} for c in office.categories]
    steps.append(form)
    return {
        "office": office.id,
        "name": office.name,
        "enabled": office.enabled,
        "terms_version": terms.version,
        "steps": steps,
    }


def dialog_text(data: dict[str, Any]) -> str:
    """A short readable outline of dialog_data()."""
    lines = [f"{data['name']} ({data['office']}), terms {data['terms_version']}"]
    for number, step in enumerate(data["steps"], start=1):
        head = f"{number}. {step['step']} {step['id']}"
        if "choices" in step:
            lines.append(f"{head}: {' / '.join(step['choices'])} -> passes: {', '.join(step['passing'])}")
            if "text" in step:
                lines.append(f"   {step['text']}")
            lines += [f"   - {line}" for line in step.get("detail", [])]
        elif step["step"] == "slot":
            sched, notice = step["schedule"], step["notice"]
            lines.append(f"{head}: weekdays {sched['weekdays']} at {', '.join(sched['starts'])}, "
                         f"{sched['duration_minutes']} min; notice {notice['kind']} "
                         f"{notice[NOTICE_DAYS[notice['kind']]]} day(s), {notice['deadline']}")
        else:
            lines.append(f"{head}: {', '.join(step['fields'])}")
            lines += [f"   - category {c['id']}: {c['text']}{' (sensitive)' if c['sensitive'] else ''}"
                      for c in step.get("categories", [])]
    return "\n".join(lines)


def _hhmm(value: time) -> str:
    return value.strftime("%H:%M")
