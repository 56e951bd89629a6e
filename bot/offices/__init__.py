"""Office profiles: the package the rest of the app imports them from (bot/offices/reading.py does the work)."""
from __future__ import annotations

from bot.offices.reading import (
    DEFAULT_RETENTION,
    FORM_FIELDS,
    NOTICE_DAYS,
    TERMS_DIR,
    TERMS_SUMMARY_MAX,
    Booking,
    Cancellation,
    Category,
    ChecklistItem,
    Contact,
    NoticeRule,
    Office,
    ProfileError,
    PushHours,
    Question,
    Redirect,
    Schedule,
    TermsSpec,
    VideoApp,
    check_offices,
    load_offices,
    read_office,
    untranslated,
)

__all__ = [
    "DEFAULT_RETENTION", "FORM_FIELDS", "NOTICE_DAYS", "TERMS_DIR", "TERMS_SUMMARY_MAX",
    "Booking", "Cancellation", "Category", "ChecklistItem", "Contact", "NoticeRule", "Office", "ProfileError",
    "PushHours", "Question", "Redirect", "Schedule", "TermsSpec", "VideoApp",
    "check_offices", "load_offices", "read_office", "untranslated",
]

# The classes keep the name they were always known by, bot.offices.<Class>: `offices check` prints it in a template
# error ("'bot.offices.Office object' has no attribute ..."), a traceback in a ProfileError's.
for _public in (Booking, Cancellation, Category, ChecklistItem, Contact, NoticeRule, Office, ProfileError, PushHours,
                Question, Redirect, Schedule, TermsSpec, VideoApp):
    _public.__module__ = __name__
del _public
