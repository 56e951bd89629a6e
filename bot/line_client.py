"""The only module that talks to LINE's Messaging API (linebot.v3.messaging), always with a timeout."""
from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

import urllib3
from linebot.v3.messaging import (
    ApiClient,
    ApiException,
    BroadcastRequest,
    Configuration,
    MessagingApi,
    MessagingApiBlob,
    MulticastRequest,
    RichMenuRequest,
    ShowLoadingAnimationRequest,
)

log = logging.getLogger(__name__)

SENT = "sent"              # accepted by LINE
DUPLICATE = "duplicate"    # 409: accepted earlier under the same retry key
RETRY = "retry"            # not delivered, safe to try again (refused before sending, 5xx with retry key)
FAILED = "failed"          # certainly not delivered, and trying again will not help (4xx)
UNKNOWN = "unknown"        # may or may not have arrived (a reply that timed out): never resend as is
QUOTA = "quota"            # 429 monthly limit: hold until sending works again
RATE = "rate"              # 429 rate limit: retry later
AUTH = "auth"              # 401: the channel access token is refused: hold until the operator sets a valid one

CONNECT_TIMEOUT = 2.0      # seconds to open a connection (the worker's calls)
MAX_RETRY_AFTER = 3600.0   # a longer Retry-After is taken as this (a bad header must not park rows for days)
REPLY_PATH = "/v2/bot/message/reply"
PUSH_PATH = "/v2/bot/message/push"


@dataclass(frozen=True)
class SendResult:
    outcome: str
    status: int | None = None
    detail: str = ""
    retry_after: float | None = None   # seconds LINE asked us to wait before trying again (Retry-After)

    @property
    def delivered(self) -> bool:
        return self.outcome in (SENT, DUPLICATE)


def _is_quota(body: str | None) -> bool:
    try:
        message = json.loads(body or "{}").get("message", "")
    except (ValueError, AttributeError):
        message = body or ""
    return "monthly limit" in str(message).lower()


def _retry_after(headers) -> float | None:
    """Seconds from a Retry-After header (delay-seconds or an HTTP date), at most MAX_RETRY_AFTER; None without
    a usable one."""
    value = (headers or {}).get("Retry-After") if hasattr(headers, "get") else None
    if not value:
        return None
    value = str(value).strip()
    try:
        seconds = float(int(value))
    except ValueError:
        try:
            seconds = parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


