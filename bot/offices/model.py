"""The office profile's contract: the values a profile may hold, and the frozen dataclasses the app reads.

Only the standard library: this module must not import flask, linebot or dialogs.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import date, time
from pathlib import Path
from typing import Any

OFFICE_ID = re.compile(r"^[a-z][a-z0-9_]*$")
OFFICE_ID_MAX = 32   # every table keeps the office id in a String(32) column
# A terms version's summary of what changed rides in the consent prompt and the notice, each one LINE message:
# at most this many characters, whether published with `terms publish` or shipped in a profile.
TERMS_SUMMARY_MAX = 500
ITEM_ID = re.compile(r"^[a-z][a-z0-9_]*$")
ANSWERS = ("yes", "no", "unsure")
NOTICE_KINDS = ("business_day_before", "business_days_before")
NOTICE_DAYS = {"business_day_before": "calendar_days", "business_days_before": "business_days"}   # kind -> its key
CANCEL_ROUTES = ("phone", "email")
FORM_FIELDS = (
    "name", "name_kana", "seeker_number", "birth_date", "phone", "category", "consultation",
    "companion", "companion_detail", "mypage_email_confirmed",
)
DEFAULT_RETENTION = {
    "personal_details_days_after_session": 90,
    "closed_requests_days": 30,
    "drafts_days": 1,
    "dedupe_days": 7,
    "outbox_days": 30,   # messages LINE has taken or refused for good (the problems page shows 30 days)
    # The LINE user id of a user who unfollowed (blocked) the account, counted from their last event, once none
    # of their bookings is open with its session ahead or holds details: then replaced by a pseudonym
    # (bot/staff/jobs.py).
    "unfollowed_days": 30,
}
DEFAULT_STAFF_CARDS = {"new_request": True, "withdrawn": True, "cancelled": True, "expired": True}
DEFAULT_REMINDERS = {"user_day_before": True}
DEFAULT_QUOTA_RESERVE = 20
UNCONFIRMED = "to be confirmed by the office"
TRANSLATED_LANGUAGES = ("en", "easy")   # chat languages besides the office's Japanese


class ProfileError(ValueError):
    """A profile that cannot be used: names the file and the field.

    `problems` holds one line per problem ("<file>: <field path>: <what is wrong>"); str() joins them.
    """

    def __init__(self, *problems: str) -> None:
        super().__init__("\n".join(problems))
        self.problems: tuple[str, ...] = problems


END_OF_DAY = "24:00"   # push_hours.end may say "until midnight"


@dataclass(frozen=True)
class PushHours:
    """When LINE pushes may reach people (Asia/Tokyo): a push that is not urgent waits for `start` outside
    [start, end) (bot/services/push_hours.py). A message a session depends on (the office cancels it, or confirms
    it) is urgent when waiting for `start` would leave less than `urgent_notice_hours` before the session.
    The staff group's cards go on the office's business days only (staff are off on closed days, and nothing can
    be decided or prepared there until the office opens), unless `staff_cards_on_closed_days`."""
    start: time = time(8, 0)
    end: time = time(21, 0)
    urgent_notice_hours: int = 4
    staff_cards_on_closed_days: bool = False


@dataclass(frozen=True)
class Contact:
    value: str | None          # e.g. "0134-32-8689"; None when unknown
    note: str | None = None    # how to use it, e.g. "部門コードは41#です"
    confirmed: bool = False    # False: to be confirmed by the office; never shown to users


@dataclass(frozen=True)
class Redirect:
    """A specialised window for a topic not handled online."""
    topic: str                 # e.g. 新規学卒者の相談
    window: str                # e.g. ハローワーク小樽 学卒担当窓口
    phone: Contact = field(default_factory=lambda: Contact(None))


@dataclass(frozen=True)
class Question:
    id: str
    text: str                  # the question, polite Japanese
    choices: tuple[str, ...]   # subset of ("yes", "no", "unsure")
    passing: tuple[str, ...]   # answers that pass
    detail: tuple[str, ...] = ()   # bullet lines listed under the question (e.g. the five categories)
    on_fail: str = ""          # kind explanation when the answer does not pass
    on_unsure: str = ""        # explanation for わからない
    redirects: tuple[Redirect, ...] = ()  # shown on fail (Otaru's not-handled topics)
    record: bool = True        # False: the answer is never stored (Otaru's combined topic question)


@dataclass(frozen=True)
class ChecklistItem:
    id: str
    text: str                  # what must be true, as a yes/no question
    fix: str                   # what to do when the answer is いいえ


@dataclass(frozen=True)
class Category:
    """One answer to the details form's `category` field: which of the office's target groups applies."""
    id: str                    # the form value, e.g. graduate
    text: str                  # as the form shows it, the office's wording
    staff_label: str = ""      # shorter, for the dashboard and the CSV export (else `text`)
    sensitive: bool = False    # 要配慮個人情報 (disability, illness): marked on the form


@dataclass(frozen=True)
class NoticeRule:
    """When booking closes for a slot.

    kind "business_day_before": deadline at `deadline` on the last business day on or before
    (session date - calendar_days). Sakata: calendar_days=3 → Friday 17:00 for a Monday.
    Otaru: calendar_days=1 → previous business day 17:00.
    kind "business_days_before": deadline at `deadline` on the business day `business_days` business days
    before the session date ("two business days before": business_days=2 → Thursday for a Monday, Wednesday
    when Thursday or Friday is a holiday).
    """
    kind: str
    calendar_days: int
    deadline: time
    confirmed: bool = False
    business_days: int = 0

    @property
    def days(self) -> int:
        """The kind's count of days (calendar or business): 0 is the session's own day."""
        return self.business_days if self.kind == "business_days_before" else self.calendar_days


@dataclass(frozen=True)
class Schedule:
    weekdays: tuple[int, ...]        # Monday=0
    starts: tuple[time, ...]
    duration_minutes: int = 30
    duration_approximate: bool = False  # the documents say 「30分程度」 (about), not 「30分」 (no extension)
    capacity: int = 1
    closures: tuple[date, ...] = ()  # office closure dates beyond the national calendar


@dataclass(frozen=True)
class Booking:
    notice: NoticeRule
    window_weeks: int = 8
    hold_minutes: int = 15
    usage_limit_note: str = ""       # e.g. 利用回数に制限を設ける場合があります
    max_open_per_user: int = 1


@dataclass(frozen=True)
class TermsArticle:
    """An article of the office's terms and its paragraph, if any (Sakata's article 12, paragraph 1); the templates
    write it in each language."""
    number: int
    paragraph: int | None = None


@dataclass(frozen=True)
class Cancellation:
    in_chat: bool                    # may a confirmed booking be cancelled in chat?
    in_chat_until_days_before: int   # 1 = until the previous day
    routes: tuple[str, ...]          # "phone", "email"
    same_day_routes: tuple[str, ...]
    note: str = ""                   # the office's own rule in words
    confirmed: bool = False
    # The article of the terms under which the office may stop or refuse online counselling for the person's
    # conduct (threats, abusive language, use other than finding work): named in the message that says a booking
    # was stopped under the terms (None: the message says "under the terms" only).
    conduct_article: TermsArticle | None = None


@dataclass(frozen=True)
class VideoApp:
    name: str                        # Zoom, or the office's wording
    account_needed: bool | None = None
    terms_name: str | None = None    # e.g. ZOOM サービス規約
    terms_url: str | None = None
    confirmed: bool = True           # the name (False: the office has not named its app yet)
    terms_url_confirmed: bool = False  # False: a URL the office's documents do not print


@dataclass(frozen=True)
class TermsSpec:
    version: str                     # YYYY-MM-DD
    file: str | None                 # <office>/<YYYY-MM-DD>.md, None when known by date only
    summary: str | None = None
    path: Path | None = None         # where `file` was found: the profiles' own terms/ folder, else templates/terms/


@dataclass(frozen=True)
class Office:
    id: str
    enabled: bool
    name: str                        # ハローワーク酒田
    formal_name: str                 # 酒田公共職業安定所
    controller: str                  # 酒田公共職業安定所長 (data controller on the privacy notice)
    phone: Contact
    email: Contact
    hours: Contact
    other_routes: tuple[str, ...]    # e.g. ("ハローワークの窓口へお越しいただく",)
    video_app: VideoApp
    eligibility: tuple[Question, ...]
    checklist: tuple[ChecklistItem, ...]
    consent_summary: tuple[str, ...]  # 要約 bullet lines shown with 同意する / 同意しない
    notices: tuple[str, ...]          # what the user must know (no recording, no extension, ...)
    after_request: str                # what happens after a request, in the office's terms
    schedule: Schedule
    booking: Booking
    cancellation: Cancellation
    no_show_minutes: int
    form_fields: tuple[str, ...]
    terms: tuple[TermsSpec, ...]
    court: str
    documents_route: str | None = None   # how to send documents (Otaru: e-mail), None if none
    # The title of the office's own notice whose rules the 要約 gives beside the terms' (Otaru: 「オンライン職業
    # 相談のお知らせ」), so that the chat does not present them as the terms'; None: the 要約 is of the terms alone.
    summary_notice: str | None = None
    # The terms' own rule on changes to them (both offices: using the service after a change is agreeing to it),
    # said where a new version is announced or declined while a booking stays; None: nothing said.
    terms_changes: str | None = None
    categories: tuple[Category, ...] = ()   # the form's `category` choices (form_fields has `category`)
    # What the user must remember on the session itself (no recording, a private room...): said again in the
    # day-before reminder, which does not repeat the confirmation's `notices`.
    day_before_notices: tuple[str, ...] = ()
    retention: dict = field(default_factory=dict)
    staff_cards: dict = field(default_factory=dict)
    reminders: dict = field(default_factory=dict)
    push_hours: PushHours = field(default_factory=PushHours)
    # Messages of the month's quota kept for the job seekers: with fewer left, staff-group cards (each counts once
    # per member; the dashboard shows the same) are not pushed (bot/quota.py). 0: no reserve.
    quota_reserve: int = DEFAULT_QUOTA_RESERVE
    handoff: dict = field(default_factory=dict)   # staff wording after a decision (bot/staff/handoff.py)
    source_file: str = ""
    translations: dict = field(default_factory=dict, repr=False)  # language -> validated overlay

    def retention_rules(self) -> dict[str, int]:
        """The retention rules in force: the profile's `retention`, the defaults for what it leaves out."""
        return {**DEFAULT_RETENTION, **(self.retention or {})}

    @property
    def current_terms(self) -> TermsSpec:
        return max(self.terms, key=lambda t: t.version)

    def localized(self, language: str) -> "Office":
        """This office with its wording in `language` where the profile translates it (else Japanese)."""
        overlay = self.translations.get(language)
        return _apply_translation(self, overlay) if overlay else self

    def category_labels(self) -> dict[str, str]:
        """Each category's id -> how staff read it (the dashboard, the export)."""
        return {c.id: c.staff_label or c.text for c in self.categories}

    def step(self, step_id: str) -> "Question | ChecklistItem | None":
        """The eligibility question or checklist item with this id."""
        return next((s for s in (*self.eligibility, *self.checklist) if s.id == step_id), None)


