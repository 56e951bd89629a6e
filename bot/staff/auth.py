"""Staff accounts: hashed passwords, optional TOTP, lock-out after repeated failures (per name here, per client
address in bot/staff/throttle.py), server-side sessions, and an optional IP allow-list per office. Pure
functions over a session (no Flask here)."""
from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
import secrets
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta

import pyotp
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from bot.models import AppSetting
from bot.staff import throttle
from bot.staff.audit import NOT_ACCOUNTS
from bot.staff.models import LoginFailure, StaffSession, StaffUser

ROLES = ("staff", "admin")
USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{2,63}$")
MIN_PASSWORD = 12
MAX_PASSWORD = 256
LOCK_AFTER = 10                     # wrong passwords within FAILURE_WINDOW lock the username
FAILURE_WINDOW = timedelta(minutes=15)
LOCK_FOR = timedelta(minutes=15)
IDLE_TIMEOUT = timedelta(minutes=30)
MAX_SESSION = timedelta(hours=12)
ALLOWLIST_KEY = "staff_ip_allowlist:{office}"
PASSWORD_METHOD = "scrypt"          # werkzeug's default cost; the stored hash carries its own parameters
# Compared against when the username is unknown, so both cases take the same time.
_DUMMY_HASH = generate_password_hash("madoguchi-dummy-password")


class AccountError(ValueError):
    """An account cannot be created or changed as asked; `code` says why."""

    def __init__(self, code: str):
        super().__init__(code)
        self.code = code


@dataclass(frozen=True)
class LoginResult:
    user: StaffUser | None
    error: str | None = None   # invalid | locked | otp | ip | throttled
    wait: timedelta | None = None  # throttled or locked: how long the address or the name is still refused


# -- accounts -------------------------------------------------------------------------------------

