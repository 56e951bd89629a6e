"""利用規約に基づき中止する: a confirmed booking stopped on the dashboard under the office's terms (Sakata 第12条(1),
Otaru 第10条(1): threats, abusive language, use other than finding work), not for the office's 都合.

Recorded as its own action, the seat released, the user told without the 都合's apology and with the article of
their office's terms (from the profile's `cancellation.conduct_article`); optionally, the same tap stops their
future online booking. Dashboard only: the staff group's buttons cannot do it.
"""
from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from bot.config import DEFAULT_OFFICES_DIR
from bot.models import Conversation, OutboxMessage, SlotClaim
from bot.staff.models import AuditEntry
from bot.notify import GROUP_ACTIONS, staff_postback_data
from bot.offices import load_offices
from bot.offices.model import TermsArticle
from tests.lineuser import StaffGroup, new_group_id
from tests.staffkit import fast_password_hashing, staff, user  # noqa: F401 - fixtures
from tests.staffkit import (
    DETAILS, OTARU_WEDNESDAY, SAKATA_MONDAY, booking, create_staff, login, make_request, post, postback_value,
    run_worker,
)
from tests.test_offices import edit_profile, problems_of

APOLOGY = ("申し訳", "おわび", "ごめんなさい", "sorry", "apologi", "都合", "つごう")
ARTICLES = {"sakata": "第12条(1)", "otaru": "第10条(1)"}   # as the Japanese messages write them
EN_ARTICLES = {"sakata": "Article 12(1)", "otaru": "Article 10(1)"}
GROUP = new_group_id()


@pytest.fixture
def app(make_app):
    """The app with Sakata's staff group configured: its cards' buttons are the other way staff act."""
    return make_app(env={"LINE_STAFF_GROUP_ID_SAKATA": GROUP})


def audit_rows(rt) -> list[AuditEntry]:
    with rt.db.reading() as s:
        return list(s.scalars(select(AuditEntry).order_by(AuditEntry.id)))


def _confirmed(rt, client, office: str = "sakata", user_id: str | None = None, language: str = "ja") -> str:
    kwargs = {"office": office, "start": OTARU_WEDNESDAY} if office == "otaru" else {}
    reference = make_request(rt, user_id=user_id, **kwargs)
    assert post(client, f"/staff/bookings/{reference}/confirm").status_code == 302
    if user_id:
        with rt.db.transaction() as s:
            s.scalar(select(Conversation).where(Conversation.line_user_id == user_id)).language = language
    return reference


def _flash(client, reference: str) -> str:
    return client.get(f"/staff/bookings/{reference}").get_data(as_text=True)


def _seats(rt, reference: str) -> int:
    with rt.db.reading() as s:
        return s.scalar(select(func.count()).select_from(SlotClaim).where(
            SlotClaim.booking_id == booking(rt, reference).id))


def _told(rt, user_id: str) -> list[str]:
    with rt.db.reading() as s:
        return list(s.scalars(select(OutboxMessage.purpose).where(OutboxMessage.recipient == user_id,
                                                                   OutboxMessage.kind == "push")))


def _blocked(rt, user_id: str) -> bool:
    with rt.db.reading() as s:
        return s.scalar(select(Conversation.booking_blocked).where(Conversation.line_user_id == user_id))


# -- the dashboard ----------------------------------------------------------------------------------

def test_a_confirmed_booking_is_stopped_under_the_terms_recorded_and_released(rt, staff, user, fake_line):
    reference = _confirmed(rt, staff, user_id=user.user_id)
    page = _flash(staff, reference)
    # A second tap: the <details> opens what it does, its button (with the CSRF token) does it.
    form = page.split('id="cancel-terms"')[1].split("</details>")[0]
    assert "<summary>利用規約に基づき中止する</summary>" in form and 'name="csrf_token"' in form
    assert "利用規約第12条(1)" in form and 'data-action="cancel_terms"' in form
    assert post(staff, f"/staff/bookings/{reference}/cancel_terms").status_code == 302
    row = booking(rt, reference)
    assert row.status == "cancelled_by_office" and row.closed_at == rt.clock.now() and _seats(rt, reference) == 0
    entries = [e for e in audit_rows(rt) if e.reference == reference]
    assert [e.action for e in entries] == ["confirm", "cancel_by_terms"]
    assert entries[-1].actor == "tanaka" and entries[-1].note is None
    assert _told(rt, user.user_id) == ["outcome_confirmed", "outcome_cancelled_by_terms"]
    assert not _blocked(rt, user.user_id)                       # only when asked
    after = _flash(staff, reference)
    assert "利用規約に基づく中止を記録しました。" in after and "中止（利用規約に基づく）" in after
    assert 'id="cancel-terms"' not in after and 'id="cancel-office"' not in after
    run_worker(rt)
    text = fake_line.texts_to(user.user_id)[-1]
    assert f"受付番号: {reference}" in text and "利用規約第12条(1)に基づき、中止となりました。" in text
    assert not any(word in text for word in APOLOGY), text


