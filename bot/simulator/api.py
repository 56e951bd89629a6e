"""The fake LINE Messaging API (and data API) at /simulator/api: what the bot sends lands in the database.

The bearer token names the office (each office's channel access token); the rules that matter to the
bot are LINE's own: single-use reply tokens valid one minute, `X-Line-Retry-Key` (UUID, push-like sends
only, 409 on a repeat), message limits (400 with `details`), the monthly quota (429), rich-menu
pictures on the data host. Every state lives in the database, so all processes share one platform.
"""
from __future__ import annotations

import hmac
import re
import secrets
import uuid
from datetime import datetime, timezone
from typing import Callable

from flask import Blueprint, Response, current_app, g, jsonify, request
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot.richmenu import PNG_MAGIC, png_size
from bot.simulator import events, store
from bot.simulator.validate import validate_messages

bp = Blueprint("simulator_api", __name__, url_prefix="/simulator/api")

MSG_AUTH_FAILED = "Authentication failed. Confirm that the access token in the authorization header is valid."
MSG_INVALID_REPLY_TOKEN = "Invalid reply token"
MSG_RETRY_KEY_ACCEPTED = "The retry key is already accepted"
MSG_MONTHLY_LIMIT = "You have reached your monthly limit."
MSG_NOT_FOUND = "Not found"
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_CHAT_ID = re.compile(r"^[UCR][0-9A-Za-z]{8,63}$")
MAX_MULTICAST = 500
MAX_IMAGE_BYTES = 1024 * 1024


def _rt():
    return current_app.extensions["madoguchi"]


def _answer(status: int, body: dict | None = None, headers: dict | None = None) -> Response:
    response = jsonify(body or {})
    response.status_code = status
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def _error(status: int, message: str, details: list[dict] | None = None) -> Response:
    body: dict = {"message": message}
    if details:
        body["details"] = details
    return _answer(status, body)


def _body_errors(details: list[dict]) -> Response:
    return _error(400, f"The request body has {len(details)} error(s)", details)


def _real_now() -> datetime:
    return datetime.now(timezone.utc)


def _json() -> dict:
    body = request.get_json(silent=True)
    return body if isinstance(body, dict) else {}


# -- every call: the office from the bearer token, a request id on the answer -------------------------

@bp.before_request
def _authenticate():
    g.sim_request_id = str(uuid.uuid4())
    auth = request.headers.get("Authorization", "")
    token = auth[7:].strip() if auth[:7].lower() == "bearer " else ""
    rt = _rt()
    for office_id in rt.offices:
        expected = rt.config.channel_token(office_id) or ""
        if token and expected and hmac.compare_digest(token.encode(), expected.encode()):
            g.sim_office = office_id
            return None
    return _error(401, MSG_AUTH_FAILED)


@bp.after_request
def _request_id(response: Response) -> Response:
    response.headers["x-line-request-id"] = getattr(g, "sim_request_id", "")
    return response


# -- sending ----------------------------------------------------------------------------------------

def _sent_messages(messages: list[dict]) -> list[dict]:
    sent = []
    for message in messages:
        item = {"id": events.message_id()}
        if message.get("type") in ("text", "textV2", "sticker", "image", "video", "audio", "location"):
            item["quoteToken"] = events.quote_token()
        sent.append(item)
    return sent


def _retry_key(kind: str) -> tuple[str | None, Response | None]:
    key = request.headers.get("X-Line-Retry-Key")
    if key is None:
        return None, None
    if kind == "reply":
        return None, _error(400, "X-Line-Retry-Key is not supported by this API")
    if not _UUID.match(key):
        return None, _error(400, "The value of X-Line-Retry-Key is invalid. It must be a UUID.")
    return key.lower(), None


