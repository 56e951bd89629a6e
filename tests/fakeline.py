"""A loopback fake of the LINE Messaging API, for tests and fault drills.

The v3 SDK talks urllib3, which ``responses`` cannot intercept, so tests point the SDK at a
real HTTP server on 127.0.0.1 instead::

    from linebot.v3.messaging import ApiClient, Configuration, MessagingApi

    with FakeLineApi() as fake:                      # or: fake = FakeLineApi().start() ... fake.stop()
        cfg = Configuration(host=fake.url, access_token="t")
        MessagingApi(ApiClient(cfg)).push_message(..., _request_timeout=2)
        assert fake.texts_to("U...") == ["こんにちは"]

A pytest fixture is two lines::

    @pytest.fixture
    def fake_line():
        with FakeLineApi() as fake:
            yield fake

One server plays both hosts (``api.line.me`` and ``api-data.line.me``): give the app the same
``fake.url`` as its LINE API base URL and its data base URL.

What it checks, like LINE does (within what a test needs):

* ``Authorization: Bearer <token>`` on every call (401 without; with ``access_token=`` set,
  the token must match).
* Reply tokens are single use; ``expire_reply_token()`` makes one invalid; with
  ``strict_reply_tokens=True`` only tokens registered through ``register_reply_token()``
  (``LineUser`` does that when given the fake) are valid.
* Message objects, by the same checker as the dev simulator (``bot/simulator/validate.py``): 1-5 per
  call; text 1-5,000 and altText 1-400 UTF-16 units; quick reply 1-13 items, each labelled (<= 20)
  and a postback one with a displayText; action labels <= 20, postback data and displayText <= 300,
  URIs <= 1,000; template titles <= 40, texts within 160/60 (buttons), 240 (confirm), 120/60
  (carousel column), buttons <= 4 actions, confirm exactly 2, carousel <= 10 columns; Flex carousel
  <= 12 bubbles, bubble <= 30 KB, carousel <= 50 KB.  Failures answer 400 in LINE's error shape
  (``message`` + ``details[{message, property}]``).
* ``X-Line-Retry-Key`` (push, multicast, narrowcast, broadcast only; a UUID; 400 elsewhere): a key
  already accepted answers 409 with ``x-line-accepted-request-id`` and delivers nothing.
* Monthly quota: ``quota_limit`` (None = unlimited) against ``consumption``, which counts a
  push once per recipient (a group id starting with "C" or room id starting with "R" counts
  ``group_sizes.get(id, 3)``), a multicast once per recipient, a broadcast or narrowcast
  ``followers`` times.  Replies are free.  Going over answers 429 "You have reached your
  monthly limit."

Faults (``fail_next``, ``random_faults``, ``set_delay``) are described on those methods.  The
rule that matters for exactly-once tests: a fault *before acceptance* records no delivery; a
fault with ``fail_after_accept=True`` delivers first and then errors (the "outcome unknown" case).

One server for many tests (``tests/conftest.py`` starts one per test process): ``begin(label)`` starts a
test's turn, and ``url`` then carries that turn's tag (``/_test/<tag>``); ``end()`` ends it. A call with an
earlier turn's tag (a thread or process of a test that has ended) is not recorded with the running test's calls
and changes nothing: it is answered 410 and kept in ``strays()``, naming the test it came from. So is a call of a
test's own turn that LINE would take only after that turn ended (it was delayed or stalled past it).

Everything recorded is readable from any thread: ``calls`` (every request), ``deliveries()``
(full records), ``delivered()`` (``(kind, to, messages)`` triples), ``messages_to()`` and
``texts_to()``.  Stdlib only, and the message checker it shares with the dev simulator (the optional
``configuration()`` helper imports the SDK lazily).
"""
from __future__ import annotations

import json
import random
import re
import secrets
import socket
import struct
import threading
import sys
import time
import traceback
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, NamedTuple
from urllib.parse import parse_qs, urlsplit

from bot.simulator.validate import validate_messages

__all__ = ["FakeLineApi", "Call", "Delivery", "Sent", "Stray", "Fault"]

# LINE's own error texts, where the fake answers with them.
MSG_RATE_LIMIT = "The API rate limit has been exceeded. Try again later."
MSG_MONTHLY_LIMIT = "You have reached your monthly limit."
MSG_INVALID_REPLY_TOKEN = "Invalid reply token"
MSG_RETRY_KEY_ACCEPTED = "The retry key is already accepted"
MSG_AUTH_FAILED = (
    "Authentication failed. Confirm that the access token in the authorization header is valid."
)
MSG_INTERNAL = "An internal server error occurred."

FAULT_TIMEOUT = "timeout"
FAULT_RESET = "reset"