def test_the_same_tap_may_also_stop_future_online_booking(rt, staff, user):
    reference = _confirmed(rt, staff, user_id=user.user_id)
    assert 'name="block_user"' in _flash(staff, reference).split('id="cancel-terms"')[1].split("</details>")[0]
    post(staff, f"/staff/bookings/{reference}/cancel_terms", block_user="1")
    assert booking(rt, reference).status == "cancelled_by_office" and _blocked(rt, user.user_id)
    actions = [e.action for e in audit_rows(rt) if e.reference == reference]
    assert actions == ["confirm", "cancel_by_terms", "block_user"]
    # The member is told both were done (the page's 停止中 line alone is easy to miss).
    assert "利用規約に基づく中止を記録し、この方のLINEでのオンライン予約も停止しました。" in _flash(staff, reference)


def test_a_stale_second_tap_changes_nothing(rt, staff, user):
    reference = _confirmed(rt, staff, user_id=user.user_id)
    post(staff, f"/staff/bookings/{reference}/cancel_terms")
    before = (len(audit_rows(rt)), _told(rt, user.user_id))
    post(staff, f"/staff/bookings/{reference}/cancel_terms", block_user="1")   # the page opened before
    assert (len(audit_rows(rt)), _told(rt, user.user_id)) == before and not _blocked(rt, user.user_id)
    assert "この操作はすでに済んでいます" in _flash(staff, reference)


def test_one_kind_of_stop_does_not_pass_for_the_other(rt, staff, user, user_factory):
    """Both end cancelled_by_office: a stale tap of the other button is refused, not reported as done."""
    by_office = _confirmed(rt, staff, user_id=user.user_id)
    post(staff, f"/staff/bookings/{by_office}/cancel_office")
    other = user_factory("sakata")
    by_terms = _confirmed(rt, staff, user_id=other.user_id)
    post(staff, f"/staff/bookings/{by_terms}/cancel_terms")
    before = (len(audit_rows(rt)), _told(rt, user.user_id), _told(rt, other.user_id))
    post(staff, f"/staff/bookings/{by_office}/cancel_terms")
    assert "現在の状況では、この操作はできません。" in _flash(staff, by_office)
    post(staff, f"/staff/bookings/{by_terms}/cancel_office")
    assert "現在の状況では、この操作はできません。" in _flash(staff, by_terms)
    assert (len(audit_rows(rt)), _told(rt, user.user_id), _told(rt, other.user_id)) == before


@pytest.mark.parametrize("status", ["requested", "attended"])
def test_only_a_confirmed_booking_can_be_stopped(rt, staff, user, status):
    reference = make_request(rt, user_id=user.user_id)
    if status == "attended":
        post(staff, f"/staff/bookings/{reference}/confirm")
        rt.clock.freeze(booking(rt, reference).slot_start + timedelta(minutes=1))
        assert login(staff).status_code == 302
        post(staff, f"/staff/bookings/{reference}/attended")
    assert 'id="cancel-terms"' not in _flash(staff, reference)
    count = len(audit_rows(rt))
    post(staff, f"/staff/bookings/{reference}/cancel_terms")
    assert booking(rt, reference).status == status and len(audit_rows(rt)) == count


