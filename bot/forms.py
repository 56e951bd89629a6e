"""The details form, `/form/<token>`: input -> confirmation -> completion, on madoguchi's own pages.

Personal details are never asked in chat: the chat links this form with a signed token bound to one
conversation and the nonce of its slot hold; the link works while that hold lives (each page view
keeps it alive, up to a limit). Pages work without JavaScript (LINE's in-app browser included), each
input and confirmation page holds exactly one POST form with a `csrf_token`, and every page is sent
with strict security headers and `Cache-Control: no-store`.

Views are thin: they read the token, check CSRF, and hand the work to bot.services.validation and
bot.services.requests inside one transaction. Logs carry ids and outcomes only, never values.
"""
from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass, replace
from datetime import date, datetime
from functools import lru_cache
from typing import Any, Mapping
from urllib.parse import urlsplit

import yaml
from flask import Blueprint, current_app, g, redirect, render_template, request, session, url_for
from markupsafe import Markup

from bot import dispatch
from bot.render import LANGUAGES, TEMPLATES_DIR, local_date
from bot.services import holds, requests, terms, validation
from bot.services import slots as slotsvc
from bot.textfmt import mark_japanese

log = logging.getLogger(__name__)
bp = Blueprint("forms", __name__)

CSRF_SESSION_KEY = "form_csrf"
# On top of every page's headers (bot/security_headers.py: the policy with no script and no framing —
# in development a same-origin frame, for the simulator's in-app browser): never cached, never a referrer.
SECURITY_HEADERS = {
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
# The kind page for each way a link cannot be used, and its HTTP status.
PROBLEM_STATUS = {
    "forged": 404, "refused": 403, "expired": 410, "superseded": 410, "csrf": 400,
    "full": 409, "closed": 409, "blocked": 403, "limit": 409, "notice_passed": 410, "unavailable": 503,
    "waiting": 409, "applied": 409,
}
# The kinds of page after which the user goes on by choosing another slot in the chat: after a post, the page
# keeps what was typed, to send it again once they have (`_cannot`, `resume`). Not `limit` or `blocked`: another
# slot does not help there.
CARRIED = frozenset({"full", "closed", "expired", "notice_passed"})
# The hidden field of such a page saying when it was sent (the app's clock, ISO 8601): a request the conversation
# made from another link since then is what the page's button finds, not a slot to go on to (`resume`).
KEPT_AT = "kept_at"
# The languages whose form takes the name's reading in the Latin alphabet too, and leaves it optional: a foreign job
# seeker may have no katakana reading, and staff find the person by the job seeker number (`validation`).
READING_IN_LATIN = frozenset({"en"})


@dataclass(frozen=True)
class Link:
    """A form link whose signature checked out."""
    token: str
    office: Any
    conversation_id: int
    nonce: str
    language: str = "ja"       # the conversation's chat language: the pages follow it
    # A page of this link sent from the browser that opened it, after the link outlived its day (left open
    # overnight): what was typed is kept and carried on to a slot chosen since, but its own slot is never
    # taken again once the hold ran out (SECURITY.md: "never after a day").
    outlived: bool = False


# -- texts (templates/forms/*.yaml) ------------------------------------------------------------------

@lru_cache(maxsize=None)
def form_texts(language: str = "ja") -> dict[str, Any]:
    """Field labels, hints and choices, the error messages and the pages' words, for the form's language
    (`fields.<language>.yaml`, `errors.<language>.yaml`, `page.<language>.yaml`; Japanese where one is missing)."""
    def read(name: str) -> dict[str, Any]:
        path = TEMPLATES_DIR / "forms" / f"{name}.{language}.yaml"
        if not path.exists():
            path = TEMPLATES_DIR / "forms" / f"{name}.ja.yaml"
        return yaml.safe_load(path.read_text(encoding="utf-8"))

    return {**read("fields"), "errors": read("errors"), "page": read("page")}


@bp.app_template_filter("fill")
def fill(words: str, **values: Any) -> Markup:
    """Put values into a page's words (`{name}` placeholders): the words are ours, the values are escaped. With
    no values, the words as they are written (an English page's words mark their Japanese <span lang="ja">)."""
    return Markup(words).format(**values)


def slot_text(start, language: str) -> Markup:
    """A slot as the form's pages show it: the fixed slot label, with the date written out beside it as the
    language's `slot` wording says (standard Japanese: the label alone). The label is Japanese on every page
    (`12/7(月) 14:00`): on a page in another language it is marked so (WCAG 3.1.2)."""
    words = form_texts(language)["page"]
    label = slotsvc.slot_label(start)
    if words["lang"] != "ja":
        label = Markup('<span lang="ja">{}</span>').format(label)
    return Markup(words["slot"]).format(label=label, date=local_date(start, language))


def error_messages(errors: Mapping[str, validation.FieldError], language: str = "ja") -> dict[str, Markup]:
    """Each field's error as words: the field's own wording for the code if it has one, else the general one
    (our words, which may mark a Japanese word; the values escaped, their Japanese marked on a page in another
    language: the era 平成 in English)."""
    texts = form_texts(language)
    table, page_lang = texts["errors"], texts["page"]["lang"]
    out = {}
    for field, error in errors.items():
        wording = table.get("fields", {}).get(field, {}).get(error.code) or table["codes"][error.code]
        params = {name: mark_japanese(value, page_lang) if isinstance(value, str) else value
                  for name, value in error.params.items()}
        out[field] = Markup(wording).format(**params)
    return out


# -- the link and CSRF --------------------------------------------------------------------------------

def _runtime():
    return current_app.extensions["madoguchi"]


def _link(rt, token: str, data: Mapping[str, Any]) -> Link | None:
    """The link a verified token names, or None when its contents are not a form link."""
    office = rt.enabled_office(str(data.get("o", "")))
    conversation_id, nonce = data.get("c"), data.get("n")
    if office is None or not isinstance(conversation_id, int) or not isinstance(nonce, str) or not nonce:
        return None
    return Link(token=token, office=office, conversation_id=conversation_id, nonce=nonce)


def _csrf_expected(nonce: str, browser_secret: str) -> str:
    key = _runtime().config.secret_key.encode("utf-8")
    return hmac.new(key, f"form-csrf|{browser_secret}|{nonce}".encode("utf-8"), hashlib.sha256).hexdigest()


def csrf_token(nonce: str) -> str:
    """The CSRF field's value: bound to this browser (a random value in its session) and to the link."""
    browser_secret = session.get(CSRF_SESSION_KEY)
    if not browser_secret:
        browser_secret = secrets.token_urlsafe(32)
        session[CSRF_SESSION_KEY] = browser_secret
    return _csrf_expected(nonce, browser_secret)


def csrf_ok(nonce: str) -> bool:
    browser_secret = session.get(CSRF_SESSION_KEY)
    sent = request.form.get("csrf_token", "")
    # As bytes: compare_digest refuses a str that is not ASCII (a TypeError, a 500) instead of saying no.
    return bool(browser_secret) and bool(sent) and hmac.compare_digest(
        _csrf_expected(nonce, browser_secret).encode(), sent.encode())


@bp.after_request
def _security_headers(response):
    for name, value in SECURITY_HEADERS.items():
        response.headers[name] = value
    return response


# -- pages --------------------------------------------------------------------------------------------

@bp.errorhandler(500)
def _unavailable(_error):
    """A page failed under the user (most often the database restarting): say so in their language, with one
    button that sends the same again — what was typed comes back as it was sent, CSRF token included, and
    sending twice still makes one request (`requests.submit`). A page opened (GET) is offered again."""
    link = g.get("form_link")
    resend = list(request.form.items(multi=True)) if request.method == "POST" else None
    return _problem("unavailable", link.office if link else None, link.language if link else "ja",
                    reopen=request.path, resend=resend)


def _problem(kind: str, office=None, language: str = "ja", slot_start=None, reopen: str | None = None,
             resend: list[tuple[str, str]] | None = None, newest: Markup | None = None, carry: bool = False):
    """The kind page for a link that cannot be used; `slot_start` names the slot whose deadline passed,
    `reopen` the input page to open again (one tap instead of finding the link in the chat), `resend` the
    fields to post to it again, `newest` the slot the conversation holds now (a superseded link), `carry`:
    `resend` waits on the page until another slot is chosen in the chat (`_cannot`)."""
    rt = _runtime()
    basic_id = rt.config.basic_id(office.id) if office is not None else None
    log.info("form page=problem kind=%s office=%s", kind, office.id if office is not None else "-")
    late = None
    if kind == "notice_passed" and office is not None and slot_start is not None:
        late = {"slot": slot_text(slot_start, language),
                "deadline": slot_text(slotsvc.booking_deadline(office, slot_start), language)}
    office = office.localized(language) if office is not None else None
    return render_template("forms/problem.html", kind=kind, office=office, basic_id=basic_id, late=late,
                           reopen=reopen, resend=resend, newest=newest, carry=carry,
                           text=form_texts(language)), PROBLEM_STATUS[kind]


def _csrf_problem(link: Link):
    """A post this browser's session does not vouch for (its cookie lost or blocked): the page to try again,
    with the input page one tap away — opening it sets a fresh token."""
    return _problem("csrf", link.office, link.language, reopen=url_for("forms.input_page", token=link.token))


def _typed(link: Link) -> list[tuple[str, str]]:
    """The form's fields as this post sent them, to be posted again from the page answering it (kept nowhere
    else)."""
    return [(name, request.form[name]) for name in link.office.form_fields if name in request.form]


def _cannot(link: Link, kind: str, slot_start=None, waiting: bool = False):
    """The kind page for a link that cannot be used. After a post, where choosing another slot in the chat lets
    the user go on (CARRIED), the page keeps what was typed — hidden fields with this link's CSRF token, stored
    nowhere — and sends it back here (`resume`) once they have: the conversation then holds another slot and
    `_superseded` goes on to its check with it. `waiting`: that post came before another slot was chosen."""
    if request.method != "POST" or kind not in CARRIED:
        return _problem(kind, link.office, link.language, slot_start)
    return _problem("waiting" if waiting else kind, link.office, link.language, slot_start,
                    reopen=url_for("forms.resume", token=link.token), carry=True,
                    resend=[*_typed(link), (KEPT_AT, _runtime().clock.now().isoformat()),
                            ("csrf_token", csrf_token(link.nonce))])


def _superseded(link: Link, waiting: bool = False):
    """A link whose conversation has held another slot since (chosen in the chat): the page names that slot
    and goes on to its input page in one tap — when this page was sent (a form left open in a browser while
    the chat moved on), with what was typed and this browser's CSRF token for that link, so nothing is lost.
    That slot's hold ran out meanwhile: sent, the page keeps what was typed until another is chosen. From a
    kept page's button (`waiting`, `resume`), what was typed goes straight on to the check of the slot chosen
    since (`_go_on`), its hold revived if it ran out and the slot is still free (as for a form sent late)."""
    rt = _runtime()
    with rt.db.reading() as s:
        hold = holds.live(s, link.conversation_id, rt.clock.now())
        if hold is None and waiting:
            hold = holds.chosen_since(s, link.conversation_id, link.nonce)
    if hold is None and request.method == "POST":
        return _cannot(link, "expired", waiting=waiting)
    if hold is None:
        return _problem("superseded", link.office, link.language)
    newest = urlsplit(rt.form_url(link.office.id, link.conversation_id, hold.token_nonce)).path
    if waiting:
        # The button said another slot was chosen: straight on to that slot's check, not a page to tap again.
        return _go_on(replace(link, token=newest.rsplit("/", 1)[-1], nonce=hold.token_nonce, outlived=False))
    resend = None
    if request.method == "POST":
        resend = [*_typed(link), ("csrf_token", csrf_token(hold.token_nonce))]
    return _problem("superseded", link.office, link.language, reopen=newest, resend=resend,
                    newest=slot_text(hold.slot_start, link.language))


def _go_on(newer: Link):
    """What was typed on a kept page, checked for the slot chosen since in the chat (`newer`, the link the chat
    sent for it; this browser's CSRF token for it goes into the page): its confirmation page, its input page
    with the errors, or — that slot gone too — its own page keeping what was typed."""
    held, answer = _open_or_answer(newer, revive=True)
    if answer is not None:
        return answer
    return _checked(newer, held)


@dataclass(frozen=True)
class _Held:
    """What the input and confirmation pages say about the held slot."""
    label: str
    expires_at: Any
    deadline: str | None  # the slot's booking deadline, when it may come while the form is open
    terms_version: str | None = None  # a terms version in force the user has not consented to yet


def _page_vars(link: Link, held: _Held) -> dict[str, Any]:
    office = link.office.localized(link.language)
    return {
        "office": office, "fields": office.form_fields, "text": form_texts(link.language), "slot_text": held.label,
        "expires_at": held.expires_at, "deadline": held.deadline, "csrf_token": csrf_token(link.nonce),
        "terms_version": held.terms_version,
        # The date that version applies from (its id), written as the page's language writes dates.
        "terms_from": local_date(held.terms_version, link.language) if held.terms_version else None,
        # The office's own `category` choices: id -> its wording, and the ids that are 要配慮個人情報.
        "categories": {c.id: c.text for c in office.categories},
        "sensitive": [c.id for c in office.categories if c.sensitive],
        "companions": validation.COMPANIONS, "retention": office.retention,
        "reading_required": link.language not in READING_IN_LATIN,
    }


def _open(link: Link, revive: bool = False):
    """Check the link in a short transaction, keeping the hold alive; (access, what the pages say of it).

    A slot whose booking deadline passed, or which staff took out of online booking, while the user was on
    the form is given back at once: no request can be made for it, so the chat offers the slots again.
    `revive` (the input being sent): a hold that ran out while the user typed is held again if the slot is
    still free (`requests.form_access`).
    """
    rt = _runtime()
    office = link.office
    with rt.db.transaction() as s:
        now = rt.clock.now()
        access = requests.form_access(s, office, link.conversation_id, link.nonce, now, lock=True,
                                      revive=revive and not link.outlived)
        if access.kind in ("notice_passed", "closed"):
            holds.release(s, access.conversation)
        if access.kind != "open":
            return access, None
        holds.extend(s, office, access.hold, now)
        deadline = slotsvc.booking_deadline(office, access.slot_start)
        held = _Held(label=slot_text(access.slot_start, link.language), expires_at=access.hold.expires_at,
                     deadline=slot_text(deadline, link.language)
                     if deadline <= holds.latest_expiry(office, access.hold) else None,
                     terms_version=terms.awaiting_consent(s, office.id, link.conversation_id, now.date()))
    return access, held


def _input_page(link: Link, held: _Held, values: Mapping[str, Any], errors: Mapping[str, str]):
    return render_template("forms/input.html", **_page_vars(link, held), values=values,
                           errors=errors, action=url_for("forms.input_page", token=link.token))


def _resolve(token: str):
    """The link of a token, or the page to answer with instead (a genuine link older than a link lives:
    `_old_link`)."""
    rt = _runtime()
    data = rt.read_form_token(token)
    old = data is None
    if old:
        data = rt.read_form_token(token, max_age=None)
    link = _link(rt, token, data) if data is not None else None
    if link is None:
        return None, _problem("forged")
    # Kept for a page that fails later: the error pages speak the link's language (bot/error_pages.py).
    g.form_link = replace(link, language=_language(rt, link.conversation_id))
    if old and request.method == "POST" and csrf_ok(link.nonce):
        g.form_link = replace(g.form_link, outlived=True)
    elif old:
        return None, _old_link(g.form_link)
    return g.form_link, None


def _old_link(link: Link):
    """A genuine link older than a link lives, tapped again in the chat's history: the request it made (its
    completion page: the user came for the reference, and "choose a date again" would have them book twice),
    else the page saying it can no longer be used, in the chat's language with the way back to the chat."""
    rt = _runtime()
    with rt.db.reading() as s:
        access = requests.form_access(s, link.office, link.conversation_id, link.nonce, rt.clock.now())
    if access.kind != "done" or not access.reference:
        return _problem("applied" if access.kind == "applied" else "expired", link.office, link.language)
    if request.endpoint != "forms.done_page":
        return redirect(url_for("forms.done_page", token=link.token), 303)
    return _completion(link, access)


def _language(rt, conversation_id: int) -> str:
    """The chat language of the link's conversation (the pages speak it too)."""
    with rt.db.reading() as s:
        language = requests.chat_language(s, conversation_id)
    return language if language in LANGUAGES else "ja"


def _open_or_answer(link: Link, revive: bool = False, waiting: bool = False):
    """Open the link for one more page (extending the hold): (what the pages say of the hold, None), or the
    answer to give instead — the completion page when it was already used, a kind problem page when it
    cannot be used (after a post, keeping what was typed where another slot lets the user go on: `_cannot`)."""
    access, held = _open(link, revive)
    if access.kind == "done":
        return None, redirect(url_for("forms.done_page", token=link.token), 303)
    if access.kind == "superseded" or (waiting and access.kind == "expired"):
        # From a kept page (`resume`): the slot chosen since may have run out too (`_superseded`).
        return None, _superseded(link, waiting)
    if access.kind != "open":
        return None, _cannot(link, access.kind, access.slot_start, waiting)
    return held, None


def _back_to_input(link: Link, raw: Mapping[str, str], errors: Mapping[str, str]):
    """The input page again, with what was sent (to correct it), if the link is still open."""
    held, answer = _open_or_answer(link, revive=True)
    if answer is not None:
        return answer
    return _input_page(link, held, raw, errors)


@bp.get("/form/<token>")
def input_page(token: str):
    link, problem = _resolve(token)
    if problem:
        return problem
    held, answer = _open_or_answer(link)
    if answer is not None:
        return answer
    log.info("form page=input office=%s conversation=%s", link.office.id, link.conversation_id)
    return _input_page(link, held, {}, {})


@bp.post("/form/<token>")
def check_input(token: str):
    """Input sent: errors on the input page, or the confirmation page."""
    link, problem = _resolve(token)
    if problem:
        return problem
    if not csrf_ok(link.nonce):
        return _csrf_problem(link)
    held, answer = _open_or_answer(link, revive=True)
    if answer is not None:
        return answer
    return _checked(link, held)


@bp.post("/form/<token>/resume")
def resume(token: str):
    """「日時を選び直したので、この内容で続ける」on a page that kept what was typed (`_cannot`): the check of the
    slot the chat holds now (`_superseded`, `_go_on`), or of the same slot held again (the confirmation page, as
    from the input page); none chosen yet: the page again, still keeping it; a request made since: its
    completion page."""
    link, problem = _resolve(token)
    if problem:
        return problem
    if not csrf_ok(link.nonce):
        return _csrf_problem(link)
    log.info("form page=resume office=%s conversation=%s", link.office.id, link.conversation_id)
    made = _requested_since(link)
    if made is not None:
        return redirect(made, 303)
    held, answer = _open_or_answer(link, revive=True, waiting=True)
    if answer is not None:
        return answer
    return _checked(link, held)


def _requested_since(link: Link) -> str | None:
    """The completion page of a request the conversation made from another link since the page kept what was
    typed (that page sent again from the browser's history after the user went on): the request is made, and
    neither "no new slot chosen yet" nor a slot to request again is the answer. None: nothing made since."""
    try:
        since = datetime.fromisoformat(request.form.get(KEPT_AT, ""))
    except ValueError:
        return None
    if since.tzinfo is None:
        return None
    rt = _runtime()
    with rt.db.reading() as s:
        nonce = requests.submitted_since(s, link.office.id, link.conversation_id, since, other_than=link.nonce)
    if nonce is None:
        return None
    return urlsplit(rt.form_url(link.office.id, link.conversation_id, nonce)).path + "/done"


def _checked(link: Link, held: _Held):
    """The input sent to an open link, checked: errors on the input page, or the confirmation page."""
    result = _validate(link)
    raw = {name: request.form.get(name, "") for name in link.office.form_fields}
    if not result.ok:
        log.info("form page=input office=%s conversation=%s invalid=%s", link.office.id, link.conversation_id,
                 ",".join(sorted(result.errors)))
        return _input_page(link, held, raw, error_messages(result.errors, link.language))
    log.info("form page=confirm office=%s conversation=%s", link.office.id, link.conversation_id)
    return render_template("forms/confirm.html", **_page_vars(link, held), values=result.values,
                           hidden=_hidden_values(result.values), readback=_readback(result.values),
                           action=url_for("forms.submit", token=link.token),
                           edit_action=url_for("forms.edit", token=link.token))


def _validate(link: Link) -> validation.Validated:
    """The form as this post sent it, checked by the office's fields and the rules of the link's language."""
    return validation.validate(link.office.form_fields, request.form, _runtime().clock.now().date(),
                               [c.id for c in link.office.categories],
                               reading_in_latin=link.language in READING_IN_LATIN)


def _hidden_values(values: Mapping[str, Any]) -> dict[str, str]:
    """The checked values as the confirmation form sends them back (checked again on arrival)."""
    return {name: ("yes" if value is True else str(value)) for name, value in values.items()}


def _readback(values: Mapping[str, Any]) -> dict[str, Any]:
    """Values shown differently from how they are stored: the birth date in both calendars."""
    out: dict[str, Any] = {}
    if values.get("birth_date"):
        born = date.fromisoformat(values["birth_date"])
        era = validation.wareki(born)
        out["birth_date"] = {"date": born, "era": era[0].name if era else None, "era_year": era[1] if era else None}
    return out


@bp.post("/form/<token>/confirm")
def submit(token: str):
    """Confirmation sent: create the request (or go back to the input page to correct it)."""
    link, problem = _resolve(token)
    if problem:
        return problem
    if not csrf_ok(link.nonce):
        return _csrf_problem(link)
    rt = _runtime()
    raw = {name: request.form.get(name, "") for name in link.office.form_fields}
    result = _validate(link)
    if not result.ok:
        return _back_to_input(link, raw, error_messages(result.errors, link.language))
    with rt.db.transaction() as s:
        now = rt.clock.now()
        outcome = requests.submit(s, rt, link.office, link.conversation_id, link.nonce, result.values, now,
                                  revive=not link.outlived)
        if outcome.status == "created":
            dispatch.complete_form(s, rt, link.office, link.conversation_id, now)
    log.info("form page=submit office=%s conversation=%s outcome=%s", link.office.id, link.conversation_id,
             outcome.status)
    if outcome.status == "duplicate" and outcome.differs:   # another tab's request went first: say so
        return _done(link, not_sent=True)
    if outcome.status in ("created", "duplicate"):
        return redirect(url_for("forms.done_page", token=token), 303)
    if outcome.status == "terms_changed":  # consent first, in the chat; what was typed stays on the page
        return _back_to_input(link, raw, {})
    if outcome.status == "superseded":
        return _superseded(link)
    return _cannot(link, outcome.status, outcome.slot_start)


@bp.post("/form/<token>/edit")
def edit(token: str):
    """修正する on the confirmation page: the input page again with the values it carried."""
    link, problem = _resolve(token)
    if problem:
        return problem
    if not csrf_ok(link.nonce):
        return _csrf_problem(link)
    return _back_to_input(link, {name: request.form.get(name, "") for name in link.office.form_fields}, {})


@bp.get("/form/<token>/confirm")
@bp.get("/form/<token>/edit")
@bp.get("/form/<token>/resume")
def confirm_reloaded(token: str):
    """The confirmation, correction or resumption address opened directly (a reload, LINE's "open in
    browser" after 確認, 修正する or 続ける): back to the input page."""
    return redirect(url_for("forms.input_page", token=token), 303)


@bp.get("/form/<token>/done")
def done_page(token: str):
    link, problem = _resolve(token)
    return problem or _done(link)


def _done(link: Link, not_sent: bool = False):
    """The completion page of the link's request; `not_sent`: what this page sent differs from the request made
    before it (another tab), and was not sent."""
    rt = _runtime()
    with rt.db.reading() as s:
        access = requests.form_access(s, link.office, link.conversation_id, link.nonce, rt.clock.now())
    if access.kind == "open":
        return redirect(url_for("forms.input_page", token=link.token), 303)
    if access.kind != "done" or not access.reference:
        return _problem(access.kind if access.kind != "done" else "expired", link.office, link.language,
                        access.slot_start)
    return _completion(link, access, not_sent)


def _completion(link: Link, access: requests.FormAccess, not_sent: bool = False):
    """The completion page of the request a link made."""
    rt = _runtime()
    return render_template("forms/done.html", office=link.office.localized(link.language),
                           reference=access.reference, slot_text=slot_text(access.slot_start, link.language),
                           decided=access.status != "requested", not_sent=not_sent,
                           basic_id=rt.config.basic_id(link.office.id), text=form_texts(link.language))