def check_password_rules(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise AccountError("password_short")
    if len(password) > MAX_PASSWORD:
        raise AccountError("password_long")


def create_user(session: Session, *, office_id: str, username: str, password: str, role: str,
                now: datetime) -> StaffUser:
    username = username.strip()
    if not USERNAME.match(username):
        raise AccountError("username")
    if username.lower() in NOT_ACCOUNTS:
        raise AccountError("username_reserved")
    if role not in ROLES:
        raise AccountError("role")
    check_password_rules(password)
    if session.scalar(select(StaffUser.id).where(StaffUser.username == username.lower())) is not None:
        raise AccountError("exists")
    user = StaffUser(office_id=office_id, username=username.lower(),
                     password_hash=generate_password_hash(password, method=PASSWORD_METHOD),
                     role=role, active=True, totp_last_step=0, created_at=now)
    session.add(user)
    session.flush()
    return user


def accounts(session: Session, office_id: str) -> list[StaffUser]:
    """The office's dashboard accounts, by name."""
    return list(session.scalars(select(StaffUser).where(StaffUser.office_id == office_id)
                                .order_by(StaffUser.username)))


def set_password(session: Session, user: StaffUser, password: str) -> None:
    """A new password ends every session of the account."""
    check_password_rules(password)
    user.password_hash = generate_password_hash(password, method=PASSWORD_METHOD)
    end_sessions(session, user.id)


# -- logging in -----------------------------------------------------------------------------------

def authenticate(session: Session, config, *, username: str, password: str, otp: str | None, ip: str | None,
                 now: datetime, device_now: datetime | None = None) -> LoginResult:
    """Check a login; failures are counted per username (known or not) and lock it for a while, and per client
    address, which a spray over many names throttles (nothing is checked while it is). A one-time code is
    checked against `device_now` (`Clock.device_now`: the authenticator's real time), else `now`."""
    address = _address_counter(session, config, ip)
    wait = throttle.throttled_for(session, address, now)
    if wait is not None:
        return LoginResult(None, "throttled", wait)
    typed = (username or "").strip().lower()[:64]
    key = failure_key(config, typed)
    failure = session.get(LoginFailure, key) if key else None
    if failure is not None and failure.locked_until is not None and failure.locked_until > now:
        return LoginResult(None, "locked", failure.locked_until - now)
    # Locked until the login commits: two logins with the same one-time code at once cannot both pass.
    user = session.scalar(select(StaffUser).where(StaffUser.username == typed).with_for_update()) if key else None
    password_ok = check_password_hash(user.password_hash if user else _DUMMY_HASH, password or "")
    if user is not None and user.active and not ip_allowed(session, user.office_id, ip):
        # Outside the office's network the answer is the same whatever the password, and every try counts
        # towards the lock-out: a stolen or guessed password cannot be confirmed from outside.
        error = "locked" if _count_failure(session, key, failure, now) == "locked" else "ip"
        return _refused(session, address, error, now)
    if user is None or not user.active or not password_ok:
        error = _count_failure(session, key, failure, now)
        if error == "invalid" and (user is None or not user.active) and not _any_network_admits(session, ip):
            # An unknown name from where no office's network admits it is answered as a known one is there:
            # "outside the network" for a known name only would tell from outside which names exist.
            error = "ip"
        return _refused(session, address, error, now)
    if user.totp_secret:
        step = verify_totp(config, user, otp or "", device_now or now)
        if step is None:
            return _refused(session, address, _count_failure(session, key, failure, now, otp=True), now)
        user.totp_last_step = step
    if failure is not None:
        session.delete(failure)
    user.last_login_at = now
    return LoginResult(user)


def check_current_password(session: Session, config, user: StaffUser, password: str, ip: str | None,
                           now: datetime) -> str | None:
    """The current password asked before changing it: None when right, else `current`, `locked` or `throttled`.

    A wrong one counts as a failed login, for the name and for the client's address, and while either is locked
    nothing is checked: an open session (a terminal left signed in, a stolen cookie) is no unlimited oracle for
    the account's password."""
    address = _address_counter(session, config, ip)
    if throttle.throttled_for(session, address, now) is not None:
        return "throttled"
    key = failure_key(config, user.username)
    failure = session.get(LoginFailure, key)
    if failure is not None and failure.locked_until is not None and failure.locked_until > now:
        return "locked"
    if check_password_hash(user.password_hash, password or ""):
        return None
    error = _refused(session, address, _count_failure(session, key, failure, now), now).error
    return "current" if error == "invalid" else error


def _address_counter(session: Session, config, ip: str | None) -> str:
    """The per-address counter of a login (throttle.address_key), or none from a network an office's allow-list
    names: every member of that office logs in from it, often through one router (or one gateway shared by
    several offices), so a few people's typos at opening time would refuse them all, and anyone who shares it
    could keep them out with 30 failed logins every 15 minutes. There each name's own lock-out still holds. A
    network wider than any office's (the internet, or much of it, typed to mean 'no restriction') exempts nobody:
    one office's list would otherwise end the throttle for every office."""
    offices = [[net for net in networks if _office_sized(net)] for networks in _allowlists(session)]
    if any(networks and address_in(networks, ip) for networks in offices):
        return ""
    return throttle.address_key(config, ip)


# The widest network an office's allow-list exempts from the address throttle: an office's, or a gateway several
# offices share, is far narrower (a /8 is 16 million addresses; a /32 an Internet provider's IPv6 allocation).
OFFICE_WIDEST_PREFIX = {4: 8, 6: 32}


def _office_sized(network: str) -> bool:
    net = ipaddress.ip_network(network)
    return net.prefixlen >= OFFICE_WIDEST_PREFIX[net.version]


def _refused(session: Session, address: str, error: str, now: datetime) -> LoginResult:
    """A login refused after its check: it counts for the client's address too, and may throttle it."""
    if throttle.count_failure(session, address, now):
        return LoginResult(None, "throttled", throttle.ADDRESS_THROTTLE)
    return LoginResult(None, error, LOCK_FOR if error == "locked" else None)


def _count_failure(session: Session, key: str, failure: LoginFailure | None, now: datetime,
                   otp: bool = False) -> str:
    """Count a failure of the name (in one statement: a failure at the same moment is counted too, whatever
    either read before) and lock the name at LOCK_AFTER."""
    if not key:
        return "invalid"
    if failure is not None:
        session.expire(failure)   # written behind the session's back: read again if asked
    count = throttle.bump(session, LoginFailure, LoginFailure.username, key, now, FAILURE_WINDOW,
                          LoginFailure.locked_until)
    if count >= LOCK_AFTER:
        # Set once: a failure counted just after this one does not push the end further.
        session.execute(update(LoginFailure).where(LoginFailure.username == key, LoginFailure.locked_until.is_(None))
                        .values(locked_until=now + LOCK_FOR))
        return "locked"
    return "otp" if otp else "invalid"


def failure_key(config, username: str) -> str:
    """The lock-out counter of a user name as typed: a keyed hash, never the text itself (a password typed into
    the user name box, or whatever an attacker tries, is not written down); empty for an empty name."""
    typed = (username or "").strip().lower()[:64]
    if not typed:
        return ""
    return hmac.new(config.secret_key.encode(), f"login-failure|{typed}".encode(), hashlib.sha256).hexdigest()


def unlock(session: Session, config, username: str) -> None:
    session.execute(delete(LoginFailure).where(LoginFailure.username == failure_key(config, username)))


def is_locked(session: Session, config, username: str, now: datetime) -> bool:
    failure = session.get(LoginFailure, failure_key(config, username))
    return failure is not None and failure.locked_until is not None and failure.locked_until > now


def purge_login_failures(session: Session, now: datetime) -> None:
    """Counters whose window has passed and that lock nothing any more: they count nothing now. Per user name
    and per client address alike."""
    session.execute(delete(LoginFailure).where(
        LoginFailure.first_at < now - FAILURE_WINDOW,
        or_(LoginFailure.locked_until.is_(None), LoginFailure.locked_until <= now)))
    throttle.purge(session, now)


# -- sessions -------------------------------------------------------------------------------------

def session_key(token: str) -> str:
    """The row id of the session behind a cookie's token: a hash, so the table holds no usable token."""
    return hashlib.sha256(token.encode()).hexdigest()


def start_session(session: Session, user: StaffUser, now: datetime, ip: str | None) -> str:
    """A fresh session for a login (never the one the browser had): returns the cookie's token."""
    token = secrets.token_urlsafe(32)
    session.add(StaffSession(id=session_key(token), user_id=user.id, created_at=now, last_seen_at=now,
                             ip=(ip or "")[:45] or None))
    return token


def resume_session(session: Session, token: str | None, now: datetime) -> StaffUser | None:
    """The account behind a cookie's token, if its session is still alive (idle and absolute limits)."""
    if not token:
        return None
    row = session.get(StaffSession, session_key(token))
    if row is None:
        return None
    if now - row.last_seen_at > IDLE_TIMEOUT or now - row.created_at > MAX_SESSION:
        session.delete(row)
        return None
    user = session.get(StaffUser, row.user_id)
    if user is None or not user.active:
        session.delete(row)
        return None
    row.last_seen_at = now
    return user


@dataclass(frozen=True)
class Deadlines:
    """When a live session ends: `idle` if nothing more is sent (each request moves it), `absolute` whatever is
    done (MAX_SESSION after the login; nothing moves it)."""

    idle: datetime
    absolute: datetime


def deadlines(session: Session, token: str | None) -> Deadlines | None:
    """The limits of the session behind a cookie's token, as they stand after `resume_session` (None: no row)."""
    row = session.get(StaffSession, session_key(token)) if token else None
    if row is None:
        return None
    return Deadlines(idle=row.last_seen_at + IDLE_TIMEOUT, absolute=row.created_at + MAX_SESSION)


def end_session(session: Session, token: str | None) -> None:
    if token:
        session.execute(delete(StaffSession).where(StaffSession.id == session_key(token)))


def end_sessions(session: Session, user_id: int) -> None:
    session.execute(delete(StaffSession).where(StaffSession.user_id == user_id))


# -- second factor --------------------------------------------------------------------------------

def _fernet(config) -> MultiFernet:
    return MultiFernet([Fernet(key.encode()) for key in config.data_encryption_keys])


def new_totp_secret() -> str:
    return pyotp.random_base32()


def provisioning_uri(secret: str, username: str, office_name: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=username, issuer_name=f"madoguchi {office_name}")


def totp_step(secret: str, code: str, now: datetime) -> int | None:
    """The time step a code is valid for (one step of drift either way), or None.

    Typed as a Japanese keyboard gives it too: full-width digits, spaces or a hyphen between the halves."""
    code = re.sub(r"[\s\-]", "", unicodedata.normalize("NFKC", code or ""))
    if not re.fullmatch(r"[0-9]{6}", code):
        return None
    totp = pyotp.TOTP(secret)
    for drift in (0, -1, 1):
        at = now + timedelta(seconds=drift * totp.interval)
        if secrets.compare_digest(totp.at(at), code):
            return totp.timecode(at)
    return None


def seal_totp_secret(config, secret: str) -> str:
    """A TOTP secret as it is kept, in the database or (while enrolment is pending) in the session cookie:
    encrypted under DATA_ENCRYPTION_KEY, never in the clear."""
    return _fernet(config).encrypt(secret.encode()).decode()


def open_totp_secret(config, sealed: str | None) -> str | None:
    """The secret of `seal_totp_secret`; None when there is none, or no configured key opens it."""
    try:
        return _fernet(config).decrypt(sealed.encode()).decode()
    except (InvalidToken, AttributeError):
        return None


def verify_totp(config, user: StaffUser, code: str, now: datetime) -> int | None:
    """A fresh step for a valid code not used before (a replayed code fails)."""
    secret = open_totp_secret(config, user.totp_secret)
    if secret is None:
        return None
    step = totp_step(secret, code, now)
    if step is None or step <= (user.totp_last_step or 0):
        return None
    return step


def enroll_totp(config, user: StaffUser, secret: str, code: str, now: datetime) -> bool:
    """Turn the second factor on once the user proved their app shows the right codes."""
    step = totp_step(secret, code, now)
    if step is None:
        return False
    user.totp_secret = seal_totp_secret(config, secret)
    user.totp_last_step = step
    return True


# -- IP allow-list --------------------------------------------------------------------------------

def _allowlists(session: Session) -> list[list[str]]:
    """Every office's allow-list that is set."""
    prefix = ALLOWLIST_KEY.format(office="")
    values = session.scalars(select(AppSetting.value).where(AppSetting.key.startswith(prefix, autoescape=True)))
    return [[part for part in value.split(",") if part] for value in values]


def allowlist(session: Session, office_id: str) -> list[str]:
    value = session.scalar(select(AppSetting.value).where(AppSetting.key == ALLOWLIST_KEY.format(office=office_id)))
    return [part for part in (value or "").split(",") if part]


def parse_allowlist(text: str) -> list[str]:
    """CIDRs or addresses, one per line or comma-separated; AccountError('allowlist') on a bad entry."""
    networks = []
    for part in re.split(r"[\s,]+", text or ""):
        if not part:
            continue
        try:
            networks.append(str(ipaddress.ip_network(part, strict=False)))
        except ValueError as exc:
            raise AccountError("allowlist") from exc
    return networks


def set_allowlist(session: Session, office_id: str, networks: list[str]) -> None:
    key = ALLOWLIST_KEY.format(office=office_id)
    row = session.get(AppSetting, key)
    if not networks:
        if row is not None:
            session.delete(row)
        return
    if row is None:
        session.add(AppSetting(key=key, value=",".join(networks)))
    else:
        row.value = ",".join(networks)


def address_in(networks: list[str], ip: str | None) -> bool:
    if not networks:
        return True
    try:
        address = ipaddress.ip_address(ip or "")
    except ValueError:
        return False
    return any(address in ipaddress.ip_network(net) for net in networks)


def ip_allowed(session: Session, office_id: str, ip: str | None) -> bool:
    return address_in(allowlist(session, office_id), ip)


def _any_network_admits(session: Session, ip: str | None) -> bool:
    """Could any office with accounts take a login from this address (one without an allow-list takes all)?"""
    offices = session.scalars(select(StaffUser.office_id).where(StaffUser.active.is_(True)).distinct()).all()
    return not offices or any(ip_allowed(session, office_id, ip) for office_id in offices)
