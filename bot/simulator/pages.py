"""The simulator's page and the JSON endpoints it calls (development only).

Views stay thin: chat actions become signed webhook events (bot.simulator.chat), what the bot
sent is read back from the fake API's records (bot.simulator.store).
"""
from __future__ import annotations

import logging
from urllib.parse import urlsplit

from flask import Blueprint, Response, abort, current_app, jsonify, redirect, render_template, request, url_for

from bot import richmenu, settings_store
from bot.clock import parse_instant
from bot.error_pages import asks_for_json
from bot.render import _md
from bot.simulator import chat, store
from bot.simulator.models import SimMessage

log = logging.getLogger(__name__)
bp = Blueprint("simulator", __name__, url_prefix="/simulator")
MAX_NAME = 40


def _rt():
    return current_app.extensions["madoguchi"]


def _office(office_id: str | None):
    office = _rt().enabled_office(office_id or "")
    if office is None:
        abort(404)
    return office


def _payload() -> dict:
    data = request.get_json(silent=True)
    return data if isinstance(data, dict) else {}


def _now_label(now) -> str:
    return f"{now.year}/{_md(now)} {now:%H:%M:%S}"


@bp.before_request
def _same_origin_only():
    """The page's own calls only: a cross-site page must not drive the simulator."""
    origin = request.headers.get("Origin")
    if request.method == "POST" and origin and origin != "null":
        if urlsplit(origin).netloc != request.host:
            abort(403)


def _message_json(row: SimMessage) -> dict:
    return {"id": row.id, "sender": row.sender, "kind": row.kind, "message": row.message,
            "delivered": row.delivered, "at": f"{row.created_at:%H:%M}"}


# -- the page ---------------------------------------------------------------------------------------

@bp.get("")
@bp.get("/")
def index():
    rt = _rt()
    offices = [o for o in rt.offices.values() if o.enabled]
    requested = request.args.get("office") or ""
    if requested and rt.enabled_office(requested) is None:
        # A mistyped or disabled office: say so and offer the ones there are, rather than show another office.
        return render_template("simulator/unknown_office.html", requested=requested[:MAX_NAME], offices=offices), 404
    groups = {o.id: chat.staff_group(rt.config, o.id) for o in offices}
    return render_template("simulator/index.html", offices=offices, groups=groups,
                           config_json={"offices": [{"id": o.id, "name": o.name} for o in offices],
                                        "publicBaseUrl": rt.config.public_base_url},
                           selected=requested or (offices[0].id if offices else ""),
                           now_label=_now_label(rt.clock.now()))


@bp.get("/users")
def list_users():
    office = _office(request.args.get("office"))
    with _rt().db.reading() as s:
        rows = store.users(s, office.id)
        return jsonify({"users": [{"user_id": u.user_id, "display_name": u.display_name, "followed": u.followed}
                                  for u in rows]})


@bp.post("/users")
def create_user():
    data = _payload()
    office = _office(data.get("office"))
    prefix = str(data.get("name_prefix") or "")[:MAX_NAME]
    with _rt().db.reading() as s:
        number = store.count_users(s, office.id) + 1
    name = str(data.get("name") or "").strip()[:MAX_NAME] or f"{prefix}{number}"
    user_id = chat.add_user(current_app._get_current_object(), office.id, name)
    log.info("simulator user=%s added office=%s", user_id, office.id)
    return jsonify({"user_id": user_id, "display_name": name, "followed": True}), 201


def _chat_id(office_id: str, requested: str) -> str:
    """The chat an action happens in: a simulated user of the office, or its staff group."""
    if requested == "staff":
        return chat.staff_group(_rt().config, office_id)[0]
    with _rt().db.reading() as s:
        if store.user(s, office_id, requested) is None:
            abort(404)
    return requested


@bp.post("/send")
def send():
    data = _payload()
    office = _office(data.get("office"))
    chat_id = _chat_id(office.id, str(data.get("chat") or ""))
    try:
        action = chat.Action.from_json(data.get("action"))
        status = chat.act(current_app._get_current_object(), office.id, chat_id, action)
    except chat.ActionError as exc:
        return jsonify({"error": str(exc)}), 400
    return jsonify({"webhook_status": status})


