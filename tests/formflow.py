"""From 予約 to a held slot through signed webhooks, and the details form over HTTP, as a person would.

    walk_to_slots(user, rt)                 # consent, eligibility, checklist: the slot list is shown
    user.says("1")                           # the first slot: held, the form linked
    url = form_link(fake_line.messages_to(user.user_id))
    page = Page.get(client, url)             # parses the one <form> of the page
    confirm = page.submit(client, valid_answers(office))
    done = confirm.submit(client)            # follows the redirect to the completion page
"""
from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urlsplit

YES, NO = "はい", "いいえ"
ANSWER_WORD = {"yes": YES, "no": NO, "unsure": "わからない"}


# -- the chat ---------------------------------------------------------------------------------------

def walk_to_slots(user, rt) -> None:
    """予約 → 同意する → every eligibility question passed → every checklist item はい."""
    office = rt.offices[user.office]
    assert user.says("予約").status_code == 200
    user.says("同意する")
    for question in office.eligibility:
        user.says(ANSWER_WORD[question.passing[0]])
    for _ in office.checklist:
        user.says(YES)


def hold_directly(rt, office_id: str, user_id: str | None = None, slot_index: int = 0,
                  start: str | None = None) -> tuple[int, str]:
    """A conversation waiting for the form with a held slot (the `slot_index`th of this week, or the one at
    `start`), set up through the services (no chat walk).

    Returns (conversation id, form URL). For tests of the form itself; the end-to-end tests use the chat.
    """
    import uuid

    from bot.models import Conversation
    from bot.services import holds

    office = rt.offices[office_id]
    with rt.db.transaction() as s:
        now = rt.clock.now()
        conv = Conversation(office_id=office_id, line_user_id=user_id or "U" + uuid.uuid4().hex,
                            state="awaiting_form", context={"week": 0}, created_at=now)
        s.add(conv)
        s.flush()
        consent_as_in_chat(s, conv, now)
        start = start or holds.week_page(s, office, now, 0)["slots"][slot_index]["start"]
        held = holds.hold(s, rt, office, conv, start, now)
        assert held["ok"], held
        return conv.id, held["form_url"]


def held_slot(rt, url: str):
    """The start of the slot the conversation of a form link holds (None: it holds none)."""
    from sqlalchemy import select

    from bot.models import SlotHold

    conversation = rt.read_form_token(urlsplit(url).path.split("/")[2])["c"]
    with rt.db.reading() as s:
        return s.scalar(select(SlotHold.slot_start).where(SlotHold.conversation_id == conversation))


def taken_by_another(rt, url: str) -> None:
    """The hold of a form link's conversation runs out (the clock moved past it) and someone else holds its
    slot: the form, sent now, finds the slot full."""
    office_id = rt.read_form_token(urlsplit(url).path.split("/")[2])["o"]
    start = held_slot(rt, url)
    rt.clock.advance(minutes=rt.offices[office_id].booking.hold_minutes + 1)
    hold_directly(rt, office_id, start=start.isoformat())


def hold_first_free(rt, office_id: str, language: str = "ja") -> str:
    """A conversation in `language` holding the first free slot of any week (for a server that lives for a
    whole module, whose early slots fill up); returns the form URL."""
    import uuid

    from bot.models import Conversation

    office = rt.offices[office_id]
    with rt.db.transaction() as s:
        now = rt.clock.now()
        conv = Conversation(office_id=office_id, line_user_id="U" + uuid.uuid4().hex, state="awaiting_form",
                            context={"week": 0}, language=language, created_at=now)
        s.add(conv)
        s.flush()
        consent_as_in_chat(s, conv, now)
        return _hold_first_free(s, rt, office, conv, now)


def another_chosen(rt, url: str) -> str:
    """The conversation of a form link holds the first free slot now, as if chosen in the chat again; returns
    the new form URL."""
    from bot.models import Conversation

    data = rt.read_form_token(urlsplit(url).path.split("/")[2])
    with rt.db.transaction() as s:
        return _hold_first_free(s, rt, rt.offices[data["o"]], s.get(Conversation, data["c"]), rt.clock.now())


def _hold_first_free(session, rt, office, conv, now) -> str:
    from bot.services import holds

    start = next(slot["start"] for week in range(office.booking.window_weeks)
                 for slot in holds.week_page(session, office, now, week)["slots"])
    held = holds.hold(session, rt, office, conv, start, now)
    assert held["ok"], held
    return held["form_url"]


def consent_as_in_chat(session, conv, now) -> None:
    """The consent to the terms in force that the chat records before any slot is held."""
    from bot.services import terms

    version = terms.current_version(session, conv.office_id, now.date())
    terms.record_consent(session, conv, version, now=now, event_id=f"setup-{conv.id}", method="button")


def uris(node: Any) -> list[str]:
    """Every URI action's address under a message (or a list of them)."""
    found: list[str] = []
    if isinstance(node, dict):
        if node.get("type") == "uri" and "uri" in node:
            found.append(node["uri"])
        for value in node.values():
            found.extend(uris(value))
    elif isinstance(node, list):
        for item in node:
            found.extend(uris(item))
    return found