def _conflict(office_id: str, key: str) -> Response:
    with _rt().db.reading() as s:
        earlier = store.accepted_request(s, office_id, key)
        accepted_id = earlier.request_id if earlier else ""
        sent = (earlier.sent or {}).get("sentMessages", []) if earlier else []
    body: dict = {"message": MSG_RETRY_KEY_ACCEPTED}
    if sent:
        body["sentMessages"] = sent
    return _answer(409, body, {"x-line-accepted-request-id": accepted_id})


def _deliver(kind: str, recipients: Callable[[Session], list[str]], status: int = 200,
             reply_token: str | None = None) -> Response:
    """The shared path of reply/push/multicast/broadcast/narrowcast: check, then accept atomically.

    `recipients` names the chats inside the accepting transaction (a reply's chat comes from its token).
    """
    rt = _rt()
    office_id = g.sim_office
    key, refusal = _retry_key(kind)
    if refusal is not None:
        return refusal
    body = _json()
    details = validate_messages(body.get("messages"))
    if details:
        return _body_errors(details)
    messages = body["messages"]
    if key is not None:
        with rt.db.reading() as s:
            if store.accepted_request(s, office_id, key) is not None:
                return _conflict(office_id, key)
    sent = _sent_messages(messages) if kind in ("reply", "push") else []
    try:
        with rt.db.transaction() as s:
            now = rt.clock.now()
            if reply_token is not None:
                chat = store.use_reply_token(s, office_id, reply_token, _real_now())
                if chat is None:
                    return _error(400, MSG_INVALID_REPLY_TOKEN)
                chats = [chat]
            else:
                chats = recipients(s)
            cost = 0 if kind == "reply" else sum(store.cost_of(c) for c in chats)
            limit = store.quota_limit(s, office_id)
            if cost and limit is not None and store.consumption(s, office_id, now) + cost > limit:
                return _error(429, MSG_MONTHLY_LIMIT)
            store.record_request(s, office_id, kind, g.sim_request_id, key, cost, sent, now)
            store.store_messages(s, office_id, chats, kind, messages, sent, now)
    except IntegrityError:
        return _conflict(office_id, key) if key else _error(500, "An internal server error occurred.")
    return _answer(status, {"sentMessages": sent} if sent else {})


@bp.post("/v2/bot/message/reply")
def reply():
    token = _json().get("replyToken")
    if not isinstance(token, str) or not token:
        return _body_errors([{"message": "Must not be empty", "property": "replyToken"}])
    return _deliver("reply", lambda s: [], reply_token=token)


@bp.post("/v2/bot/message/push")
def push():
    to = _json().get("to")
    if not isinstance(to, str) or not _CHAT_ID.match(to):
        return _body_errors([{"message": "Must be a user, group or room ID", "property": "to"}])
    return _deliver("push", lambda s: [to])


@bp.post("/v2/bot/message/multicast")
def multicast():
    to = _json().get("to")
    if not isinstance(to, list) or not 1 <= len(to) <= MAX_MULTICAST \
            or not all(isinstance(u, str) and u.startswith("U") for u in to):
        return _body_errors([{"message": f"Size must be between 1 and {MAX_MULTICAST}", "property": "to"}])
    return _deliver("multicast", lambda s: list(dict.fromkeys(to)))


@bp.post("/v2/bot/message/broadcast")
def broadcast():
    office_id = g.sim_office
    return _deliver("broadcast", lambda s: store.followers(s, office_id))


@bp.post("/v2/bot/message/narrowcast")
def narrowcast():
    office_id = g.sim_office
    return _deliver("narrowcast", lambda s: store.followers(s, office_id), status=202)


@bp.get("/v2/bot/message/progress/narrowcast")
def narrowcast_progress():
    with _rt().db.reading() as s:
        row = store.request_by_id(s, g.sim_office, request.args.get("requestId", ""))
        if row is None or row.kind != "narrowcast":
            return _error(404, MSG_NOT_FOUND)
        at = row.created_at.isoformat()
        return _answer(200, {"phase": "succeeded", "successCount": row.cost, "failureCount": 0,
                             "targetCount": row.cost, "acceptedTime": at, "completedTime": at})