def test_without_the_csrf_token_nothing_happens(rt, staff, user):
    reference = _confirmed(rt, staff, user_id=user.user_id)
    for token in (None, "", "x" * 40):
        data = {} if token is None else {"csrf_token": token}
        assert staff.post(f"/staff/bookings/{reference}/cancel_terms", data=data).status_code == 400
    assert booking(rt, reference).status == "confirmed" and _seats(rt, reference) == 1
    assert "cancel_by_terms" not in [e.action for e in audit_rows(rt)]


def test_a_phone_booking_is_stopped_and_staff_asked_to_phone(rt, staff):
    reference = _confirmed(rt, staff)
    assert "この方にはLINEでお知らせできません" in _flash(staff, reference).split('id="cancel-terms"')[1]
    post(staff, f"/staff/bookings/{reference}/cancel_terms", block_user="1")   # no chat: nothing to block
    assert booking(rt, reference).status == "cancelled_by_office"
    assert "LINEではご本人にお知らせできません" in _flash(staff, reference)


# -- the person's other requests, once their online booking is stopped -------------------------------

def _stopped_with_a_next_request(rt, staff, user, *, proposed: bool = False) -> str:
    """A session stopped under the terms (the box ticked) while the person had already asked for the next one
    (the first slot had begun, so it no longer counted against the office's limit); the next request's reference."""
    first = _confirmed(rt, staff, user_id=user.user_id)
    rt.clock.freeze(SAKATA_MONDAY + timedelta(minutes=5))
    assert login(staff).status_code == 302
    following = make_request(rt, user_id=user.user_id, start=SAKATA_MONDAY + timedelta(days=7))
    if proposed:
        post(staff, f"/staff/bookings/{following}/propose",
             slot=(SAKATA_MONDAY + timedelta(days=7, hours=1)).isoformat())
        assert booking(rt, following).status == "proposed"
    post(staff, f"/staff/bookings/{first}/cancel_terms", block_user="1")
    assert booking(rt, first).status == "cancelled_by_office" and _blocked(rt, user.user_id)
    return following


def test_a_request_of_a_stopped_account_is_not_confirmed_until_the_stop_is_lifted(rt, staff, user):
    """As a request of the same job seeker number on another LINE account (第10条, tests/test_requests.py): staff
    cannot confirm one the stopped account made before, nor offer it another slot (the yes would confirm it);
    they may decline it, or lift the stop first."""
    following = _stopped_with_a_next_request(rt, staff, user)
    count = len(audit_rows(rt))
    post(staff, f"/staff/bookings/{following}/confirm")
    assert booking(rt, following).status == "requested" and len(audit_rows(rt)) == count
    assert "この方のLINEでのオンライン予約は停止中です" in _flash(staff, following)
    post(staff, f"/staff/bookings/{following}/propose", slot=(SAKATA_MONDAY + timedelta(days=8)).isoformat())
    assert booking(rt, following).status == "requested" and len(audit_rows(rt)) == count
    post(staff, f"/staff/bookings/{following}/unblock_user")
    post(staff, f"/staff/bookings/{following}/confirm")
    assert booking(rt, following).status == "confirmed"


def test_the_staff_groups_approval_of_a_stopped_accounts_request_is_refused(rt, staff, client, user, fake_line):
    following = _stopped_with_a_next_request(rt, staff, user)
    group = StaffGroup(client, "sakata", channel_secret=rt.config.channel_secret("sakata"), group_id=GROUP,
                       fake=fake_line, clock=rt.clock)
    assert group.taps(staff_postback_data("sakata", "confirm", following)).status_code == 200
    assert booking(rt, following).status == "requested"
    assert "オンライン予約を停止中" in fake_line.texts_to(GROUP)[-1]


def test_a_slot_offered_before_the_stop_is_not_booked_by_the_users_yes(rt, staff, user, fake_line):
    following = _stopped_with_a_next_request(rt, staff, user, proposed=True)
    run_worker(rt)
    offer = fake_line.messages_to(user.user_id)
    user.taps(postback_value(offer, "この日時で予約する"))
    assert booking(rt, following).status == "proposed"
    assert "このアカウントからはオンライン職業相談の予約をお受けできません" in fake_line.texts_to(user.user_id)[-1]
    user.taps(postback_value(offer, "辞退する"))          # declining stays possible
    assert booking(rt, following).status == "declined"


# -- the message, by office and language -------------------------------------------------------------