def form_link(messages: list[dict]) -> str:
    """The latest details-form link the chat sent (a URI action whose URL contains /form/)."""
    links = [u for u in uris(messages) if "/form/" in u]
    assert links, "the chat sent no form link"
    return links[-1]


def path_of(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def link_key(url: str) -> str:
    """A form address without its token's time and signature (`/form/<payload>.<time>.<signature>`): a page's
    own link to a hold and the one the chat sent name the same hold, though signed in different seconds."""
    parts = path_of(url).split("/")
    if len(parts) > 2 and parts[1] == "form":
        parts[2] = parts[2].split(".", 1)[0]
    return "/".join(parts)


def quick_reply_data(message: dict) -> dict[str, str]:
    """label -> postback data of a message's quick-reply buttons."""
    items = (message.get("quickReply") or {}).get("items", [])
    return {item["action"]["label"]: item["action"]["data"] for item in items}


# -- the form -----------------------------------------------------------------------------------------

@dataclass
class _Form:
    action: str
    method: str
    fields: dict[str, str] = field(default_factory=dict)   # what the form sends as it stands
    names: set[str] = field(default_factory=set)           # every control's name
    buttons: list[tuple[str | None, str | None]] = field(default_factory=list)


class _FormParser(HTMLParser):
    def __init__(self):
        super().__init__()
        self.forms: list[_Form] = []
        self.links: list[str] = []
        self.ids: set[str] = set()
        self.described: list[str] = []
        self.labels_for: set[str] = set()
        self._textarea: str | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "id" in a:
            self.ids.add(a["id"])
        if a.get("aria-describedby"):
            self.described.extend(a["aria-describedby"].split())
        if tag == "label" and a.get("for"):
            self.labels_for.add(a["for"])
        if tag == "a" and a.get("href"):
            self.links.append(a["href"])
        if tag == "form":
            self.forms.append(_Form(action=a.get("action", ""), method=(a.get("method") or "get").lower()))
        elif tag in ("input", "textarea", "select") and self.forms and a.get("name"):
            self.forms[-1].names.add(a["name"])
        if tag == "input" and self.forms:
            kind = (a.get("type") or "text").lower()
            name = a.get("name")
            if kind == "submit":
                self.forms[-1].buttons.append((name, a.get("value")))
            elif name and (kind not in ("radio", "checkbox") or "checked" in a):
                self.forms[-1].fields[name] = a.get("value", "")
        elif tag == "button" and self.forms:
            self.forms[-1].buttons.append((a.get("name"), a.get("value")))
        elif tag == "textarea" and self.forms:
            self._textarea, self._text = a.get("name"), []

    def handle_data(self, data):
        if self._textarea is not None:
            self._text.append(data)

    def handle_endtag(self, tag):
        if tag == "textarea" and self._textarea is not None and self.forms:
            self.forms[-1].fields[self._textarea] = "".join(self._text)
            self._textarea = None


@dataclass
class Page:
    """An HTML page of the form, parsed: its forms, links and accessibility hooks."""
    response: Any

    @property
    def status(self) -> int:
        return self.response.status_code

    @property
    def html(self) -> str:
        return self.response.get_data(as_text=True)

    @property
    def parsed(self) -> _FormParser:
        parser = _FormParser()
        parser.feed(self.html)
        return parser

    @property
    def forms(self) -> list[_Form]:
        return self.parsed.forms

    @property
    def form(self) -> _Form:
        forms = self.forms
        assert len(forms) == 1, f"expected exactly one form, found {len(forms)}"
        return forms[0]

    @classmethod
    def get(cls, client, url: str) -> "Page":
        return cls(client.get(path_of(url), follow_redirects=True))

    def submit(self, client, answers: dict[str, str] | None = None, *, drop: tuple[str, ...] = (),
               extra: dict[str, str] | None = None) -> "Page":
        """POST the page's one form with its fields, `answers` filled in (no button name), and follow."""
        form = self.form
        assert form.method == "post"
        data = {**form.fields, **(answers or {}), **(extra or {})}
        for name in drop:
            data.pop(name, None)
        return Page(client.post(form.action, data=data, follow_redirects=True))


def valid_answers(office) -> dict[str, str]:
    """A complete, valid set of answers for the office's fields (as a person would type them)."""
    answers = {
        "name": "山田 太郎",
        "name_kana": "やまだ たろう",
        "seeker_number": "01234-56789",
        "birth_date": "平成2年4月1日",
        "phone": "090-1234-5678",
        "category": "uij",
        "consultation": "応募書類の書き方について相談したいです。",
        "companion": "none",
        "companion_detail": "",
        "mypage_email_confirmed": "yes",
    }
    return {name: value for name, value in answers.items() if name in office.form_fields}


def complete_form(client, url: str, answers: dict[str, str]) -> Page:
    """Input -> confirmation -> completion; the completion page."""
    confirmation = Page.get(client, url).submit(client, answers)
    assert confirmation.status == 200, confirmation.html
    done = confirmation.submit(client)
    assert done.status == 200, done.html
    return done
