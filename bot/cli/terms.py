"""`flask --app app terms …`: publish a version, tell followers (cost shown first), export consents."""
from __future__ import annotations

import csv
import sys
import time
import uuid
from pathlib import Path

import click
from flask import current_app
from flask.cli import AppGroup

from bot.cli.common import office_or_exit, schema_or_exit, simulator_hint
from bot import line_client as lc
from bot.services import broadcasts, push_hours, terms

terms_group = AppGroup("terms", help="Terms versions, re-consent and notices to followers.")
SECONDS_BETWEEN_MULTICASTS = 1 / 150  # LINE allows about 200 multicast calls a second
LONGEST_WAIT = 30.0   # seconds the command waits when LINE asks it to (Retry-After); longer: it stops, to be rerun


@terms_group.command("publish")
@click.option("--office", "office_id", required=True)
@click.option("--version", required=True, help="Effective date YYYY-MM-DD (today or later).")
@click.option("--file", "path", required=True, type=click.Path(dir_okay=False))
@click.option("--summary", required=True, help="What changed, shown to users before they consent again.")
@click.option("--no-reconsent", is_flag=True,
              help="A correction of wording (a typo) that changes nothing users agreed to: who consented to the "
                   "version before is not asked again.")
def publish_command(office_id: str, version: str, path: str, summary: str, no_reconsent: bool) -> None:
    """Publish a new terms version."""
    rt = current_app.extensions["madoguchi"]
    schema_or_exit(rt)
    office = office_or_exit(rt, office_id)
    try:
        body = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        click.echo(f"cannot read {path}: {exc}", err=True)
        sys.exit(1)
    now = rt.clock.now()
    try:
        with rt.db.transaction() as s:
            row = terms.publish(s, office.id, version, body, summary, today=now.date(), now=now,
                                reconsent=not no_reconsent)
            consent_from = row.consent_from
    except terms.PublishError as exc:
        click.echo(str(exc), err=True)
        sys.exit(1)
    if consent_from:
        click.echo(f"published {office.id} terms {version}, a correction: users who consented to {consent_from} or "
                   "later are not asked again (a new user consents to it)")
    else:
        click.echo(f"published {office.id} terms {version}; users consent again from {version} before booking")
        # The consent step's bullet summary is office data, not part of a version: a new text can contradict it.
        click.echo(f"check that consent_summary in dialogs/offices/{office.id}.yaml (and its translations) still "
                   f"matches the {version} text: the chat shows it beside the new terms from {version}")


@terms_group.command("withdraw")
@click.option("--office", "office_id", required=True)
@click.option("--version", required=True, help="A version not yet in effect (its date is after today in Japan).")
def withdraw_command(office_id: str, version: str) -> None:
    """Take back a version published by mistake, before it takes effect."""
    rt = current_app.extensions["madoguchi"]
    schema_or_exit(rt)
    office = office_or_exit(rt, office_id)
    try:
        with rt.db.transaction() as s:
            told = terms.withdraw(s, office.id, version, now=rt.clock.now())
            told = [(run.mode, run.recipients) for run in told]
    except terms.PublishError as exc:
        click.echo(str(exc), err=True)
        sys.exit(1)
    click.echo(f"withdrew {office.id} terms {version}; it will not take effect")
    for mode, recipients in told:
        click.echo(f"its notice had gone by {mode} to {recipients} followers: once the corrected version is "
                   "published, tell them with `terms broadcast` (it is a new notice)")


def _notices(rt, office, version: str, languages) -> dict[str, list[dict]]:
    """The notice of this version in each of these languages (the summary read once)."""
    with rt.db.reading() as s:
        row = terms.get(s, office.id, version)
    vars = {**rt.template_globals(office, None), "version": version, "summary": row.summary if row else "",
            "in_force": version <= rt.clock.now().date().isoformat()}
    return {language: rt.renderer.messages(language, "terms_updated", vars) for language in languages}