@bp.post("/v2/bot/message/validate/<kind>")
def validate(kind: str):
    if kind not in ("reply", "push", "multicast", "narrowcast", "broadcast"):
        return _error(404, MSG_NOT_FOUND)
    details = validate_messages(_json().get("messages"))
    return _body_errors(details) if details else _answer(200)


@bp.get("/v2/bot/message/quota")
def quota():
    with _rt().db.reading() as s:
        limit = store.quota_limit(s, g.sim_office)
    return _answer(200, {"type": "none"} if limit is None else {"type": "limited", "value": limit})


@bp.get("/v2/bot/message/quota/consumption")
def quota_consumption():
    rt = _rt()
    with rt.db.reading() as s:
        return _answer(200, {"totalUsage": store.consumption(s, g.sim_office, rt.clock.now())})


@bp.post("/v2/bot/chat/loading/start")
def loading():
    body = _json()
    chat_id, seconds = body.get("chatId"), body.get("loadingSeconds", 20)
    details = []
    if not isinstance(chat_id, str) or not chat_id.startswith("U"):
        details.append({"message": "Must be a user ID (one-on-one chats only)", "property": "chatId"})
    if not isinstance(seconds, int) or seconds % 5 or not 5 <= seconds <= 60:
        details.append({"message": "Must be a multiple of 5 between 5 and 60", "property": "loadingSeconds"})
    if details:
        return _body_errors(details)
    rt = _rt()
    with rt.db.transaction() as s:
        store.add_message(s, g.sim_office, chat_id, "system", "loading", {"type": "loading", "seconds": seconds},
                          rt.clock.now())
    return _answer(202)


@bp.post("/v2/bot/chat/markAsRead")
@bp.post("/v2/bot/message/markAsRead")
def mark_as_read():
    return _answer(200)


# -- profiles, the bot, groups ----------------------------------------------------------------------

def _profile(user_id: str) -> Response:
    office_id = g.sim_office
    if user_id == events.staff_member_id(office_id):
        return _answer(200, {"displayName": "staff", "userId": user_id, "language": "ja"})
    with _rt().db.reading() as s:
        row = store.user(s, office_id, user_id)
        if row is None or not row.followed:
            return _error(404, MSG_NOT_FOUND)
        return _answer(200, {"displayName": row.display_name, "userId": user_id, "language": "ja"})


@bp.get("/v2/bot/profile/<user_id>")
def profile(user_id: str):
    return _profile(user_id)


@bp.get("/v2/bot/group/<group_id>/member/<user_id>")
def group_member(group_id: str, user_id: str):
    return _profile(user_id)


@bp.get("/v2/bot/group/<group_id>/members/count")
def group_count(group_id: str):
    return _answer(200, {"count": store.DEFAULT_GROUP_SIZE})


@bp.get("/v2/bot/group/<group_id>/members/ids")
def group_member_ids(group_id: str):
    return _answer(200, {"memberIds": [events.staff_member_id(g.sim_office)]})


@bp.get("/v2/bot/group/<group_id>/summary")
def group_summary(group_id: str):
    return _answer(200, {"groupId": group_id, "groupName": f"madoguchi staff ({g.sim_office})"})


@bp.post("/v2/bot/group/<group_id>/leave")
def group_leave(group_id: str):
    rt = _rt()
    with rt.db.transaction() as s:
        store.add_message(s, g.sim_office, group_id, "system", "event", {"type": "event", "event": "leave"},
                          rt.clock.now())
    return _answer(200)


@bp.get("/v2/bot/info")
def bot_info():
    rt = _rt()
    office_id = g.sim_office
    office = rt.offices[office_id]
    return _answer(200, {"userId": events.bot_user_id(office_id),
                         "basicId": rt.config.basic_id(office_id) or f"@sim-{office_id}",
                         "displayName": getattr(office, "name", office_id), "chatMode": "bot",
                         "markAsReadMode": "manual"})