#: Senders that accept X-Line-Retry-Key.
RETRYABLE_KINDS = frozenset({"push", "multicast", "narrowcast", "broadcast"})

#: The name of each thread that answers a connection starts with this.
HANDLER_THREAD_PREFIX = "FakeLineApi handler:"
#: A test's turn, at the start of the path (``FakeLineApi.begin``).
_TURN_RE = re.compile(r"^/_test/(?P<tag>[0-9a-f]+)(?P<path>/.*)$")
MSG_STRAY = "FakeLineApi: this call comes from a test that has ended ({origin})"

_UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


# --------------------------------------------------------------------------- records


@dataclass
class Call:
    """One HTTP request the fake received (faulted or not).

    ``headers`` has lower-cased names.  ``body`` is the parsed JSON (None when the body was
    empty, not JSON, or binary such as an image; ``raw`` always has the bytes).  ``status`` is
    the status code sent back, or None when the connection was dropped ("reset"/"timeout")
    or the answer is still pending.  ``fault`` names the injected fault, if any.
    """

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any
    raw: bytes
    at: float
    request_id: str
    status: int | None = None
    fault: str | None = None
    response: Any = None
    answered_at: float | None = None   # when the answer was sent (``at``: when the request arrived)

    @property
    def retry_key(self) -> str | None:
        return self.headers.get("x-line-retry-key")

    def header(self, name: str, default: str | None = None) -> str | None:
        return self.headers.get(name.lower(), default)


@dataclass(frozen=True)
class Delivery:
    """One send LINE accepted.

    ``kind``: "reply", "push", "multicast", "broadcast" or "narrowcast".
    ``to``: the reply token (reply), the ``to`` id (push), the list of user ids (multicast),
    None (broadcast), or the narrowcast request's ``recipient`` object.
    ``recipients``: the chats it reached as far as the fake knows (the user or group a reply
    token was registered for; empty for broadcast/narrowcast).
    """

    kind: str
    to: Any
    messages: list
    recipients: tuple[str, ...]
    reply_token: str | None
    retry_key: str | None
    request_id: str
    sent_ids: tuple[str, ...]
    at: float


class Sent(NamedTuple):
    """What ``delivered()`` returns: unpacks as ``kind, to, messages``."""

    kind: str
    to: Any
    messages: list


@dataclass(frozen=True)
class Stray:
    """A call that reached the fake after the test it came from had ended (see ``FakeLineApi.begin``).

    ``origin``: the label of the test whose turn the call belongs to; ``during``: the label of the test whose
    turn it was when the call came (None between tests); ``late``: the call came in its own test's turn but was
    held (a delay, a stall) until after that turn ended."""

    method: str
    path: str
    origin: str
    during: str | None
    at: float
    late: bool = False

    def describe(self) -> str:
        when = "held past its end" if self.late else "after it ended"
        return f"{self.method} {self.path} from {self.origin} ({when}; during {self.during or 'no test'})"


@dataclass
class Fault:
    """A scripted fault (see ``FakeLineApi.fail_next``)."""

    kind: int | str
    remaining: int = 1
    path_contains: str | None = None
    delay: float = 0.0
    body: Any = None
    after_accept: bool = False
    headers: dict[str, str] | None = None

    def matches(self, path: str) -> bool:
        return self.path_contains is None or self.path_contains in path

    def describe(self) -> str:
        return f"{self.kind}{' after accept' if self.after_accept else ''}"


@dataclass
class _Answer:
    status: int
    body: Any = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    content: bytes | None = None  # raw bytes instead of JSON


@dataclass
class _Request:
    call: Call
    params: dict[str, str]

    @property
    def json(self) -> Any:
        return self.call.body


# --------------------------------------------------------------------------- validation


def _error(message: str, details: list[dict] | None = None, status: int = 400) -> _Answer:
    body: dict[str, Any] = {"message": message}
    if details:
        body["details"] = details
    return _Answer(status, body)


def _body_errors(details: list[dict]) -> _Answer:
    return _error(f"The request body has {len(details)} error(s)", details)