@terms_group.command("broadcast")
@click.option("--office", "office_id", required=True)
@click.option("--mode", type=click.Choice(broadcasts.MODES), required=True)
@click.option("--version", default=None, help="Defaults to the newest published version.")
@click.option("--dry-run", is_flag=True, help="Only show recipients, cost and remaining quota.")
@click.option("--yes", is_flag=True, help="Send (without it, only the estimate is shown).")
def broadcast_command(office_id: str, mode: str, version: str | None, dry_run: bool, yes: bool) -> None:
    """Tell followers about a terms version: shows the cost first; resumable; one runner at a time."""
    rt = current_app.extensions["madoguchi"]
    schema_or_exit(rt)
    office = office_or_exit(rt, office_id)
    now = rt.clock.now()
    with rt.db.reading() as s:
        versions = terms.versions(s, office.id)
        if not versions:
            click.echo("no terms version published", err=True)
            sys.exit(1)
        version = version or versions[0].version
        if terms.get(s, office.id, version) is None:
            click.echo(f"unknown version {version}", err=True)
            sys.exit(1)
        in_force = terms.current_version(s, office.id, now.date())
        if in_force is not None and version < terms.consent_base(s, office.id, in_force):
            click.echo(f"{version} is no longer in force ({in_force} is): a notice would announce a superseded "
                       "version", err=True)
            sys.exit(1)
        corrects = terms.get(s, office.id, version).consent_from
        if corrects:
            click.echo(f"{version} corrects {corrects} without new consent: there is nothing to ask of users, so "
                       "no notice (its text is on the terms page)", err=True)
            sys.exit(1)
        existing = broadcasts.find(s, office.id, version, mode)
        other = broadcasts.other_run(s, office.id, version, mode)
        est = broadcasts.estimate(s, office.id, mode)
        blocking = broadcasts.not_following(s, office.id)
        if broadcasts.handing_over(other, mode):
            left = len(broadcasts.untold(s, other.id))
            est = broadcasts.Estimate(left, 0, 0)
    _stop_unless_free(office.id, version, mode, existing, other)
    if broadcasts.handing_over(other, mode):
        click.echo(f"the multicast of {version} stopped part-way ({other.note}): the followers it did not reach "
                   "will see the notice in their next reply")
    remaining = _remaining_quota(rt, office.id) if mode != "next-message" else None
    click.echo(f"office {office.id}, version {version}, mode {mode}")
    click.echo(f"recipients: {est.recipients} known followers"
               + (" (broadcast reaches every friend)" if mode == "broadcast" else ""))
    if blocking and not broadcasts.handing_over(other, mode):
        click.echo(f"blocking the account now: {blocking} users, told in their first reply once they follow again "
                   "(free)")
    click.echo(f"API calls: {est.calls}; messages counted against the monthly quota: {est.messages}"
               + (" or more (every friend counts)" if mode == "broadcast" else ""))
    if remaining is not None:
        click.echo("remaining monthly quota: "
                   + ("unlimited" if remaining[0] is None else str(remaining[0] - remaining[1])))
        if remaining[0] is not None and est.messages > remaining[0] - remaining[1]:
            click.echo("warning: this exceeds the remaining quota; LINE will stop it part-way (429)", err=True)
    if dry_run or not yes:
        click.echo("nothing sent" + ("" if dry_run else " (add --yes to send)"))
        return
    if mode != "next-message":
        _stop_outside_push_hours(office, rt.clock.now(), "nothing sent")
    _send(rt, office, version, mode)


def _stop_outside_push_hours(office, now, done: str) -> None:
    """A notice to every follower is not urgent: never pushed at night (the office's `push_hours`)."""
    opening = push_hours.next_opening(office, now)
    if opening is None:
        return
    hours = office.push_hours
    click.echo(f"outside {office.id}'s push hours ({hours.start:%H:%M}-{hours.end:%H:%M}, Japan time): {done}; "
               f"run the same command again from {opening:%Y-%m-%d %H:%M}, or use --mode next-message (free, "
               "told in each follower's next reply)", err=True)
    sys.exit(1)