@bp.get("/v2/bot/followers/ids")
def follower_ids():
    with _rt().db.reading() as s:
        return _answer(200, {"userIds": store.followers(s, g.sim_office)})


# -- rich menus (the picture goes through the data host: same paths under LINE_API_DATA_BASE_URL) ------

def check_rich_menu(menu: dict) -> list[dict]:
    """LINE's checks on a rich menu object."""
    details = []
    for prop in ("size", "selected", "name", "chatBarText", "areas"):
        if prop not in menu:
            details.append({"message": "Must not be null", "property": prop})
    if details:
        return details
    size = menu["size"] if isinstance(menu["size"], dict) else {}
    width, height = size.get("width"), size.get("height")
    if not isinstance(width, int) or not isinstance(height, int) or not 800 <= width <= 2500 or height < 250 \
            or width / height < 1.45:
        details.append({"message": "Invalid size", "property": "size"})
    if not isinstance(menu["chatBarText"], str) or len(menu["chatBarText"]) > 14:
        details.append({"message": "Length must be between 0 and 14", "property": "chatBarText"})
    if not isinstance(menu["name"], str) or not 1 <= len(menu["name"]) <= 300:
        details.append({"message": "Length must be between 1 and 300", "property": "name"})
    areas = menu["areas"] if isinstance(menu["areas"], list) else None
    if areas is None or len(areas) > 20:
        details.append({"message": "Size must be between 0 and 20", "property": "areas"})
        return details
    for i, area in enumerate(areas):
        bounds = (area or {}).get("bounds") or {}
        x, y, w, h = (bounds.get(k) for k in ("x", "y", "width", "height"))
        if not all(isinstance(v, int) and v >= 0 for v in (x, y, w, h)) \
                or (isinstance(width, int) and x + w > width) or (isinstance(height, int) and y + h > height):
            details.append({"message": "Bounds must lie within the rich menu", "property": f"areas[{i}].bounds"})
        if not isinstance((area or {}).get("action"), dict):
            details.append({"message": "Must not be null", "property": f"areas[{i}].action"})
    return details


@bp.post("/v2/bot/richmenu")
def richmenu_create():
    menu = request.get_json(silent=True)
    if not isinstance(menu, dict):
        return _error(400, "The request body could not be parsed as JSON")
    details = check_rich_menu(menu)
    if details:
        return _body_errors(details)
    menu_id = "richmenu-" + secrets.token_hex(16)
    rt = _rt()
    with rt.db.transaction() as s:
        store.create_rich_menu(s, g.sim_office, menu_id, menu, rt.clock.now())
    return _answer(200, {"richMenuId": menu_id})


@bp.post("/v2/bot/richmenu/validate")
def richmenu_validate():
    menu = request.get_json(silent=True)
    details = check_rich_menu(menu) if isinstance(menu, dict) else [{"message": "Not JSON", "property": ""}]
    return _body_errors(details) if details else _answer(200)


@bp.get("/v2/bot/richmenu/list")
def richmenu_list():
    with _rt().db.reading() as s:
        menus = [dict(m.menu, richMenuId=m.rich_menu_id) for m in store.rich_menus(s, g.sim_office)]
    return _answer(200, {"richmenus": menus})


@bp.get("/v2/bot/richmenu/<menu_id>")
def richmenu_get(menu_id: str):
    with _rt().db.reading() as s:
        row = store.rich_menu(s, g.sim_office, menu_id)
        if row is None:
            return _error(404, MSG_NOT_FOUND)
        return _answer(200, dict(row.menu, richMenuId=row.rich_menu_id))