WORDS = {
    "ja": ("の利用規約{article}に基づき、中止となりました。", "ご不明な点は"),
    "en": ("under {article} of its terms of use", "If you have any questions"),
    "easy": ("利用規約（りようきやく）{article}に もとづいて", "わからない ことが あれば"),
}


@pytest.mark.parametrize("language", list(WORDS))
@pytest.mark.parametrize("office", list(ARTICLES))
def test_the_message_names_the_offices_article_without_apology(rt, client, user_factory, fake_line, office,
                                                                language):
    create_staff(rt, office=office, username="sato")
    assert login(client, username="sato").status_code == 302
    user = user_factory(office)
    reference = _confirmed(rt, client, office=office, user_id=user.user_id, language=language)
    post(client, f"/staff/bookings/{reference}/cancel_terms")
    run_worker(rt)
    text = fake_line.texts_to(user.user_id)[-1]
    stopped, ask = WORDS[language]
    article = (EN_ARTICLES if language == "en" else ARTICLES)[office]
    assert stopped.format(article=article) in text and ask in text, text
    assert reference in text and f"/terms/{office}" in text
    assert not any(word in text.lower() for word in APOLOGY), text
    # The office's contacts, as the other messages give them (its confirmed phone number, or where to find it).
    office_data = rt.offices[office]
    if office_data.phone.confirmed and office_data.phone.value:
        assert office_data.phone.value in text
    # Nothing personal: the details stay on the dashboard.
    assert not any(str(value) in text for value in DETAILS[office].values() if isinstance(value, str) and value)


def test_without_an_article_the_message_says_under_the_terms(rt, staff, user, fake_line, monkeypatch):
    sakata = rt.offices["sakata"]
    monkeypatch.setitem(rt.offices, "sakata", replace(
        sakata, cancellation=replace(sakata.cancellation, conduct_article=None)))
    reference = _confirmed(rt, staff, user_id=user.user_id)
    post(staff, f"/staff/bookings/{reference}/cancel_terms")
    run_worker(rt)
    text = fake_line.texts_to(user.user_id)[-1]
    assert "ハローワーク酒田の利用規約に基づき、中止となりました。" in text, text


# -- the profile -----------------------------------------------------------------------------------

def test_the_profiles_name_their_article_and_the_loader_checks_it(tmp_path):
    offices = load_offices(DEFAULT_OFFICES_DIR)
    assert {o: offices[o].cancellation.conduct_article for o in ARTICLES} == {
        "sakata": TermsArticle(12, 1), "otaru": TermsArticle(10, 1)}

    def absent(data):
        data["cancellation"].pop("conduct_article")
    assert load_offices(edit_profile(tmp_path / "a", "sakata", absent))["sakata"].cancellation.conduct_article is None

    def article_alone(data):
        data["cancellation"]["conduct_article"] = {"number": 12}
    assert load_offices(edit_profile(tmp_path / "b", "sakata", article_alone))[
        "sakata"].cancellation.conduct_article == TermsArticle(12)
    for i, wrong in enumerate(("第12条(1)", 12, {"paragraph": 1}, {"number": 0}, {"number": "12"},
                               {"number": 12, "paragraph": 100}, {"number": 12, "clause": 1})):
        def change(data, wrong=wrong):
            data["cancellation"]["conduct_article"] = wrong
        problems = problems_of(edit_profile(tmp_path / f"w{i}", "sakata", change))
        assert "cancellation.conduct_article" in problems, problems


# -- not in the staff group -------------------------------------------------------------------------

def test_the_staff_group_cannot_stop_a_booking_under_the_terms(rt, staff, client, user, fake_line):
    assert not {"cancel_terms", "cancel_by_terms", "cancel_office"} & set(GROUP_ACTIONS)
    reference = _confirmed(rt, staff, user_id=user.user_id)
    group = StaffGroup(client, "sakata", channel_secret=rt.config.channel_secret("sakata"), group_id=GROUP,
                       fake=fake_line, clock=rt.clock)
    for action in ("cancel_terms", "cancel_by_terms"):          # a forged button
        assert group.taps(staff_postback_data("sakata", action, reference)).status_code == 200
    assert booking(rt, reference).status == "confirmed"
    assert "cancel_by_terms" not in [e.action for e in audit_rows(rt)]
