"""The one configuration object: environment first, overrides from create_app(config=...)."""
from __future__ import annotations

import logging
import os
import re
import secrets
import warnings
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from urllib.parse import urlsplit

import click
from cryptography.fernet import Fernet

from bot.clock import parse_instant

try:
    from gunicorn.errors import AppImportError as AppLoadRefused
except ImportError:  # gunicorn serves the web process only; a command runs without it
    class AppLoadRefused(Exception):  # type: ignore[no-redef]
        """Stands in for gunicorn's AppImportError."""

log = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OFFICES_DIR = PROJECT_ROOT / "dialogs" / "offices"
PRODUCTION_LINE_API = "https://api.line.me"
PRODUCTION_LINE_DATA_API = "https://api-data.line.me"
# How to make each key (README "Keys and their rotation"): said wherever a key is missing or unusable.
MAKE_SECRET_KEY = "python3 -c 'import secrets; print(secrets.token_hex(32))'"
MAKE_DATA_ENCRYPTION_KEY = "python3 -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'"
# The shortest SECRET_KEY production takes: it signs the sessions and form links and keys the search hash of job
# seeker numbers, so a guessable one would let a copy of the database give those numbers back.
MIN_SECRET_KEY = 32


class SettingWarning(UserWarning):
    """A setting that works but should change (plain http, SQLite in production, a LINE_… name nothing reads):
    printed as `warning: <message>` alone, without the file, line and source that Python's warnings show, which
    say nothing to an operator reading a command's output or the web process's log."""


def _format_warning(message, category, filename, lineno, line=None, _python=warnings.formatwarning):
    if isinstance(category, type) and issubclass(category, SettingWarning):
        return f"warning: {message}\n"
    return _python(message, category, filename, lineno, line)


warnings.formatwarning = _format_warning


class ConfigError(click.ClickException, RuntimeError, AppLoadRefused):
    """Raised when the app cannot start with the settings it was given.

    A ClickException too: when `flask --app app <command>` builds the app and it cannot start (a broken office
    profile, a missing production secret), the command prints the message and exits 1 instead of a traceback.
    And gunicorn's AppImportError: a gunicorn worker that cannot build the app (the Procfile's `web`) prints the
    message alone, and gunicorn stops ("App failed to load", a failure status) instead of logging a traceback.
    """


@dataclass(frozen=True)
class Config:
    app_env: str = "development"
    database_url: str = ""
    line_api_base_url: str = ""
    line_api_data_base_url: str = ""
    public_base_url: str = "http://localhost:5000"
    secret_key: str = ""
    data_encryption_keys: tuple[str, ...] = ()
    offices_dir: Path = DEFAULT_OFFICES_DIR
    fake_now: str | None = None
    instance_path: Path = PROJECT_ROOT / "instance"
    # Per-office channel settings: office id -> value (read from LINE_*_<OFFICE>).
    env: dict[str, str] = field(default_factory=dict)
    testing: bool = False
    # Budget for sending replies in the web process after commit (seconds).
    reply_budget_seconds: float = 1.0
    line_timeout_seconds: float = 5.0
    # Reverse proxies in front of the app whose X-Forwarded-For/-Proto are believed (0: none, the client's
    # own address is the peer's). The staff allow-list and audit log need the real address behind a router.
    trusted_proxy_hops: int = 0
    # Channel credentials from the channels store (bot/channels.py), for offices the environment misses:
    # office id -> {"secret": ..., "token": ...}. The environment wins, setting by setting.
    stored_channels: dict[str, dict[str, str]] = field(default_factory=dict, repr=False)
    # Offices whose stored credentials none of the DATA_ENCRYPTION_KEY keys opens (the key they were stored
    # under is missing): production's refusal says so instead of asking for the settings again.
    unreadable_channels: tuple[str, ...] = ()

    @property
    def is_production(self) -> bool:
        return self.app_env == "production"

    @property
    def session_cookie_name(self) -> str:
        """Flask's session cookie. In production `__Host-`: browsers accept it only with Secure, Path=/ and no
        Domain, so a sibling subdomain can neither plant nor overwrite it. Over plain http (development, the
        simulator) they would drop such a cookie, so there it keeps the plain name."""
        return "__Host-session" if self.is_production else "session"

    def channel_secret(self, office_id: str) -> str | None:
        return self._per_office("LINE_CHANNEL_SECRET", office_id)

    def channel_token(self, office_id: str) -> str | None:
        return self._per_office("LINE_CHANNEL_ACCESS_TOKEN", office_id)

    def staff_group_id(self, office_id: str) -> str | None:
        return self.env.get(f"LINE_STAFF_GROUP_ID_{office_id.upper()}") or None

    def basic_id(self, office_id: str) -> str | None:
        return self.env.get(f"LINE_BASIC_ID_{office_id.upper()}") or None

    def _per_office(self, prefix: str, office_id: str) -> str | None:
        value = self.env.get(f"{prefix}_{office_id.upper()}")
        if value:
            return value
        value = self.stored_channels.get(office_id, {}).get("secret" if prefix == "LINE_CHANNEL_SECRET" else "token")
        if value:
            return value
        if self.is_production:
            return None
        # Development placeholders: stable per office so the simulator can sign.
        return f"dev-{prefix.lower().replace('_', '-')}-{office_id}"