@bp.delete("/v2/bot/richmenu/<menu_id>")
def richmenu_delete(menu_id: str):
    with _rt().db.transaction() as s:
        if store.rich_menu(s, g.sim_office, menu_id) is None:
            return _error(404, MSG_NOT_FOUND)
        store.delete_rich_menu(s, g.sim_office, menu_id)
    return _answer(200)


@bp.post("/v2/bot/richmenu/<menu_id>/content")
def richmenu_upload(menu_id: str):
    ctype = (request.content_type or "").split(";")[0].strip().lower()
    raw = request.get_data(cache=False)
    if ctype not in ("image/png", "image/jpeg"):
        return _error(415, "Unsupported Media Type: use image/jpeg or image/png")
    if not (raw.startswith(PNG_MAGIC) if ctype == "image/png" else raw.startswith(b"\xff\xd8")):
        return _error(400, "The image could not be read as " + ctype)
    if len(raw) > MAX_IMAGE_BYTES:
        return _error(400, "The image must be 1 MB or less")
    with _rt().db.transaction() as s:
        row = store.rich_menu(s, g.sim_office, menu_id)
        if row is None:
            return _error(404, MSG_NOT_FOUND)
        if row.image is not None:
            return _error(400, "An image has already been uploaded to the richmenu")
        size = png_size(raw) if ctype == "image/png" else None
        expected = (row.menu["size"]["width"], row.menu["size"]["height"])
        if size is not None and size != expected:
            return _error(400, "The image size must match the rich menu's size")
        row.image, row.content_type = raw, ctype
    return _answer(200)


@bp.get("/v2/bot/richmenu/<menu_id>/content")
def richmenu_download(menu_id: str):
    with _rt().db.reading() as s:
        row = store.rich_menu(s, g.sim_office, menu_id)
        if row is None or row.image is None:
            return _error(404, MSG_NOT_FOUND)
        return Response(row.image, mimetype=row.content_type)


@bp.post("/v2/bot/user/all/richmenu/<menu_id>")
def richmenu_set_default(menu_id: str):
    with _rt().db.transaction() as s:
        row = store.rich_menu(s, g.sim_office, menu_id)
        if row is None:
            return _error(404, MSG_NOT_FOUND)
        if row.image is None:
            return _error(400, "An image has not been uploaded to the richmenu")
        store.set_default_rich_menu(s, g.sim_office, menu_id)
    return _answer(200)


@bp.get("/v2/bot/user/all/richmenu")
def richmenu_get_default():
    with _rt().db.reading() as s:
        menu_id = store.default_rich_menu_id(s, g.sim_office)
    return _answer(200, {"richMenuId": menu_id}) if menu_id else _error(404, MSG_NOT_FOUND)


@bp.delete("/v2/bot/user/all/richmenu")
def richmenu_cancel_default():
    with _rt().db.transaction() as s:
        store.set_default_rich_menu(s, g.sim_office, None)
    return _answer(200)


@bp.post("/v2/bot/user/<user_id>/richmenu/<menu_id>")
def richmenu_link(user_id: str, menu_id: str):
    with _rt().db.transaction() as s:
        row = store.rich_menu(s, g.sim_office, menu_id)
        if row is None:
            return _error(404, MSG_NOT_FOUND)
        if row.image is None:
            return _error(400, "An image has not been uploaded to the richmenu")
        store.link_rich_menu(s, g.sim_office, user_id, menu_id)
    return _answer(200)


@bp.get("/v2/bot/user/<user_id>/richmenu")
def richmenu_of_user(user_id: str):
    with _rt().db.reading() as s:
        menu_id = store.linked_rich_menu_id(s, g.sim_office, user_id)
    return _answer(200, {"richMenuId": menu_id}) if menu_id else _error(404, MSG_NOT_FOUND)


@bp.delete("/v2/bot/user/<user_id>/richmenu")
def richmenu_unlink(user_id: str):
    with _rt().db.transaction() as s:
        store.link_rich_menu(s, g.sim_office, user_id, None)
    return _answer(200)
