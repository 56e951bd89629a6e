"""`flask --app app richmenu …`: deploy the rich menu to an office's account, or draw its picture again."""
from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import click
from flask import current_app
from flask.cli import AppGroup

from bot import richmenu
from bot.cli.common import office_or_exit, simulator_hint

richmenu_group = AppGroup("richmenu", help="The rich menu of the offices' LINE accounts.")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--no-first-run", "--disable-sync"]


@richmenu_group.command("deploy")
@click.argument("office_id")
def deploy(office_id: str) -> None:
    """Create the rich menu, upload its picture (data host) and make it the default, then delete the menus an
    earlier deploy made (same name); prints its id last."""
    rt = current_app.extensions["madoguchi"]
    office = office_or_exit(rt, office_id)
    if not office.enabled:  # its channel is read (and its webhook served) only once the bot serves the office
        click.echo(f"{office_id} is disabled (enabled: false in its profile): set `enabled: true`, restart, then "
                   "deploy its rich menu", err=True)
        sys.exit(2)
    menu = richmenu.default_menu()
    try:
        picture = menu.picture()
    except (OSError, richmenu.RichMenuError) as exc:
        click.echo(f"the rich menu picture cannot be used: {exc}", err=True)
        sys.exit(1)
    try:
        done = richmenu.deploy(rt.line, office.id, menu, picture)
    except Exception as exc:  # noqa: BLE001 - the SDK's ApiException and network errors alike
        status = getattr(exc, "status", None)
        click.echo(f"LINE did not accept the rich menu ({type(exc).__name__}"
                   f"{f', http {status}' if status else ''}){_what_to_check(rt, office.id, status)}", err=True)
        left = getattr(exc, "rich_menu_left", False)
        if left:
            click.echo(f"the menu created for it ({left}) could not be removed: it is not the default, so no "
                       f"user sees it; delete it with the Messaging API (DELETE /v2/bot/richmenu/{left})", err=True)
        elif left is None:
            click.echo("the menu created for it was removed again; run the command again", err=True)
        sys.exit(1)
    _report_earlier(done, office.id)
    click.echo(done.menu_id)


def _report_earlier(done: richmenu.Deployed, office_id: str) -> None:
    """What became of the menus an earlier deploy made. A failure there leaves the new menu the default: it is
    reported, and the next deploy tries again."""
    if done.unlisted is not None:
        status = getattr(done.unlisted, "status", None)
        click.echo(f"the new menu is the default, but the earlier ones could not be listed "
                   f"({type(done.unlisted).__name__}{f', http {status}' if status else ''}): run "
                   f"`richmenu deploy {office_id}` again later to remove them", err=True)
    for old in done.deleted:
        click.echo(f"the earlier menu {old} was deleted")
    for old in done.left:
        click.echo(f"the new menu is the default, but the earlier menu {old} could not be deleted: nobody sees "
                   f"it; run `richmenu deploy {office_id}` again later, or delete it with the Messaging API "
                   f"(DELETE /v2/bot/richmenu/{old})", err=True)


def _what_to_check(rt, office_id: str, status: int | None) -> str:
    """The setting behind the usual refusals (never its value)."""
    if status == 401:
        return (f": the channel access token was refused; check LINE_CHANNEL_ACCESS_TOKEN_{office_id.upper()} (or "
                "the channels store) against the long-lived token issued in the LINE Developers console")
    if status is None:
        return (f": LINE could not be reached at {rt.config.line_api_base_url} (LINE_API_BASE_URL); check the network"
                + simulator_hint(rt))
    return simulator_hint(rt, status) if status == 404 else ""


@richmenu_group.command("picture")
@click.option("--out", "out_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Where to write the PNG (default: the shipped picture).")
def picture(out_path: Path | None) -> None:
    """Draw the picture again from templates/richmenu/picture.html (needs Playwright and Chromium)."""
    menu = richmenu.default_menu()
    target = out_path or menu.picture_path
    executable = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        click.echo("drawing the picture needs Playwright (requirements-dev.txt)", err=True)
        sys.exit(1)
    if not executable:
        click.echo("drawing the picture needs Chromium (set CHROMIUM_PATH or install chromium)", err=True)
        sys.exit(1)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": menu.width, "height": menu.height})
            page.set_content(richmenu.picture_html(menu), wait_until="load")
            data = page.screenshot(type="png", full_page=False)
        finally:
            browser.close()
    try:
        richmenu.check_picture(data, menu.width, menu.height)
    except richmenu.RichMenuError as exc:
        click.echo(str(exc), err=True)
        sys.exit(1)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    click.echo(f"{target} ({len(data)} bytes)")