@bp.get("/poll")
def poll():
    rt = _rt()
    office = _office(request.args.get("office"))
    user_id = request.args.get("user") or ""
    group_id = chat.staff_group(rt.config, office.id)[0]
    after = request.args.get("after", default=0, type=int)
    group_after = request.args.get("group_after", default=0, type=int)
    now = rt.clock.now()
    with rt.db.reading() as s:
        user_rows = store.messages_after(s, office.id, user_id, after) if user_id else []
        group_rows = store.messages_after(s, office.id, group_id, group_after)
        menu = store.rich_menu_for(s, office.id, user_id or None)
        return jsonify({
            "now": now.isoformat(), "now_label": _now_label(now),
            "user": [_message_json(r) for r in user_rows],
            "group": [_message_json(r) for r in group_rows],
            "richmenu_id": menu.rich_menu_id if menu else None,
        })


# -- rich menu --------------------------------------------------------------------------------------

@bp.get("/richmenu")
def richmenu_view():
    office = _office(request.args.get("office"))
    with _rt().db.reading() as s:
        menu = store.rich_menu_for(s, office.id, request.args.get("user") or None)
        if menu is not None:
            return jsonify({"source": "deployed", "rich_menu_id": menu.rich_menu_id, "menu": menu.menu,
                            "image_url": url_for(".richmenu_image", office=office.id, menu_id=menu.rich_menu_id)})
    definition = richmenu.default_menu()
    picture = definition.picture_path.relative_to(current_app.static_folder).as_posix()
    return jsonify({"source": "definition", "rich_menu_id": None, "menu": definition.request(),
                    "image_url": url_for("static", filename=picture)})


@bp.get("/richmenu/<office>/<menu_id>.png")
def richmenu_image(office: str, menu_id: str):
    office_obj = _office(office)
    with _rt().db.reading() as s:
        row = store.rich_menu(s, office_obj.id, menu_id)
        if row is None or row.image is None:
            abort(404)
        return Response(row.image, mimetype=row.content_type or "image/png")


@bp.post("/richmenu/deploy")
def richmenu_deploy():
    """The same as `flask --app app richmenu deploy <office>` (bot.richmenu.deploy), through the fake API: the
    menus an earlier install made (same name) are deleted once the new one is the default."""
    rt = _rt()
    office = _office(_payload().get("office"))
    menu = richmenu.default_menu()
    try:
        done = richmenu.deploy(rt.line, office.id, menu, menu.picture())
    except Exception as exc:  # noqa: BLE001 - the SDK's errors and network errors alike
        failure = type(exc).__name__
        log.warning("simulator rich menu deploy failed office=%s error=%s", office.id, failure)
        return jsonify({"error": failure}), 502
    if done.unlisted is not None or done.left:
        log.warning("simulator rich menu deploy left earlier menus office=%s left=%s unlisted=%s", office.id,
                    len(done.left), type(done.unlisted).__name__ if done.unlisted is not None else "-")
    return jsonify({"rich_menu_id": done.menu_id, "deleted": done.deleted, "left": done.left,
                    "unlisted": done.unlisted is not None})


# -- the shared clock, the worker, the quota --------------------------------------------------------

@bp.post("/clock")
def clock():
    """Move the clock every process reads (form field `now`, ISO 8601; empty: real time)."""
    rt = _rt()
    text = (request.form.get("now") or _payload().get("now") or "").strip()
    try:
        target = parse_instant(text) if text else None
    except ValueError:
        if asks_for_json():
            return jsonify({"error": "now must be ISO 8601"}), 400
        abort(400)
    settings_store.set_clock(rt.db, target)
    rt.clock.forget()
    now = rt.clock.now()
    if asks_for_json():
        return jsonify({"now": now.isoformat(), "now_label": _now_label(now)})
    return redirect(url_for(".index", office=request.form.get("office") or None), code=303)


@bp.post("/worker")
def run_worker():
    """One worker pass now (deliver the outbox, run due jobs), for running without `flask … worker`."""
    from bot.worker import Worker

    figures = Worker(_rt()).run_once()
    return jsonify({"figures": figures})


@bp.get("/quota")
def quota_view():
    """The office's monthly message limit as saved (null: no limit), for the page's 詳細設定."""
    office = _office(request.args.get("office"))
    with _rt().db.reading() as s:
        return jsonify({"limit": store.quota_limit(s, office.id)})


@bp.post("/quota")
def quota():
    data = _payload()
    office = _office(data.get("office"))
    limit = data.get("limit")
    raw = "" if limit is None else str(limit).strip()
    if raw and not raw.isdigit():
        return jsonify({"error": "limit must be a whole number"}), 400
    with _rt().db.transaction() as s:
        store.set_quota_limit(s, office.id, int(raw) if raw else None)
    return jsonify({"limit": int(raw) if raw else None})