class LineClient:
    """Per-office SDK clients pointed at LINE (or a local fake), thread-safe, with timeouts."""

    def __init__(self, base_url: str, data_base_url: str, token_for, timeout: float = 5.0):
        self._base = base_url
        self._data_base = data_base_url
        self._token_for = token_for
        self.timeout = timeout
        self._clients: dict[tuple[str, str], ApiClient] = {}
        self._lock = threading.Lock()

    def _api_client(self, office: str, host: str) -> ApiClient:
        key = (office, host)
        with self._lock:
            client = self._clients.get(key)
            if client is None:
                cfg = Configuration(host=host, access_token=self._token_for(office))
                cfg.retries = False  # we retry ourselves, with retry keys
                client = ApiClient(cfg)
                self._clients[key] = client
            return client

    def api(self, office: str) -> MessagingApi:
        return MessagingApi(self._api_client(office, self._base))

    def blob(self, office: str) -> MessagingApiBlob:
        return MessagingApiBlob(self._api_client(office, self._data_base))

    def _timeout(self, budget: float | None):
        """urllib3 timeouts: (connect, read) for the worker; one total for a budgeted call.

        A budget (the web process's reply budget) bounds connect and read together, so a call
        never outlasts it; the worker's calls may take a connect timeout plus a read timeout.
        """
        if budget is not None:
            return max(0.05, float(budget))
        return (min(CONNECT_TIMEOUT, self.timeout), self.timeout)

    # -- sending ------------------------------------------------------------------------------
    def reply(self, office: str, token: str, messages: list[dict], timeout: float | None = None) -> SendResult:
        return self._send(lambda: self._post_json(office, REPLY_PATH, {"replyToken": token, "messages": messages},
                                                  timeout), reply=True)

    def push(self, office: str, to: str, messages: list[dict], retry_key: str,
             timeout: float | None = None) -> SendResult:
        return self._send(lambda: self._post_json(office, PUSH_PATH, {"to": to, "messages": messages}, timeout,
                                                  retry_key))

    def _post_json(self, office: str, path: str, body: dict, timeout: float | None, retry_key: str | None = None):
        """POST a body that is already the API's JSON, through the SDK's client (auth, user agent, errors).

        Replies and pushes are sent once per event: the generated methods would turn the messages into the
        SDK's models and straight back into the same JSON, which costs more than the call itself. The
        messages come from our templates, which a test checks against those models.
        """
        headers = {"Accept": "application/json", "Content-Type": "application/json"}
        if retry_key:
            headers["X-Line-Retry-Key"] = retry_key
        return self._api_client(office, self._base).call_api(
            path, "POST", header_params=headers, body=body, auth_settings=["Bearer"], response_types_map={},
            _request_timeout=self._timeout(timeout))

    def multicast(self, office: str, to: list[str], messages: list[dict], retry_key: str,
                  timeout: float | None = None) -> SendResult:
        request = MulticastRequest.from_dict({"to": to, "messages": messages})
        return self._send(lambda: self.api(office).multicast_with_http_info(
            request, x_line_retry_key=retry_key, _request_timeout=self._timeout(timeout)))

    def broadcast(self, office: str, messages: list[dict], retry_key: str,
                  timeout: float | None = None) -> SendResult:
        request = BroadcastRequest.from_dict({"messages": messages})
        return self._send(lambda: self.api(office).broadcast_with_http_info(
            request, x_line_retry_key=retry_key, _request_timeout=self._timeout(timeout)))

    def leave_group(self, office: str, group_id: str, timeout: float | None = None) -> SendResult:
        return self._send(lambda: self.api(office).leave_group_with_http_info(
            group_id, _request_timeout=self._timeout(timeout)))

    def leave_room(self, office: str, room_id: str, timeout: float | None = None) -> SendResult:
        return self._send(lambda: self.api(office).leave_room_with_http_info(
            room_id, _request_timeout=self._timeout(timeout)))

    def show_loading(self, office: str, user_id: str, seconds: int = 5) -> SendResult:
        request = ShowLoadingAnimationRequest.from_dict({"chatId": user_id, "loadingSeconds": seconds})
        return self._send(lambda: self.api(office).show_loading_animation_with_http_info(
            request, _request_timeout=self._timeout(2.0)))

    # -- reading ------------------------------------------------------------------------------
    def remaining_quota(self, office: str) -> tuple[int | None, int]:
        """(monthly limit or None for unlimited, messages consumed this month)."""
        api = self.api(office)
        quota = api.get_message_quota(_request_timeout=self._timeout(None))
        used = api.get_message_quota_consumption(_request_timeout=self._timeout(None))
        limit = quota.value if getattr(quota, "type", "") == "limited" else None
        return limit, int(used.total_usage)

    # -- rich menu ----------------------------------------------------------------------------
    def deploy_rich_menu(self, office: str, menu: dict, png: bytes) -> str:
        """Create the menu, upload its picture, make it the default; its id.

        A failure after the menu was created deletes it again (it is not the default yet, so nobody sees it),
        so a rerun does not leave one more half-made menu on LINE. The error is raised either way, with
        `rich_menu_left` set to the id of a menu that could not be deleted (None when nothing was left)."""
        api = self.api(office)
        created = api.create_rich_menu(RichMenuRequest.from_dict(menu), _request_timeout=self._timeout(None))
        try:
            self.blob(office).set_rich_menu_image(
                created.rich_menu_id, body=bytearray(png), _headers={"Content-Type": "image/png"},
                _request_timeout=self._timeout(None))
            api.set_default_rich_menu(created.rich_menu_id, _request_timeout=self._timeout(None))
        except Exception as exc:
            exc.rich_menu_left = None if self._delete_rich_menu(api, created.rich_menu_id) else created.rich_menu_id
            raise
        return created.rich_menu_id

    def rich_menu_ids(self, office: str, name: str) -> list[str]:
        """The ids of the account's rich menus of this name (the list holds the menus made through the Messaging
        API only, never one made in the LINE Official Account Manager)."""
        listed = self.api(office).get_rich_menu_list(_request_timeout=self._timeout(None))
        return [m.rich_menu_id for m in listed.richmenus or [] if m.name == name]

    def delete_rich_menu(self, office: str, menu_id: str) -> bool:
        """Delete one rich menu; False when LINE did not (the caller reports it)."""
        return self._delete_rich_menu(self.api(office), menu_id)

    def _delete_rich_menu(self, api: MessagingApi, menu_id: str) -> bool:
        try:
            api.delete_rich_menu(menu_id, _request_timeout=self._timeout(None))
        except Exception:  # noqa: BLE001 - the caller reports the menu left behind
            return False
        return True

    # -- classification -----------------------------------------------------------------------
    @staticmethod
    def _send(call, reply: bool = False) -> SendResult:
        try:
            response = call()
        except ApiException as exc:
            status = exc.status or 0
            if status == 0:
                # Raised by the SDK without an answer (e.g. a TLS failure): it may have been sent.
                return SendResult(UNKNOWN if reply else RETRY, None, "no answer")
            if status == 409:
                return SendResult(DUPLICATE, status)
            if status == 429:
                return SendResult(QUOTA if _is_quota(exc.body) else RATE, status, "429",
                                  _retry_after(exc.headers))
            if status == 401:
                # Nothing was sent; no message of this channel goes until its token is valid again.
                return SendResult(AUTH, status, "http 401")
            if status >= 500:
                # A reply has no retry key: a 5xx may still have been delivered.
                return SendResult(UNKNOWN if reply else RETRY, status, f"http {status}", _retry_after(exc.headers))
            return SendResult(FAILED, status, f"http {status}")
        except (urllib3.exceptions.ConnectTimeoutError, urllib3.exceptions.NewConnectionError) as exc:
            return SendResult(RETRY, None, type(exc).__name__)
        except urllib3.exceptions.MaxRetryError as exc:
            reason = exc.reason
            if isinstance(reason, (urllib3.exceptions.ConnectTimeoutError, urllib3.exceptions.NewConnectionError)):
                return SendResult(RETRY, None, type(reason).__name__)
            return SendResult(UNKNOWN if reply else RETRY, None, type(reason).__name__)
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            # Read timeout, reset after sending: outcome unknown.
            return SendResult(UNKNOWN if reply else RETRY, None, type(exc).__name__)
        status = getattr(response, "status_code", 200)
        return SendResult(SENT, status)
