"""Walking the intake dialog through signed webhooks: a thin layer over LineUser and the fake LINE API.

    chat = Chat(user, fake_line, rt)
    chat.say("予約")            # -> the texts the bot sent back for this event
    chat.tap("同意する")        # taps the quick-reply button with that label in the last message
    chat.walk_to("checklist", 3)  # consent, every question passed, checklist items 0..2 answered はい
    chat.conversation().state
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from sqlalchemy import select

from bot.models import Consent, Conversation

YES, NO, UNSURE = "はい", "いいえ", "わからない"
ANSWER_LABEL = {"yes": YES, "no": NO, "unsure": UNSURE}

# Texts every office's dialog must show somewhere (from the templates' fixed wording).
CONSENT_HEAD = "【要約】"
HOW_TO_CONSENT = "「同意する」と送って"


def closing_clauses(court: str) -> dict[str, list[str]]:
    """What every office's 要約 must tell of its terms' closing articles, each as words that must appear in it."""
    return {
        "applying counts as agreeing to the terms": ["申し込むと", "同意したものとみなされます"],
        "no liability for the user's connection or force majeure; damages from a breach are the user's": [
            "責任を負いません", "サイバー攻撃", "停電", "利用者の負担"],
        "the terms may change without consent; using the service after counts as agreeing": [
            "承諾なしに変更", "変更に同意したものとみなされます"],
        "Japanese law and the court of first instance": ["日本法", court, "専属的合意管轄裁判所"],
    }

# A button's label as people type it: without its spaces (この ままに する), with full-width ones and 。, with an
# emoji after it, in katakana and ！, with an invisible space before it.
LABEL_AS_TYPED = [lambda label: label.replace(" ", ""), lambda label: label.replace(" ", "\u3000") + "。",
                  lambda label: f"{label}🙏", lambda label: katakana(label) + "！", lambda label: f"\u200b{label} "]


def katakana(text: str) -> str:
    """Hiragana written in katakana (はい -> ハイ)."""
    return "".join(chr(ord(c) + 0x60) if "\u3041" <= c <= "\u3096" else c for c in text)


@dataclass
class Chat:
    user: Any          # tests.lineuser.LineUser
    fake: Any          # tests.fakeline.FakeLineApi
    rt: Any            # bot.runtime.Runtime

    # -- talking ------------------------------------------------------------------------------
    def _new_since(self, before: int) -> list[str]:
        return self.fake.texts_to(self.user.user_id)[before:]

    def _count(self) -> int:
        return len(self.fake.texts_to(self.user.user_id))

    def say(self, text: str, **opts: Any) -> list[str]:
        before = self._count()
        response = self.user.says(text, **opts)
        assert response.status_code == 200
        return self._new_since(before)

    def tap_data(self, data: str, **opts: Any) -> list[str]:
        before = self._count()
        response = self.user.taps(data, **opts)
        assert response.status_code == 200
        return self._new_since(before)

    def sticker(self) -> list[str]:
        before = self._count()
        assert self.user.sends_sticker().status_code == 200
        return self._new_since(before)

    def tap(self, label: str) -> list[str]:
        return self.tap_data(self.button_data(label))

    # -- what the last message offers ---------------------------------------------------------
    def last_message(self) -> dict:
        return self.fake.messages_to(self.user.user_id)[-1]

    def buttons(self) -> list[str]:
        items = self.last_message().get("quickReply", {}).get("items", [])
        return [item["action"]["label"] for item in items]

    def button_data(self, label: str) -> str:
        items = self.last_message().get("quickReply", {}).get("items", [])
        for item in items:
            if item["action"]["label"] == label:
                return item["action"]["data"]
        raise AssertionError(f"no button {label!r} in the last message (buttons: {self.buttons()})")

    def all_texts(self) -> list[str]:
        return self.fake.texts_to(self.user.user_id)

    # -- the database -------------------------------------------------------------------------
    def conversation(self) -> Conversation:
        with self.rt.db.reading() as s:
            conv = s.scalar(select(Conversation).where(Conversation.office_id == self.user.office,
                                                       Conversation.line_user_id == self.user.user_id))
            assert conv is not None
            s.expunge(conv)
            return conv

    def consents(self) -> list[Consent]:
        with self.rt.db.reading() as s:
            rows = list(s.scalars(select(Consent).join(Conversation, Consent.conversation_id == Conversation.id)
                                  .where(Conversation.line_user_id == self.user.user_id)
                                  .order_by(Consent.id)))
            for row in rows:
                s.expunge(row)
            return rows

    def position(self) -> tuple[str, int | None]:
        conv = self.conversation()
        index = (conv.context or {}).get("i")
        return conv.state, index

    # -- walking ------------------------------------------------------------------------------
    @property
    def office(self):
        return self.rt.offices[self.user.office]

    def passing_label(self, question) -> str:
        return ANSWER_LABEL[question.passing[0]]

    def failing_answers(self, question) -> list[str]:
        return [answer for answer in question.choices if answer not in question.passing]

    def start_and_consent(self) -> list[str]:
        """予約, then 同意する by button (or straight to the first question if consented before)."""
        out = self.say("予約")
        if any(CONSENT_HEAD in t for t in out):
            out += self.tap("同意する")
        return out

    def walk_to(self, step: str, index: int = 0) -> list[str]:
        """From idle to eligibility question `index`, checklist item `index`, or the slot list."""
        out = self.start_and_consent()
        questions = self.office.eligibility
        stop_q = index if step == "eligibility" else len(questions)
        for question in questions[:stop_q]:
            out = self.tap(self.passing_label(question))
        if step == "eligibility":
            return out
        stop_c = index if step == "checklist" else len(self.office.checklist)
        for _ in range(stop_c):
            out = self.tap(YES)
        return out


def joined(texts: list[str]) -> str:
    return "\n".join(texts)


def postback_fields(data: str) -> dict[str, str]:
    return dict(parse_qsl(data))