def _normalise_db_url(url: str) -> str:
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://"):]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    return url


def _dev_secret(instance: Path, name: str, make) -> str:
    """Read a development key from instance/, creating it once, atomically."""
    try:
        instance.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ConfigError(f"INSTANCE_PATH: cannot create {instance} for the development keys and database "
                          f"({error.strerror or error}): choose a writable folder") from None
    path = instance / name
    if not path.exists():
        tmp = instance / f".{name}.{os.getpid()}.{secrets.token_hex(4)}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w") as fh:
                fh.write(make())
                fh.flush()
                os.fsync(fh.fileno())  # complete on disk before it gets its name
            os.link(tmp, path)  # fails if another process won the race
        except FileExistsError:
            pass
        finally:
            tmp.unlink(missing_ok=True)
    return path.read_text().strip()


def _proxy_hops(value: str) -> int:
    value = value.strip()
    if not value:
        return 0
    if not value.isdigit() or int(value) > 5:
        raise ConfigError(f"TRUSTED_PROXY_HOPS must be a whole number from 0 to 5, not {value!r}")
    return int(value)


def _has_scheme_and_host(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def _base_url_problem(url: str) -> str | None:
    """Why PUBLIC_BASE_URL cannot make the links that users and staff open, or None. Without a scheme and host
    (`madoguchi.example.jp`) every form, terms and dashboard link would be broken, and LINE refuses a message
    whose button opens one."""
    if _has_scheme_and_host(url):
        return None
    return (f"PUBLIC_BASE_URL must be the bot's address with its scheme, e.g. https://madoguchi.example.jp, not "
            f"{url!r}: the links to the details form, the terms and the dashboard are made from it")


def _line_api_problem(cfg: Config) -> str | None:
    """Why a LINE API address cannot be used, or None. Without a scheme (`api.line.me`) the SDK's HTTP library
    calls it over plain http, the channel access token in the clear."""
    for setting, url, default in (("LINE_API_BASE_URL", cfg.line_api_base_url, PRODUCTION_LINE_API),
                                  ("LINE_API_DATA_BASE_URL", cfg.line_api_data_base_url, PRODUCTION_LINE_DATA_API)):
        if not _has_scheme_and_host(url):
            return (f"{setting} must be an address with its scheme, e.g. {default}, not {url!r} (unset it to use "
                    "LINE's own): without https:// the calls to LINE would go unencrypted, with the channel's token")
    return None


def load_config(overrides: dict | None = None, environ: dict | None = None) -> Config:
    """Build the Config from the environment, then apply overrides (tests)."""
    environ = dict(os.environ if environ is None else environ)
    overrides = dict(overrides or {})
    app_env = overrides.pop("app_env", None) or environ.get("APP_ENV", "development")
    if app_env not in ("development", "production"):
        raise ConfigError(f"APP_ENV must be 'development' or 'production', not {app_env!r}")
    production = app_env == "production"
    # Absolute, as Flask takes it: a relative INSTANCE_PATH is the folder under the working directory.
    instance = Path(overrides.pop("instance_path", None) or environ.get("INSTANCE_PATH")
                    or PROJECT_ROOT / "instance").absolute()

    public = (environ.get("PUBLIC_BASE_URL") or "http://localhost:5000").rstrip("/")

    db_url = environ.get("DATABASE_URL") or f"sqlite:///{instance / 'madoguchi.sqlite3'}"
    db_url = _normalise_db_url(db_url)

    api = environ.get("LINE_API_BASE_URL") or (PRODUCTION_LINE_API if production else f"{public}/simulator/api")
    data_api = environ.get("LINE_API_DATA_BASE_URL") or (
        PRODUCTION_LINE_DATA_API if production else f"{public}/simulator/api"
    )

    secret_key = environ.get("SECRET_KEY", "")
    keys = tuple(k.strip() for k in environ.get("DATA_ENCRYPTION_KEY", "").split(",") if k.strip())
    fake_now = environ.get("APP_FAKE_NOW") or None
    hops = _proxy_hops(environ.get("TRUSTED_PROXY_HOPS", ""))

    cfg = Config(
        app_env=app_env,
        database_url=db_url,
        line_api_base_url=api.rstrip("/"),
        line_api_data_base_url=data_api.rstrip("/"),
        public_base_url=public,
        secret_key=secret_key,
        data_encryption_keys=keys,
        offices_dir=Path(environ.get("OFFICES_DIR") or DEFAULT_OFFICES_DIR),
        fake_now=fake_now,
        instance_path=instance,
        env={k: v for k, v in environ.items() if k.startswith("LINE_")},
        trusted_proxy_hops=hops,
    )
    known = {f.name for f in fields(Config)}
    unknown = set(overrides) - known
    if unknown:
        raise ConfigError(f"unknown config overrides: {sorted(unknown)}")
    if "database_url" in overrides:
        overrides["database_url"] = _normalise_db_url(overrides["database_url"])
    if "offices_dir" in overrides:
        overrides["offices_dir"] = Path(overrides["offices_dir"])
    return _checked(replace(cfg, **overrides), public_given=bool(environ.get("PUBLIC_BASE_URL"))
                    or "public_base_url" in overrides)


# A LINE Official Account's basic ID (`@123abcde`) or premium ID (`@madoguchi`), as its links take it.
_BASIC_ID = re.compile(r"@[0-9A-Za-z._-]{1,40}")


def _basic_id_problem(cfg: Config) -> str | None:
    """Why a LINE_BASIC_ID_<OFFICE> cannot make the "back to LINE" link (`https://line.me/R/oaMessage/<id>/`), or None:
    without its `@` (or as the account's URL) the link opens no chat, and nothing would say so."""
    for name, value in sorted(cfg.env.items()):
        if name.startswith("LINE_BASIC_ID_") and value and not _BASIC_ID.fullmatch(value):
            return (f"{name} must be the account's basic ID with its @, e.g. @123abcde (LINE Official Account "
                    f"Manager, account settings), not {value!r}: the links back to the chat open it by that ID")
    return None


def _checked(cfg: Config, public_given: bool) -> Config:
    """The configuration as finally given (overrides included), checked; development's missing secrets made."""
    if cfg.is_production and cfg.fake_now:
        raise ConfigError("APP_FAKE_NOW is for development only; unset it in production")
    if problem := _base_url_problem(cfg.public_base_url) or _line_api_problem(cfg) or _basic_id_problem(cfg):
        raise ConfigError(problem)
    # Warned about as finally configured (overrides included), not as the environment alone says.
    if cfg.is_production and cfg.public_base_url.startswith("http://"):
        unset = "" if public_given else ", the default: it is not set"
        warnings.warn(f"PUBLIC_BASE_URL is plain http in production ({cfg.public_base_url}{unset}): the links to the "
                      "details form, the terms and the dashboard use it; serve the bot over https and set it to that "
                      "https:// address (staff cannot log in over plain http: the session cookie is https-only)",
                      SettingWarning, stacklevel=2)
    if cfg.is_production and cfg.database_url.startswith("sqlite"):
        warnings.warn("SQLite in production: fine for a pilot, PostgreSQL is recommended", SettingWarning,
                      stacklevel=2)
    if cfg.fake_now:
        try:
            parse_instant(cfg.fake_now)
        except ValueError as exc:
            raise ConfigError(f"APP_FAKE_NOW is not an ISO 8601 time: {cfg.fake_now!r}") from exc
    if not cfg.is_production:
        if not cfg.secret_key:
            cfg = replace(cfg, secret_key=_dev_secret(cfg.instance_path, "secret_key", lambda: secrets.token_hex(32)))
        if not cfg.data_encryption_keys:
            key = _dev_secret(cfg.instance_path, "data_encryption_key", lambda: Fernet.generate_key().decode())
            cfg = replace(cfg, data_encryption_keys=(key,))
    keys = cfg.data_encryption_keys
    for position, key in enumerate(keys, start=1):
        try:
            Fernet(key.encode())
        except (ValueError, TypeError) as exc:  # the value is never shown: its place and length find it
            raise ConfigError(
                f"DATA_ENCRYPTION_KEY: key {position} of {len(keys)} (comma-separated, newest first) is not a "
                f"Fernet key: it has {len(key)} characters, a Fernet key has 44 (URL-safe base64, usually ending "
                f"in '='; make one with `{MAKE_DATA_ENCRYPTION_KEY}`)") from exc
    return cfg


# The LINE_* settings read (README "Settings"): a name none of them matches is read by nothing.
LINE_API_SETTINGS = ("LINE_API_BASE_URL", "LINE_API_DATA_BASE_URL")
PER_OFFICE_LINE_SETTINGS = ("LINE_CHANNEL_SECRET", "LINE_CHANNEL_ACCESS_TOKEN", "LINE_STAFF_GROUP_ID", "LINE_BASIC_ID")


def warn_unread_line_settings(cfg: Config, office_ids: list[str]) -> None:
    """Warn of LINE_* settings that nothing reads: a typo (`LINE_STAFF_GROUP_ID_SAKTA`, `LINE_STAFF_GROUP_SAKATA`)
    or an office the profiles do not hold would otherwise be ignored without a word, the staff group then never
    told, or the 「LINEに戻る」 link missing. Names only: a value may be a secret."""
    read = set(LINE_API_SETTINGS) | {f"{prefix}_{office.upper()}" for prefix in PER_OFFICE_LINE_SETTINGS
                                     for office in office_ids}
    unread = sorted(name for name in cfg.env if name not in read)
    if unread:
        warnings.warn(f"LINE settings that nothing reads, ignored (a typo?): {', '.join(unread)}. The per-office ones are "
                      f"{', '.join(f'{prefix}_<OFFICE>' for prefix in PER_OFFICE_LINE_SETTINGS)}, <OFFICE> the "
                      f"office id in capitals, of the offices {', '.join(sorted(office_ids))} (OFFICES_DIR "
                      f"{cfg.offices_dir})", SettingWarning, stacklevel=2)


def check_production(cfg: Config, office_ids: list[str]) -> None:
    """Refuse to start in production without the secrets, naming what is missing."""
    if not cfg.is_production:
        return
    missing = []
    missing_channels: dict[str, str] = {}   # setting name -> its office
    if not cfg.secret_key:
        missing.append("SECRET_KEY")
    if not cfg.data_encryption_keys:
        missing.append("DATA_ENCRYPTION_KEY")
    for office in office_ids:
        for prefix in ("LINE_CHANNEL_SECRET", "LINE_CHANNEL_ACCESS_TOKEN"):
            name = f"{prefix}_{office.upper()}"
            if not cfg._per_office(prefix, office):  # the environment, then the channels store
                missing.append(name)
                missing_channels[name] = office
    short = ""
    if cfg.secret_key and len(cfg.secret_key) < MIN_SECRET_KEY:  # its length only: the value is never shown
        short = (f"SECRET_KEY is too short for production: {len(cfg.secret_key)} characters, at least "
                 f"{MIN_SECRET_KEY} random ones are needed (it signs sessions and form links and keys the search "
                 f"hash of job seeker numbers): make one with `{MAKE_SECRET_KEY}`.")
    if short and not missing:
        raise ConfigError(short)
    if missing:
        hint = ""
        if "SECRET_KEY" in missing:
            hint += f"\nSECRET_KEY signs sessions and form links: make one with `{MAKE_SECRET_KEY}`."
        if "DATA_ENCRYPTION_KEY" in missing:
            hint += ("\nDATA_ENCRYPTION_KEY encrypts personal data at rest: make one with "
                     f"`{MAKE_DATA_ENCRYPTION_KEY}` and keep it in the platform's secret store, apart from the "
                     "backups.")
        locked = sorted({office for office in missing_channels.values() if office in cfg.unreadable_channels})
        if locked:
            hint += (f"\nThe channels store holds the channel of {', '.join(locked)}, but no key in "
                     "DATA_ENCRYPTION_KEY opens it: it was stored under another key. Put that key back into "
                     "DATA_ENCRYPTION_KEY (comma-separated, newest first: `<new>,<old>` until `flask --app app keys "
                     "rotate` has run), or store the channel again under the current key.")
        if any(office not in locked for office in missing_channels.values()):
            hint += ("\nA channel's secret and token come from the environment or from the channels store. To keep "
                     "them in the store, set the office's profile to `enabled: false`, run `flask --app app db "
                     "upgrade` and `flask --app app channels set --office <office> --secret-stdin --token-stdin`, "
                     "then set it back to `enabled: true` and restart.")
        raise ConfigError("production needs these settings: " + ", ".join(missing) + hint
                          + (f"\n{short}" if short else ""))