def _stop_unless_free(office_id: str, version: str, mode: str, existing, other) -> None:
    """Exit, saying why, when this version was told already (0) or another mode's run of it is going or
    paused (1); return when this run may go on (its own run, new or resumed, or the hand-over to next-message)."""
    if existing is not None and existing.status == "complete":
        click.echo(f"already complete: {office_id} {version} {mode}")
        sys.exit(0)
    if other is not None and other.status == "complete":
        click.echo(f"already complete: {office_id} {version} {other.mode}; nothing sent "
                   f"(a {mode} notice would tell the same followers a second time)")
        sys.exit(0)
    if other is not None and not broadcasts.handing_over(other, mode):
        click.echo(f"a {other.mode} run of {office_id} {version} is {other.status}"
                   + (f" ({other.note})" if other.note else "")
                   + f"; run the same command with --mode {other.mode} to resume it"
                   + (", or --mode next-message to tell the rest in their next reply (free)"
                      if other.mode == "multicast" and other.status == "paused" else "")
                   + f" (a {mode} notice would tell the same followers a second time)", err=True)
        sys.exit(1)


def _remaining_quota(rt, office_id: str):
    try:
        return rt.line.remaining_quota(office_id)
    except Exception as exc:  # noqa: BLE001 - the estimate still helps without the quota
        click.echo(f"remaining quota unknown ({type(exc).__name__}{simulator_hint(rt, getattr(exc, 'status', None))})",
                   err=True)
        return None


def _send(rt, office, version: str, mode: str) -> None:
    runner = str(uuid.uuid4())
    now = rt.clock.now()
    with rt.db.transaction() as s:
        # Every start of a notice of this version, in any mode, takes its terms version row first and decides
        # again under that lock: two operators starting at once (the same mode or two) cannot both send, as
        # what the estimate read before may have changed since.
        if not broadcasts.lock_version(s, office.id, version):
            click.echo(f"version {version} was withdrawn meanwhile (terms withdraw): nothing sent", err=True)
            sys.exit(1)
        _stop_unless_free(office.id, version, mode, broadcasts.find(s, office.id, version, mode),
                          broadcasts.other_run(s, office.id, version, mode))
        run = broadcasts.plan(s, office.id, version, mode, now)
        run_id = run.id
        if run.status == "complete":
            click.echo(f"done: {run.recipients} users will see the notice in their next reply (free)")
            return
        if not broadcasts.claim(s, run_id, runner, now):
            click.echo("another run of this broadcast is in progress; try again once it has ended (a run whose "
                       "command was killed, not stopped with Ctrl+C, is taken over "
                       f"{int(broadcasts.LEASE.total_seconds())} s after its last call)", err=True)
            sys.exit(1)
    with rt.db.reading() as s:
        chunks = [(c.id, c.recipients.get("to", []), c.recipients.get("language", "ja"), c.retry_key)
                  for c in broadcasts.pending_chunks(s, run_id)]
    done, total = _progress(rt, run_id)
    # A multicast chunk speaks its users' language; a broadcast reaches every friend, so it speaks Japanese.
    notices = _notices(rt, office, version, {c[2] for c in chunks})
    try:
        done = _send_chunks(rt, office, mode, run_id, runner, chunks, notices, done, total)
    except KeyboardInterrupt:
        # Ctrl+C: let the run go now, so that the same command resumes at once (not after the lease runs out);
        # a call LINE took just before is not sent twice (its chunk keeps its retry key).
        with rt.db.transaction() as s:
            broadcasts.finish(s, run_id, rt.clock.now(), "paused", "interrupted", runner)
        done, total = _progress(rt, run_id)
        click.echo(f"\nstopped: interrupted; {done} of {total} calls sent. Run the same command again to resume.",
                   err=True)
        sys.exit(1)
    with rt.db.transaction() as s:
        broadcasts.finish(s, run_id, rt.clock.now(), "complete", runner=runner)
    click.echo(f"complete: {total} calls sent")


def _progress(rt, run_id: int) -> tuple[int, int]:
    with rt.db.reading() as s:
        return broadcasts.progress(s, run_id)