# --------------------------------------------------------------------------- the server


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    fake: "FakeLineApi"

    def process_request(self, request, client_address):
        """A thread per connection, as ThreadingHTTPServer does, named after the fake (a test's check for threads
        left running tells them from its own)."""
        thread = threading.Thread(target=self.process_request_thread, args=(request, client_address),
                                  name=f"{HANDLER_THREAD_PREFIX}{self.server_address[1]}", daemon=True)
        thread.start()

    def handle_error(self, request, client_address):
        """Connection errors are normal here (clients time out); anything else is a bug in the fake,
        kept in ``fake.errors`` instead of being printed."""
        exc = sys.exc_info()[1]
        if not isinstance(exc, OSError):
            self.fake.errors.append(traceback.format_exc())


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def setup(self):
        super().setup()
        # one write per answer and no Nagle: otherwise keep-alive calls pay a 40 ms delayed ACK
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format, *args):  # noqa: A002 - stdlib signature
        pass

    def do_GET(self):
        self.server.fake._handle(self)

    do_POST = do_PUT = do_DELETE = do_GET

    # helpers the fake calls --------------------------------------------------------------
    def read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def send_answer(self, answer: _Answer, request_id: str) -> None:
        payload = answer.content if answer.content is not None else json.dumps(
            answer.body, ensure_ascii=False).encode("utf-8")
        try:
            self.send_response(answer.status)
            ctype = "application/json" if answer.content is None else "application/octet-stream"
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(payload)))
            self.send_header("x-line-request-id", request_id)
            for name, value in answer.headers.items():
                self.send_header(name, value)
            self._headers_buffer.append(b"\r\n" + payload)  # headers and body in one send
            self.flush_headers()
        except OSError:
            self.close_connection = True

    def drop(self, hard: bool = True) -> None:
        """Close the connection without an answer (RST when ``hard``)."""
        self.close_connection = True
        try:
            if hard:
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
        except OSError:
            pass