def _apply_translation(office: Office, overlay: dict[str, Any]) -> Office:
    """The office with the overlay's texts in place of the Japanese ones (everything else unchanged)."""
    def question(q: Question) -> Question:
        t = overlay.get("eligibility", {}).get(q.id)
        if not t:
            return q
        redirects = tuple(replace(r, **tr) for r, tr in zip(q.redirects, t.get("redirects", ()))) or q.redirects
        return replace(q, text=t["text"], detail=t.get("detail", q.detail), on_fail=t.get("on_fail", q.on_fail),
                       on_unsure=t.get("on_unsure", q.on_unsure), redirects=redirects)

    def item(i: ChecklistItem) -> ChecklistItem:
        t = overlay.get("checklist", {}).get(i.id)
        return replace(i, **t) if t else i

    def category(c: Category) -> Category:
        t = overlay.get("categories", {}).get(c.id)
        return replace(c, **t) if t else c

    contacts = overlay.get("contacts", {})
    changes: dict[str, Any] = {key: overlay[key] for key in ("name", "formal_name", "controller", "after_request",
                                                              "other_routes", "consent_summary", "notices",
                                                              "day_before_notices", "documents_route",
                                                              "terms_changes", "summary_notice")
                               if key in overlay}
    changes.update({key: replace(getattr(office, key), **contacts[key]) for key in contacts})
    for key in ("video_app", "booking", "cancellation"):
        if key in overlay:
            changes[key] = replace(getattr(office, key), **overlay[key])
    return replace(office, eligibility=tuple(question(q) for q in office.eligibility),
                   checklist=tuple(item(i) for i in office.checklist),
                   categories=tuple(category(c) for c in office.categories), translations={}, **changes)