def _send_chunks(rt, office, mode: str, run_id: int, runner: str, chunks, notices, done: int, total: int) -> int:
    """Send the pending chunks in order, each recorded once LINE took it; stops (exit 1) on a refusal."""
    with click.progressbar(length=total, label="sending", file=sys.stderr) as bar:
        bar.update(done)
        for chunk_id, to, language, key in chunks:
            if push_hours.next_opening(office, rt.clock.now()) is not None:
                # A long run that reaches the end of the push hours stops there; the rerun resumes in the morning.
                with rt.db.transaction() as s:
                    broadcasts.finish(s, run_id, rt.clock.now(), "paused", "the office's push hours ended",
                                      runner)
                _stop_outside_push_hours(office, rt.clock.now(), f"stopped; {done} of {total} calls sent")
            result = _call(rt, office.id, mode, to, notices[language], key)
            now = rt.clock.now()
            if result.delivered:
                with rt.db.transaction() as s:
                    held = broadcasts.mark_sent(s, chunk_id, runner, run_id, now)
                if not held:
                    click.echo(f"\nstopped: this command was held up past {int(broadcasts.LEASE.total_seconds())} s "
                               "and its run was taken over by another or withdrawn with its version meanwhile "
                               "(terms withdraw); the last call was not recorded", err=True)
                    sys.exit(1)
                bar.update(1)
                done += 1
                if mode == "multicast":
                    time.sleep(SECONDS_BETWEEN_MULTICASTS)
                continue
            reason = _stop_reason(office, result)
            if result.retry_after:
                reason += f" and asked to wait {result.retry_after:.0f} s before trying again"
            with rt.db.transaction() as s:
                broadcasts.finish(s, run_id, now, "paused", reason, runner)
            unreached = (simulator_hint(rt) if result.outcome in (lc.RETRY, lc.UNKNOWN)
                         else simulator_hint(rt, 404) if result.status == 404 else "")
            click.echo(f"\nstopped: {reason}{unreached}; {done} of {total} calls sent. {_resume_hint(result, mode)}",
                       err=True)
            sys.exit(1)
    return done


def _resume_hint(result: lc.SendResult, mode: str) -> str:
    """How to go on: a rerun resumes, but after a quota stop only once the quota allows it."""
    if result.outcome != lc.QUOTA:
        return "Run the same command again to resume."
    return ("Run the same command again to resume once the quota allows (next month, or after choosing a larger "
            "plan in LINE Official Account Manager)"
            + (", or tell the rest for free in their next reply: the same command with --mode next-message."
               if mode == "multicast" else "."))


def _stop_reason(office, result: lc.SendResult) -> str:
    """Why the run stopped, in words the operator can act on."""
    if result.outcome == lc.QUOTA:
        return "monthly quota reached"
    if result.outcome == lc.AUTH:
        return f"LINE refused the channel access token (401): check LINE_CHANNEL_ACCESS_TOKEN_{office.id.upper()}"
    if result.outcome == lc.FAILED:
        return f"LINE refused the call for good ({result.detail}): see its log line"
    return f"LINE did not take the call ({result.detail or result.outcome}), tried again as long as it allowed"


def _call(rt, office_id: str, mode: str, to: list[str], messages: list[dict], key: str) -> lc.SendResult:
    for attempt in range(5):
        if mode == "multicast":
            result = rt.line.multicast(office_id, to, messages, key)
        else:
            result = rt.line.broadcast(office_id, messages, key)
        if result.outcome not in (lc.RETRY, lc.RATE, lc.UNKNOWN):
            return result
        wait = max(min(8, 2 ** attempt) * 0.25, result.retry_after or 0)
        if wait > LONGEST_WAIT:
            return result   # stopped: the rerun resumes under the same retry keys
        time.sleep(wait)
    return result


@terms_group.command("consents")
@click.option("--office", "office_id", required=True)
def consents_command(office_id: str) -> None:
    """Export the office's consent log as CSV (user, version, when, how) to standard output."""
    rt = current_app.extensions["madoguchi"]
    schema_or_exit(rt)
    office = office_or_exit(rt, office_id)
    writer = csv.writer(sys.stdout)
    writer.writerow(["office", "line_user_id", "version", "consented_at", "method", "webhook_event_id"])
    with rt.db.reading() as s:
        for c in terms.consent_log(s, office.id):
            writer.writerow([c.office_id, c.conversation.line_user_id, c.version, c.consented_at.isoformat(),
                             c.method, c.webhook_event_id])