class FakeLineApi:
    """A LINE Messaging API (and data API) on 127.0.0.1, recording what it is sent.

    Knobs (all plain attributes, change them any time):
      ``access_token``: None accepts any bearer token; a string requires that one.
      ``quota_limit``: monthly message limit, None = unlimited.  ``consumption``: used so far.
      ``followers``: what a broadcast/narrowcast costs.  ``group_sizes``: {group id: members}.
      ``timeout_seconds``: how long a "timeout" fault stalls (default 6 s).
      ``strict_reply_tokens``: only registered reply tokens are valid.
      ``profiles``: {user id: profile dict}; ``blocked``: user ids whose profile answers 404.
      ``bot_user_id``: the bot's own user id (``GET /v2/bot/info``; LineUser's ``destination``).
    """

    def __init__(
        self,
        *,
        access_token: str | None = None,
        quota_limit: int | None = None,
        followers: int = 100,
        group_sizes: dict[str, int] | None = None,
        timeout_seconds: float = 6.0,
        strict_reply_tokens: bool = False,
        profiles: dict[str, dict] | None = None,
        bot_user_id: str = "U" + "0" * 31 + "1",
        host: str = "127.0.0.1",
    ):
        self.access_token = access_token
        self.quota_limit = quota_limit
        self.followers = followers
        self.group_sizes: dict[str, int] = dict(group_sizes or {})
        self.timeout_seconds = timeout_seconds
        self.strict_reply_tokens = strict_reply_tokens
        self.profiles: dict[str, dict] = dict(profiles or {})
        self.blocked: set[str] = set()
        self.bot_user_id = bot_user_id
        self.errors: list[str] = []   # tracebacks of bugs inside the fake (should stay empty)
        self._host = host
        self._lock = threading.RLock()
        self._turn: str | None = None             # the running test's tag (``begin``), None outside a test
        self._turn_labels: dict[str, str] = {}    # tag -> the test's label
        self._strays: list[Stray] = []
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._routes: list[tuple[str, re.Pattern, Callable[[_Request], _Answer]]] = [
            ("POST", re.compile(r"^/v2/bot/message/reply$"), self._reply),
            ("POST", re.compile(r"^/v2/bot/message/push$"), self._push),
            ("POST", re.compile(r"^/v2/bot/message/multicast$"), self._multicast),
            ("POST", re.compile(r"^/v2/bot/message/broadcast$"), self._broadcast),
            ("POST", re.compile(r"^/v2/bot/message/narrowcast$"), self._narrowcast),
            ("GET", re.compile(r"^/v2/bot/profile/(?P<userId>[^/]+)$"), self._profile),
            ("POST", re.compile(r"^/v2/bot/chat/loading/start$"), self._loading),
            ("GET", re.compile(r"^/v2/bot/message/quota$"), self._quota),
            ("GET", re.compile(r"^/v2/bot/message/quota/consumption$"), self._consumption),
            ("GET", re.compile(r"^/v2/bot/info$"), self._bot_info),
            ("POST", re.compile(r"^/v2/bot/richmenu$"), self._richmenu_create),
            ("POST", re.compile(r"^/v2/bot/richmenu/(?P<richMenuId>[^/]+)/content$"), self._richmenu_content),
            ("POST", re.compile(r"^/v2/bot/user/all/richmenu/(?P<richMenuId>[^/]+)$"), self._richmenu_default),
            ("GET", re.compile(r"^/v2/bot/richmenu/list$"), self._richmenu_list),
            ("DELETE", re.compile(r"^/v2/bot/richmenu/(?P<richMenuId>[^/]+)$"), self._richmenu_delete),
            ("POST", re.compile(r"^/v2/bot/group/(?P<groupId>[^/]+)/leave$"), self._group_leave),
            ("GET", re.compile(r"^/v2/bot/group/(?P<groupId>[^/]+)/members/count$"), self._group_count),
        ]
        self._clear_state()

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> "FakeLineApi":
        """Bind an ephemeral port and serve in a daemon thread.  Returns self."""
        if self._server is not None:
            return self
        self._stopping.clear()
        server = _Server((self._host, 0), _Handler)
        server.fake = self
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"FakeLineApi:{server.server_address[1]}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving; wakes any handler stalled in a delay/timeout so nothing lingers."""
        self._stopping.set()
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> "FakeLineApi":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("FakeLineApi is not started")
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        """Base URL without a trailing slash, e.g. ``http://127.0.0.1:54321``; within a test's turn
        (``begin``), with the turn's tag: ``http://127.0.0.1:54321/_test/3f2a...``."""
        with self._lock:
            turn = self._turn
        return self.server_url + (f"/_test/{turn}" if turn else "")

    @property
    def server_url(self) -> str:
        """The server's own address, without a test's tag."""
        return f"http://{self._host}:{self.port}"

    # ------------------------------------------------------------------ tests sharing one server

    def begin(self, label: str) -> str:
        """Start a test's turn: everything recorded is forgotten (``reset``), and ``url`` carries a new tag. Calls
        made with an earlier tag from now on are strays (``strays``). Returns the tag."""
        with self._lock:
            self._clear_state()
            tag = secrets.token_hex(8)
            self._turn, self._turn_labels[tag] = tag, label
            return tag

    def end(self) -> None:
        """End the running test's turn: everything recorded is forgotten; calls with its tag are strays now."""
        with self._lock:
            self._clear_state()
            self._turn = None

    def strays(self) -> list[Stray]:
        """Calls that came from tests that had ended, oldest first (kept across ``reset``)."""
        with self._lock:
            return list(self._strays)

    def take_strays(self) -> list[Stray]:
        """``strays()``, forgotten once read."""
        with self._lock:
            strays, self._strays = self._strays, []
            return strays

    def _stray(self, call: Call, tag: str | None, late: bool) -> _Answer:
        with self._lock:
            origin = self._turn_labels.get(tag, f"an unknown test (tag {tag})") if tag else "outside any test"
            self._strays.append(Stray(call.method, call.path, origin, self._turn_labels.get(self._turn or ""),
                                      call.at, late))
        return _Answer(410, {"message": MSG_STRAY.format(origin=origin)})

    def configuration(self, access_token: str = "test-token"):
        """A ``linebot.v3.messaging.Configuration`` aimed at this fake (SDK imported lazily)."""
        from linebot.v3.messaging import Configuration

        return Configuration(host=self.url, access_token=access_token)

    # ------------------------------------------------------------------ state

    def _clear_state(self) -> None:
        with self._lock:
            self._calls: list[Call] = []
            self._deliveries: list[Delivery] = []
            self._reply_tokens: dict[str, str] = {}      # token -> chat id (user or group)
            self._used_tokens: set[str] = set()
            self._expired_tokens: set[str] = set()
            self._retry_keys: dict[str, tuple[str, list[dict]]] = {}  # key -> (request id, sentMessages)
            self._faults: list[Fault] = []
            self._random: tuple[random.Random, float, tuple, str | None] | None = None
            self._delay = 0.0
            self.consumption = 0
            self.rich_menus: dict[str, dict] = {}        # id -> {"menu": request, "image": bytes|None, ...}
            self.default_rich_menu: str | None = None
            self.left_groups: list[str] = []
            self.loading: list[dict] = []                 # loading-animation requests accepted

    def reset(self) -> None:
        """Forget every call, delivery, token, retry key, fault, delay, rich menu and the consumption.

        Configuration knobs (quota_limit, followers, group_sizes, profiles, ...) are kept.
        """
        self._clear_state()

    @property
    def calls(self) -> list[Call]:
        """A snapshot of every request received so far, in arrival order."""
        with self._lock:
            return list(self._calls)

    def calls_to(self, path_contains: str) -> list[Call]:
        return [c for c in self.calls if path_contains in c.path]

    def deliveries(self, kind: str | None = None) -> list[Delivery]:
        """Full records of every accepted send (optionally only one kind), in acceptance order."""
        with self._lock:
            return [d for d in self._deliveries if kind is None or d.kind == kind]

    def delivered(self) -> list[Sent]:
        """``(kind, to, messages)`` for each accepted send; ``to`` is the reply token for replies."""
        return [Sent(d.kind, d.to, d.messages) for d in self.deliveries()]

    def messages_to(self, chat_id: str) -> list[dict]:
        """Message objects that reached ``chat_id`` (user or group) by reply, push or multicast.

        Replies count when their token was registered for that chat (``register_reply_token``,
        done by LineUser/StaffGroup when given the fake).  Broadcasts and narrowcasts are not
        attributed to anyone.
        """
        out: list[dict] = []
        for d in self.deliveries():
            if chat_id in d.recipients:
                out.extend(d.messages)
        return out

    def texts_to(self, chat_id: str) -> list[str]:
        """The readable strings of ``messages_to(chat_id)``: ``text``, or ``altText`` for flex/template."""
        out = []
        for m in self.messages_to(chat_id):
            if m.get("type") in ("text", "textV2"):
                out.append(m.get("text", ""))
            elif m.get("type") in ("flex", "template", "imagemap"):
                out.append(m.get("altText", ""))
        return out

    def register_reply_token(self, token: str, chat_id: str) -> None:
        """Say which chat (user or group id) a reply token belongs to."""
        with self._lock:
            self._reply_tokens[token] = chat_id

    def reply_token_chat(self, token: str) -> str | None:
        """The chat a reply token was registered for (None when it was not)."""
        with self._lock:
            return self._reply_tokens.get(token)

    def expire_reply_token(self, token: str) -> None:
        """Make a reply token invalid (as if more than a minute had passed)."""
        with self._lock:
            self._expired_tokens.add(token)

    def accepted_retry_keys(self) -> set[str]:
        with self._lock:
            return set(self._retry_keys)

    # ------------------------------------------------------------------ faults

    def fail_next(
        self,
        n: int = 1,
        status: int | str = 500,
        path_contains: str | None = None,
        delay: float = 0.0,
        body: Any = None,
        fail_after_accept: bool = False,
        headers: dict[str, str] | None = None,
    ) -> None:
        """Script a fault for the next ``n`` matching requests (faults are consumed in order).

        ``status``: an HTTP status (500, 502, 503, 429, 409, 400, ...) answered with ``body``
        (default: LINE's text for that status; 409 also carries ``x-line-accepted-request-id``) and
        ``headers`` (e.g. ``{"Retry-After": "30"}``),
        or "timeout" (stall ``timeout_seconds``, then hang up without an answer), or "reset"
        (close the socket with RST, no answer).  ``path_contains``: only requests whose path
        contains it (None: any known endpoint).  ``delay``: wait this long before the fault.

        By default the fault happens *before* acceptance: nothing is delivered, no token or retry
        key is used, no quota is consumed.  ``fail_after_accept=True`` processes the request
        normally first (delivers, uses the token/key, counts quota) and then answers the fault
        instead (for "timeout": stalls, then sends the real answer if the client still listens); a
        request the fake refuses anyway (over quota, a used token, a bad body) gets its real answer.

        Requests refused before routing (401 without a token, 404 for unknown paths) do not
        consume faults.  Note that urllib3 (the SDK's transport) retries idempotent GETs on a
        dropped connection by itself (Retry(3) unless ``Configuration.retries`` says otherwise),
        so a "reset" on a GET may be consumed without the caller noticing.
        """
        if not (isinstance(status, int) or status in (FAULT_TIMEOUT, FAULT_RESET)):
            raise ValueError(f"unknown fault {status!r}: use an HTTP status, 'timeout' or 'reset'")
        if n < 1:
            return
        with self._lock:
            self._faults.append(Fault(status, n, path_contains, delay, body, fail_after_accept, headers))

    def random_faults(
        self,
        seed: int | None,
        rate: float,
        kinds: tuple | list = (500, 429, FAULT_TIMEOUT, FAULT_RESET, "accepted-500"),
        *,
        path_contains: str | None = None,
    ) -> None:
        """Fuzz mode: each matching request fails with probability ``rate`` (deterministic per seed).

        ``kinds`` are picked uniformly: an int status, "timeout", "reset", or "accepted-500" /
        "accepted-timeout" (deliver, then fail).  Scripted ``fail_next`` faults take precedence.
        Set a small ``timeout_seconds`` for fuzz runs.  ``rate=0`` switches fuzzing off.
        """
        with self._lock:
            self._random = (random.Random(seed), rate, tuple(kinds), path_contains) if rate > 0 else None

    def set_delay(self, seconds: float) -> None:
        """Delay every request by ``seconds`` before it is processed.

        The request is still processed (and delivered) after the delay even if the client gave up
        meanwhile, like a slow LINE: a client timeout then means "outcome unknown".
        """
        with self._lock:
            self._delay = max(0.0, float(seconds))

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()
            self._random = None
            self._delay = 0.0

    def pending_faults(self) -> int:
        with self._lock:
            return sum(f.remaining for f in self._faults)

    def _take_fault(self, path: str) -> Fault | None:
        with self._lock:
            for f in self._faults:
                if f.matches(path):
                    f.remaining -= 1
                    if f.remaining <= 0:
                        self._faults.remove(f)
                    return Fault(f.kind, 1, f.path_contains, f.delay, f.body, f.after_accept, f.headers)
            if self._random is not None:
                rng, rate, kinds, contains = self._random
                if (contains is None or contains in path) and rng.random() < rate:
                    kind = rng.choice(kinds)
                    after = isinstance(kind, str) and kind.startswith("accepted-")
                    if after:
                        kind = kind[len("accepted-"):]
                        kind = int(kind) if kind.isdigit() else kind
                    return Fault(kind, 1, contains, 0.0, None, after)
        return None

    def _fault_answer(self, fault: Fault) -> _Answer:
        status = int(fault.kind)
        headers: dict[str, str] = {}
        if fault.body is not None:
            body = fault.body
        elif status == 429:
            body = {"message": MSG_RATE_LIMIT}
        elif status == 409:
            body = {"message": MSG_RETRY_KEY_ACCEPTED}
            headers["x-line-accepted-request-id"] = str(uuid.uuid4())
        elif status >= 500:
            body = {"message": MSG_INTERNAL}
        else:
            body = {"message": "Injected fault"}
        headers.update(fault.headers or {})
        return _Answer(status, body, headers)

    # ------------------------------------------------------------------ request handling

    def _handle(self, h: _Handler) -> None:
        split = urlsplit(h.path)
        tagged = _TURN_RE.match(split.path)
        tag, path = (tagged["tag"], tagged["path"]) if tagged else (None, split.path)
        try:
            raw = h.read_body()
        except OSError:
            h.close_connection = True
            return
        headers = {k.lower(): v for k, v in h.headers.items()}
        body: Any = None
        if raw and "json" in headers.get("content-type", "json"):
            try:
                body = json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, ValueError):
                body = None
        call = Call(h.command, path, parse_qs(split.query), headers, body, raw, time.time(),
                    str(uuid.uuid4()))
        with self._lock:
            turn = self._turn if tag is None else tag   # untagged: the running test's (or no test's) call
            ended = turn != self._turn   # a test that has ended: nothing of the running test's is touched
            if not ended:
                self._calls.append(call)
        if ended:
            self._finish(h, call, self._stray(call, turn, late=False))
            return

        answer = self._check_auth(call)
        if answer is not None:
            self._finish(h, call, answer)
            return
        handler, params = self._route(call)
        if handler is None:
            self._finish(h, call, _Answer(404, {"message": "Not found"}))
            return

        with self._lock:
            if turn != self._turn:
                self._finish(h, call, self._stray(call, turn, late=True))
                return
            fault = self._take_fault(call.path)
            delay = self._delay
        delay += fault.delay if fault else 0.0
        if delay:
            self._stopping.wait(delay)

        if fault is not None and not fault.after_accept:
            call.fault = fault.describe()
            if fault.kind == FAULT_RESET:
                h.drop()
            elif fault.kind == FAULT_TIMEOUT:
                self._stopping.wait(self.timeout_seconds)
                h.drop()
            else:
                self._finish(h, call, self._fault_answer(fault))
            return

        try:
            with self._lock:   # a test's turn does not end while one of its calls changes what is recorded
                late = turn != self._turn
                answer = self._stray(call, turn, late=True) if late else handler(_Request(call, params))
        except Exception as exc:  # a bug in the fake must show, not hang the client
            self.errors.append(traceback.format_exc())
            answer = _Answer(500, {"message": f"FakeLineApi error: {exc!r}"})
        if late:
            self._finish(h, call, answer)
            return

        if fault is None or answer.status >= 300:
            # Refused as LINE would refuse it (quota, token, body): nothing was accepted, so no fault
            # "after acceptance" can happen; the real answer goes back.
            self._finish(h, call, answer)
            return
        call.fault = fault.describe()
        if fault.kind == FAULT_RESET:
            h.drop()
        elif fault.kind == FAULT_TIMEOUT:
            self._stopping.wait(self.timeout_seconds)
            self._finish(h, call, answer)
        else:
            self._finish(h, call, self._fault_answer(fault))

    def _check_auth(self, call: Call) -> _Answer | None:
        auth = call.headers.get("authorization", "")
        token = auth[7:].strip() if auth[:7].lower() == "bearer " else ""
        if not token or (self.access_token is not None and token != self.access_token):
            return _Answer(401, {"message": MSG_AUTH_FAILED})
        return None

    def _route(self, call: Call):
        for method, pattern, handler in self._routes:
            m = pattern.match(call.path)
            if m and method == call.method:
                return handler, m.groupdict()
        return None, {}

    def _finish(self, h: _Handler, call: Call, answer: _Answer) -> None:
        call.status = answer.status
        call.response = answer.body if answer.content is None else None
        call.answered_at = time.time()
        h.send_answer(answer, call.request_id)

    # ------------------------------------------------------------------ sending

    @staticmethod
    def _new_sent(messages: list) -> list[dict]:
        out = []
        for m in messages:
            item = {"id": str(random.randrange(10**17, 10**18))}
            if m.get("type") in ("text", "textV2", "sticker", "image", "video", "audio", "location"):
                item["quoteToken"] = secrets.token_urlsafe(96)
            out.append(item)
        return out

    def _cost_of(self, chat_id: str) -> int:
        if chat_id[:1] in ("C", "R"):
            return int(self.group_sizes.get(chat_id, 3))
        return 1

    def _send(self, req: _Request, kind: str, to: Any, recipients: tuple[str, ...], cost: int,
              reply_token: str | None = None) -> _Answer:
        """Shared path for reply/push/multicast/broadcast/narrowcast.  Holds the lock throughout,
        so checks and acceptance are atomic (two racing retries cannot both be accepted)."""
        body = req.json
        if not isinstance(body, dict):
            return _error("The request body could not be parsed as JSON")
        key = req.call.retry_key
        with self._lock:
            if key is not None:
                if kind not in RETRYABLE_KINDS:
                    return _error("X-Line-Retry-Key is not supported by this API")
                if not _UUID_RE.match(key):
                    return _error("The value of X-Line-Retry-Key is invalid. It must be a UUID.")
                if key in self._retry_keys:
                    accepted_id, sent = self._retry_keys[key]
                    conflict: dict[str, Any] = {"message": MSG_RETRY_KEY_ACCEPTED}
                    if sent:
                        conflict["sentMessages"] = sent
                    return _Answer(409, conflict, {"x-line-accepted-request-id": accepted_id})
            details = validate_messages(body.get("messages"))
            if details:
                return _body_errors(details)
            if reply_token is not None:
                if (reply_token in self._used_tokens or reply_token in self._expired_tokens
                        or (self.strict_reply_tokens and reply_token not in self._reply_tokens)):
                    return _error(MSG_INVALID_REPLY_TOKEN)
            if cost and self.quota_limit is not None and self.consumption + cost > self.quota_limit:
                return _Answer(429, {"message": MSG_MONTHLY_LIMIT})
            # accepted
            messages = body["messages"]
            sent = self._new_sent(messages) if kind in ("reply", "push") else []
            if reply_token is not None:
                self._used_tokens.add(reply_token)
                chat = self._reply_tokens.get(reply_token)
                recipients = (chat,) if chat else ()
            if key is not None:
                self._retry_keys[key] = (req.call.request_id, sent)
            self.consumption += cost
            self._deliveries.append(Delivery(
                kind, to, messages, recipients, reply_token, key, req.call.request_id,
                tuple(s["id"] for s in sent), time.time()))
        return _Answer(200, {"sentMessages": sent} if sent else {})

    def _reply(self, req: _Request) -> _Answer:
        body = req.json if isinstance(req.json, dict) else {}
        token = body.get("replyToken")
        if not isinstance(token, str) or not token:
            return _body_errors([{"message": "Must not be empty", "property": "replyToken"}])
        return self._send(req, "reply", token, (), 0, reply_token=token)

    def _push(self, req: _Request) -> _Answer:
        body = req.json if isinstance(req.json, dict) else {}
        to = body.get("to")
        if not isinstance(to, str) or not to:
            return _body_errors([{"message": "Must not be empty", "property": "to"}])
        return self._send(req, "push", to, (to,), self._cost_of(to))

    def _multicast(self, req: _Request) -> _Answer:
        body = req.json if isinstance(req.json, dict) else {}
        to = body.get("to")
        if not isinstance(to, list) or not 1 <= len(to) <= 500:
            return _body_errors([{"message": "Size must be between 1 and 500", "property": "to"}])
        return self._send(req, "multicast", list(to), tuple(to), len(to))

    def _broadcast(self, req: _Request) -> _Answer:
        return self._send(req, "broadcast", None, (), self.followers)

    def _narrowcast(self, req: _Request) -> _Answer:
        body = req.json if isinstance(req.json, dict) else {}
        answer = self._send(req, "narrowcast", body.get("recipient"), (), self.followers)
        return _Answer(202, {}, answer.headers) if answer.status == 200 else answer

    # ------------------------------------------------------------------ other endpoints

    def _profile(self, req: _Request) -> _Answer:
        user_id = req.params["userId"]
        if user_id in self.blocked or not user_id.startswith("U"):
            return _Answer(404, {"message": "Not found"})
        profile = {"displayName": "テスト利用者", "userId": user_id, "language": "ja"}
        profile.update(self.profiles.get(user_id, {}))
        return _Answer(200, profile)

    def _loading(self, req: _Request) -> _Answer:
        body = req.json if isinstance(req.json, dict) else {}
        chat_id = body.get("chatId")
        seconds = body.get("loadingSeconds", 20)
        details = []
        if not isinstance(chat_id, str) or not chat_id.startswith("U"):
            details.append({"message": "Must be a user ID (one-on-one chats only)", "property": "chatId"})
        if not isinstance(seconds, int) or seconds % 5 or not 5 <= seconds <= 60:
            details.append({"message": "Must be a multiple of 5 between 5 and 60", "property": "loadingSeconds"})
        if details:
            return _body_errors(details)
        with self._lock:
            self.loading.append({"chatId": chat_id, "loadingSeconds": seconds, "at": time.time()})
        return _Answer(202, {})

    def _quota(self, req: _Request) -> _Answer:
        if self.quota_limit is None:
            return _Answer(200, {"type": "none"})
        return _Answer(200, {"type": "limited", "value": self.quota_limit})

    def _consumption(self, req: _Request) -> _Answer:
        with self._lock:
            return _Answer(200, {"totalUsage": self.consumption})

    def _bot_info(self, req: _Request) -> _Answer:
        return _Answer(200, {"userId": self.bot_user_id, "basicId": "@000fake", "displayName": "madoguchi (fake)",
                             "chatMode": "bot", "markAsReadMode": "manual"})

    def _richmenu_create(self, req: _Request) -> _Answer:
        menu = req.json
        if not isinstance(menu, dict):
            return _error("The request body could not be parsed as JSON")
        details = []
        for prop in ("size", "selected", "name", "chatBarText", "areas"):
            if prop not in menu:
                details.append({"message": "Must not be null", "property": prop})
        if isinstance(menu.get("chatBarText"), str) and len(menu["chatBarText"]) > 14:
            details.append({"message": "Length must be between 0 and 14", "property": "chatBarText"})
        if isinstance(menu.get("areas"), list) and len(menu["areas"]) > 20:
            details.append({"message": "Size must be between 0 and 20", "property": "areas"})
        if details:
            return _body_errors(details)
        menu_id = "richmenu-" + secrets.token_hex(16)
        with self._lock:
            self.rich_menus[menu_id] = {"menu": menu, "image": None, "content_type": None}
        return _Answer(200, {"richMenuId": menu_id})

    def _richmenu_content(self, req: _Request) -> _Answer:
        menu_id = req.params["richMenuId"]
        ctype = (req.call.headers.get("content-type") or "").split(";")[0].strip().lower()
        raw = req.call.raw
        with self._lock:
            entry = self.rich_menus.get(menu_id)
            if entry is None:
                return _Answer(404, {"message": "Not found"})
            if ctype not in ("image/png", "image/jpeg"):
                return _Answer(415, {"message": "Unsupported Media Type: use image/jpeg or image/png"})
            magic_ok = raw.startswith(b"\x89PNG\r\n\x1a\n") if ctype == "image/png" else raw.startswith(b"\xff\xd8")
            if not magic_ok:
                return _error("The image could not be read as " + ctype)
            if len(raw) > 1024 * 1024:
                return _error("The image must be 1 MB or less")
            if entry["image"] is not None:
                return _error("An image has already been uploaded to the richmenu")
            entry["image"] = raw
            entry["content_type"] = ctype
        return _Answer(200, {})

    def _richmenu_default(self, req: _Request) -> _Answer:
        menu_id = req.params["richMenuId"]
        with self._lock:
            entry = self.rich_menus.get(menu_id)
            if entry is None:
                return _Answer(404, {"message": "Not found"})
            if entry["image"] is None:
                return _error("An image has not been uploaded to the richmenu")
            self.default_rich_menu = menu_id
        return _Answer(200, {})

    def _richmenu_delete(self, req: _Request) -> _Answer:
        menu_id = req.params["richMenuId"]
        with self._lock:
            if self.rich_menus.pop(menu_id, None) is None:
                return _Answer(404, {"message": "Not found"})
            if self.default_rich_menu == menu_id:
                self.default_rich_menu = None
        return _Answer(200, {})

    def _richmenu_list(self, req: _Request) -> _Answer:
        with self._lock:
            menus = [dict(e["menu"], richMenuId=i) for i, e in self.rich_menus.items()]
        return _Answer(200, {"richmenus": menus})

    def _group_leave(self, req: _Request) -> _Answer:
        with self._lock:
            self.left_groups.append(req.params["groupId"])
        return _Answer(200, {})

    def _group_count(self, req: _Request) -> _Answer:
        return _Answer(200, {"count": int(self.group_sizes.get(req.params["groupId"], 3))})
