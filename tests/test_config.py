"""One config object from the environment: production's refusal, development keys, URLs, APP_FAKE_NOW."""
from __future__ import annotations

import subprocess
import sys
import threading
import time
import warnings
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from bot.clock import TOKYO, parse_instant
from bot.config import ConfigError, check_production, load_config, warn_unread_line_settings

ROOT = Path(__file__).resolve().parent.parent
pytestmark = [pytest.mark.filterwarnings("ignore:SQLite in production"),
              pytest.mark.filterwarnings("ignore:PUBLIC_BASE_URL is plain http")]
OFFICES = ["sakata", "otaru"]


def production_env(tmp_path, **extra) -> dict[str, str]:
    """Everything production needs, for both shipped offices."""
    env = {
        "APP_ENV": "production",
        "INSTANCE_PATH": str(tmp_path / "instance"),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'prod.sqlite3'}",
        "PUBLIC_BASE_URL": "https://madoguchi.example.jp",
        "SECRET_KEY": "s" * 64,
        "DATA_ENCRYPTION_KEY": Fernet.generate_key().decode(),
    }
    for office in OFFICES:
        env[f"LINE_CHANNEL_SECRET_{office.upper()}"] = f"secret-{office}"
        env[f"LINE_CHANNEL_ACCESS_TOKEN_{office.upper()}"] = f"token-{office}"
    env.update(extra)
    return env


REQUIRED = ["SECRET_KEY", "DATA_ENCRYPTION_KEY", "LINE_CHANNEL_SECRET_SAKATA", "LINE_CHANNEL_ACCESS_TOKEN_SAKATA",
            "LINE_CHANNEL_SECRET_OTARU", "LINE_CHANNEL_ACCESS_TOKEN_OTARU"]


# -- production ---------------------------------------------------------------------------------

def test_production_without_anything_names_every_missing_setting(tmp_path):
    cfg = load_config(environ={"APP_ENV": "production", "INSTANCE_PATH": str(tmp_path)})
    with pytest.raises(ConfigError) as refused:
        check_production(cfg, OFFICES)
    for name in REQUIRED:
        assert name in str(refused.value)
    assert not (tmp_path / "secret_key").exists()  # production never invents keys


@pytest.mark.parametrize("missing", REQUIRED)
def test_production_names_the_one_setting_missing(tmp_path, missing):
    env = production_env(tmp_path)
    del env[missing]
    cfg = load_config(environ=env)
    with pytest.raises(ConfigError) as refused:
        check_production(cfg, OFFICES)
    named = [name for name in REQUIRED if name in str(refused.value).replace(",", " ").split()]
    assert named == [missing]


def test_a_missing_key_is_refused_with_how_to_make_it(tmp_path):
    """The operator reading the refusal learns how to make each missing key, not only its name."""
    env = production_env(tmp_path)
    del env["SECRET_KEY"], env["DATA_ENCRYPTION_KEY"]
    with pytest.raises(ConfigError) as refused:
        check_production(load_config(environ=env), OFFICES)
    said = str(refused.value)
    assert "SECRET_KEY signs sessions and form links: make one with " \
           "`python3 -c 'import secrets; print(secrets.token_hex(32))'`." in said
    assert "DATA_ENCRYPTION_KEY encrypts personal data at rest: make one with `python3 -c 'from cryptography.fernet " \
           "import Fernet; print(Fernet.generate_key().decode())'`" in said
    assert "channels store" not in said  # every channel is set: no word about channels


def test_an_empty_value_counts_as_missing(tmp_path):
    cfg = load_config(environ=production_env(tmp_path, SECRET_KEY=""))
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        check_production(cfg, OFFICES)


def test_production_with_everything_starts(tmp_path):
    cfg = load_config(environ=production_env(tmp_path))
    check_production(cfg, OFFICES)
    assert cfg.is_production
    assert cfg.line_api_base_url == "https://api.line.me"
    assert cfg.line_api_data_base_url == "https://api-data.line.me"
    assert cfg.channel_secret("sakata") == "secret-sakata"
    assert cfg.channel_token("otaru") == "token-otaru"


def test_only_enabled_offices_need_their_channel(tmp_path):
    env = production_env(tmp_path)
    del env["LINE_CHANNEL_SECRET_OTARU"], env["LINE_CHANNEL_ACCESS_TOKEN_OTARU"]
    check_production(load_config(environ=env), ["sakata"])


def test_nothing_else_makes_production_refuse(tmp_path):
    env = production_env(tmp_path, PUBLIC_BASE_URL="http://plain.example.jp")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cfg = load_config(environ=env)
    check_production(cfg, OFFICES)
    said = " ".join(str(w.message) for w in caught)
    assert "SQLite" in said and "http" in said


def test_production_has_no_placeholders(tmp_path):
    cfg = load_config(environ={"APP_ENV": "production", "INSTANCE_PATH": str(tmp_path)})
    assert cfg.channel_secret("sakata") is None and cfg.channel_token("sakata") is None


def test_create_app_refuses_production_naming_what_is_missing(tmp_path, monkeypatch):
    from app import create_app

    env = production_env(tmp_path)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("SECRET_KEY")
    monkeypatch.delenv("LINE_CHANNEL_ACCESS_TOKEN_OTARU")
    with pytest.raises(ConfigError) as refused:
        create_app()
    assert "SECRET_KEY" in str(refused.value) and "LINE_CHANNEL_ACCESS_TOKEN_OTARU" in str(refused.value)
    assert "DATA_ENCRYPTION_KEY" not in str(refused.value)


def test_create_app_in_production_with_its_secrets(tmp_path, monkeypatch):
    from app import create_app

    for name, value in production_env(tmp_path).items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("APP_FAKE_NOW", raising=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        app = create_app()
    rt = app.extensions["madoguchi"]
    try:
        assert rt.config.is_production
        assert app.config["SESSION_COOKIE_SECURE"] is True
        assert app.config["SESSION_COOKIE_NAME"] == "__Host-session"
        assert app.test_client().get("/simulator").status_code == 404
    finally:
        rt.db.dispose()


def test_app_fake_now_is_refused_in_production(tmp_path):
    with pytest.raises(ConfigError, match="APP_FAKE_NOW"):
        load_config(environ=production_env(tmp_path, APP_FAKE_NOW="2026-12-07T13:55"))
    with pytest.raises(ConfigError, match="APP_FAKE_NOW"):
        load_config({"app_env": "production", "fake_now": "2026-12-07T13:55"}, environ=production_env(tmp_path))


def test_app_env_must_be_known(tmp_path):
    with pytest.raises(ConfigError, match="APP_ENV"):
        load_config(environ={"APP_ENV": "staging", "INSTANCE_PATH": str(tmp_path)})


def test_a_data_key_that_is_not_fernet_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="DATA_ENCRYPTION_KEY"):
        load_config(environ=production_env(tmp_path, DATA_ENCRYPTION_KEY="not-a-key"))


def test_a_broken_key_among_several_is_named_by_position_and_length_never_by_value(tmp_path):
    """Rotation puts two keys in one setting; one cut at its trailing '=' (a shell's `cut -d=`) must be findable."""
    new, old = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    with pytest.raises(ConfigError) as refused:
        load_config(environ=production_env(tmp_path, DATA_ENCRYPTION_KEY=f"{new},{old[:-1]}"))
    message = str(refused.value)
    assert "key 2 of 2" in message and "43 characters" in message and "44" in message
    assert old[:-1] not in message and new not in message


def test_several_data_keys_newest_first(tmp_path):
    new, old = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    cfg = load_config(environ=production_env(tmp_path, DATA_ENCRYPTION_KEY=f" {new} , {old} ,"))
    assert cfg.data_encryption_keys == (new, old)


# -- development --------------------------------------------------------------------------------

def test_development_has_safe_defaults(tmp_path):
    cfg = load_config(environ={"INSTANCE_PATH": str(tmp_path)})
    assert cfg.app_env == "development"
    assert cfg.database_url == f"sqlite:///{tmp_path / 'madoguchi.sqlite3'}"
    assert cfg.line_api_base_url == "http://localhost:5000/simulator/api"
    assert cfg.public_base_url == "http://localhost:5000"
    assert cfg.channel_secret("sakata") and cfg.channel_secret("sakata") != cfg.channel_secret("otaru")
    check_production(cfg, OFFICES)  # development never refuses


def test_development_line_urls_follow_public_base_url_and_offices_default_to_the_shipped_ones(tmp_path):
    """interface.md: in development both LINE API base URLs are the app's own fake, `<PUBLIC_BASE_URL>/simulator/api`
    (the data API by the same rule); OFFICES_DIR defaults to the shipped profiles, and another folder is taken."""
    cfg = load_config(environ={"INSTANCE_PATH": str(tmp_path), "PUBLIC_BASE_URL": "http://localhost:8000/"})
    assert cfg.public_base_url == "http://localhost:8000"
    assert cfg.line_api_base_url == "http://localhost:8000/simulator/api"
    assert cfg.line_api_data_base_url == "http://localhost:8000/simulator/api"
    assert cfg.offices_dir == ROOT / "dialogs" / "offices"
    assert {"sakata.yaml", "otaru.yaml"} <= {p.name for p in cfg.offices_dir.glob("*.yaml")}
    elsewhere = load_config(environ={"INSTANCE_PATH": str(tmp_path), "OFFICES_DIR": str(tmp_path / "offices")})
    assert elsewhere.offices_dir == tmp_path / "offices"


def test_the_environment_wins_over_placeholders(tmp_path):
    cfg = load_config(environ={"INSTANCE_PATH": str(tmp_path), "LINE_CHANNEL_SECRET_SAKATA": "real",
                               "LINE_STAFF_GROUP_ID_SAKATA": "C" + "1" * 32, "LINE_BASIC_ID_OTARU": "@otaru"})
    assert cfg.channel_secret("sakata") == "real"
    assert cfg.staff_group_id("sakata") == "C" + "1" * 32 and cfg.staff_group_id("otaru") is None
    assert cfg.basic_id("otaru") == "@otaru" and cfg.basic_id("sakata") is None


def test_development_keys_are_created_once_and_kept(tmp_path):
    first = load_config(environ={"INSTANCE_PATH": str(tmp_path)})
    again = load_config(environ={"INSTANCE_PATH": str(tmp_path)})
    assert first.secret_key and first.secret_key == again.secret_key
    assert first.data_encryption_keys == again.data_encryption_keys
    Fernet(first.data_encryption_keys[0].encode())
    for name in ("secret_key", "data_encryption_key"):
        assert (tmp_path / name).stat().st_mode & 0o077 == 0  # readable by the owner only
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data_encryption_key", "secret_key"]


def test_an_instance_folder_that_cannot_be_made_is_named(tmp_path):
    """Development keeps its keys under INSTANCE_PATH: a folder that cannot be made was an OSError traceback."""
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(ConfigError, match=r"^INSTANCE_PATH: cannot create .*a-file/instance .*choose a writable"):
        load_config(environ={"INSTANCE_PATH": str(blocker / "instance")})


def test_development_keys_racing_threads_agree(tmp_path):
    results: list[tuple] = []
    barrier = threading.Barrier(8)

    def load():
        barrier.wait(timeout=10)
        cfg = load_config(environ={"INSTANCE_PATH": str(tmp_path / "instance")})
        results.append((cfg.secret_key, cfg.data_encryption_keys))

    threads = [threading.Thread(target=load) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert len(results) == 8 and len(set(results)) == 1
    assert sorted(p.name for p in (tmp_path / "instance").iterdir()) == ["data_encryption_key", "secret_key"]


def test_development_keys_racing_processes_agree(tmp_path):
    instance = tmp_path / "instance"
    code = ("import sys; from bot.config import load_config; "
            "c = load_config(environ={'INSTANCE_PATH': sys.argv[1]}); print(c.secret_key, c.data_encryption_keys[0])")
    procs = [subprocess.Popen([sys.executable, "-c", code, str(instance)], cwd=ROOT, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE) for _ in range(4)]
    outputs = []
    for proc in procs:
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err.decode()
        outputs.append(out.decode().strip())
    assert len(set(outputs)) == 1 and outputs[0]
    assert sorted(p.name for p in instance.iterdir()) == ["data_encryption_key", "secret_key"]


# -- URLs ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("given,expected", [
    ("postgres://u:p@db.example:5432/mado", "postgresql+psycopg://u:p@db.example:5432/mado"),
    ("postgresql://u@localhost/mado", "postgresql+psycopg://u@localhost/mado"),
    ("postgresql+psycopg://u@localhost/mado", "postgresql+psycopg://u@localhost/mado"),
    ("sqlite:////var/lib/mado.sqlite3", "sqlite:////var/lib/mado.sqlite3"),
])
def test_database_urls_are_normalised(tmp_path, given, expected):
    assert load_config(environ={"INSTANCE_PATH": str(tmp_path), "DATABASE_URL": given}).database_url == expected
    assert load_config({"database_url": given}, environ={"INSTANCE_PATH": str(tmp_path)}).database_url == expected


def test_line_api_urls_point_elsewhere_without_a_trailing_slash(tmp_path):
    cfg = load_config(environ={"INSTANCE_PATH": str(tmp_path), "LINE_API_BASE_URL": "http://127.0.0.1:9/",
                               "LINE_API_DATA_BASE_URL": "http://127.0.0.1:10/"})
    assert (cfg.line_api_base_url, cfg.line_api_data_base_url) == ("http://127.0.0.1:9", "http://127.0.0.1:10")


def test_unknown_overrides_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="unknown"):
        load_config({"databse_url": "sqlite://"}, environ={"INSTANCE_PATH": str(tmp_path)})


def test_importing_app_has_no_side_effects(tmp_path):
    instance = tmp_path / "instance"
    code = "import app; assert 'app' not in vars(app); print(app.create_app.__name__)"
    env = {"INSTANCE_PATH": str(instance), "PATH": "/usr/bin:/bin", "APP_ENV": "bogus"}
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr.decode()
    assert not instance.exists()


# -- APP_FAKE_NOW -------------------------------------------------------------------------------

def test_fake_now_without_an_offset_is_tokyo_time():
    assert parse_instant("2026-12-07T13:55") == datetime(2026, 12, 7, 13, 55, tzinfo=TOKYO)
    assert parse_instant("2026-12-07T04:55:00+00:00") == datetime(2026, 12, 7, 13, 55, tzinfo=TOKYO)


def test_a_fake_now_that_is_not_a_time_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="APP_FAKE_NOW"):
        load_config(environ={"INSTANCE_PATH": str(tmp_path), "APP_FAKE_NOW": "soon"})


def test_app_fake_now_starts_the_clock_there_and_it_keeps_running(tmp_path, database_url, monkeypatch):
    from app import create_app

    start = datetime(2027, 1, 4, 9, 0, tzinfo=TOKYO)
    monkeypatch.setenv("APP_FAKE_NOW", "2027-01-04T09:00")
    settings = {"database_url": database_url, "instance_path": str(tmp_path / "instance")}
    first = create_app(settings).extensions["madoguchi"]
    apps = [first]
    try:
        began = first.clock.now()
        assert start <= began < start + timedelta(minutes=1)
        time.sleep(0.3)
        # A process starting later with the same setting keeps the running clock (no jump back).
        second = create_app(settings).extensions["madoguchi"]
        apps.append(second)
        assert second.clock.now() >= start + timedelta(seconds=0.3)
        assert first.clock.now() > began
        # The worker and every web process read the same clock.
        assert abs((second.clock.now() - first.clock.now()).total_seconds()) < 5
    finally:
        for rt in apps:
            rt.db.dispose()


def test_a_new_app_fake_now_moves_the_clock_again(tmp_path, database_url, monkeypatch):
    from app import create_app

    settings = {"database_url": database_url, "instance_path": str(tmp_path / "instance")}
    monkeypatch.setenv("APP_FAKE_NOW", "2027-01-04T09:00")
    first = create_app(settings).extensions["madoguchi"]
    monkeypatch.setenv("APP_FAKE_NOW", "2027-03-01T15:00+09:00")
    second = create_app(settings).extensions["madoguchi"]
    try:
        moved = datetime(2027, 3, 1, 15, 0, tzinfo=TOKYO)
        assert moved <= second.clock.now() < moved + timedelta(minutes=1)
    finally:
        first.db.dispose()
        second.db.dispose()


@pytest.mark.parametrize("value", ["madoguchi.example.jp", "madoguchi.example.jp/", "https://", "ftp://madoguchi.example.jp",
                                   "//madoguchi.example.jp"])
@pytest.mark.parametrize("env", ["production", "development"])
def test_a_public_base_url_without_scheme_or_host_is_refused_naming_the_setting(tmp_path, value, env):
    """The operator forgot `https://`: every link in the chat would be broken (and LINE refuses a button that opens
    one), so the start is refused, naming the setting and the form it takes."""
    environ = production_env(tmp_path, PUBLIC_BASE_URL=value, APP_ENV=env)
    with pytest.raises(ConfigError) as refused:
        load_config(environ=environ)
    assert "PUBLIC_BASE_URL must be the bot's address with its scheme, e.g. https://madoguchi.example.jp" in str(
        refused.value)


@pytest.mark.parametrize("value", ["https://madoguchi.example.jp", "https://madoguchi.example.jp/",
                                   "http://localhost:8000", "https://example.jp/madoguchi"])
def test_a_public_base_url_with_scheme_and_host_is_taken(tmp_path, value):
    assert load_config(environ=production_env(tmp_path, PUBLIC_BASE_URL=value)).public_base_url == value.rstrip("/")


@pytest.mark.parametrize("value, hops", [("", 0), ("0", 0), ("1", 1), (" 2 ", 2)])
def test_trusted_proxy_hops(tmp_path, value, hops):
    assert load_config(environ={"INSTANCE_PATH": str(tmp_path), "TRUSTED_PROXY_HOPS": value}).trusted_proxy_hops == hops


@pytest.mark.parametrize("value", ["-1", "one", "6", "1.5"])
def test_trusted_proxy_hops_refuses_what_it_cannot_mean(tmp_path, value):
    with pytest.raises(ConfigError, match="TRUSTED_PROXY_HOPS"):
        load_config(environ={"INSTANCE_PATH": str(tmp_path), "TRUSTED_PROXY_HOPS": value})


def test_production_warnings_judge_the_settings_in_force():
    """The SQLite and plain-http warnings look at the configuration as finally set, overrides included."""
    environ = {"APP_ENV": "production", "SECRET_KEY": "s" * 64}   # no DATABASE_URL, no PUBLIC_BASE_URL
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        load_config({"database_url": "postgresql://db.example/madoguchi"}, environ=environ)
    said = [str(w.message) for w in caught]
    assert not any("SQLite" in s for s in said) and any("plain http" in s for s in said)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        load_config({}, environ={**environ, "PUBLIC_BASE_URL": "https://madoguchi.example.jp"})
    said = [str(w.message) for w in caught]
    assert any("SQLite" in s for s in said) and not any("plain http" in s for s in said)


def test_the_plain_http_warning_says_what_uses_the_address_and_how_to_fix_it():
    """Unset in production, PUBLIC_BASE_URL sends every form and terms link to localhost: the warning says so."""
    environ = {"APP_ENV": "production", "DATABASE_URL": "postgresql://db.example/madoguchi"}
    for given, shown in ((None, "(http://localhost:5000, the default: it is not set)"),
                         ("http://madoguchi.example.jp", "(http://madoguchi.example.jp)")):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            load_config(environ={**environ, **({"PUBLIC_BASE_URL": given} if given else {})})
        [said] = [str(w.message) for w in caught]
        assert said == (f"PUBLIC_BASE_URL is plain http in production {shown}: the links to the details form, the "
                        "terms and the dashboard use it; serve the bot over https and set it to that https:// address "
                        "(staff cannot log in over plain http: the session cookie is https-only)")


def test_the_refusals_make_keys_the_way_readme_does():
    """README's "Keys and their rotation" and the refusals give the same commands for making each key."""
    from bot.config import MAKE_DATA_ENCRYPTION_KEY, MAKE_SECRET_KEY

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert f"`{MAKE_SECRET_KEY}`" in readme and f"`{MAKE_DATA_ENCRYPTION_KEY}`" in readme


@pytest.mark.parametrize("key", ["changeme", "s" * 31])
def test_production_refuses_a_secret_key_short_enough_to_guess(tmp_path, key):
    """SECRET_KEY signs the sessions and form links and keys the search hash of job seeker numbers: a short one
    could be guessed, and a copy of the database would then give the numbers back. The refusal says how long it
    is and how to make one, never the value."""
    with pytest.raises(ConfigError) as refused:
        check_production(load_config(environ=production_env(tmp_path, SECRET_KEY=key)), OFFICES)
    said = str(refused.value)
    assert f"SECRET_KEY is too short for production: {len(key)} characters, at least 32" in said
    assert "secrets.token_hex(32)" in said and key not in said
    env = production_env(tmp_path, SECRET_KEY=key)
    del env["DATA_ENCRYPTION_KEY"]                         # said together with what is missing
    with pytest.raises(ConfigError) as both:
        check_production(load_config(environ=env), OFFICES)
    assert "DATA_ENCRYPTION_KEY" in str(both.value) and "SECRET_KEY is too short" in str(both.value)
    check_production(load_config(environ=production_env(tmp_path, SECRET_KEY="s" * 32)), OFFICES)


@pytest.mark.parametrize("env", ["production", "development"])
def test_a_relative_instance_path_is_the_folder_under_the_working_directory(tmp_path, monkeypatch, env):
    """`INSTANCE_PATH=instance` as an operator writes it: Flask takes only an absolute instance path and would stop
    every command and the web process with a ValueError traceback; the folder is the one under the directory the
    command runs in, as a relative `DATABASE_URL` or `OFFICES_DIR` is."""
    from app import create_app

    monkeypatch.chdir(tmp_path)
    for name, value in production_env(tmp_path, APP_ENV=env, INSTANCE_PATH="instance").items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("APP_FAKE_NOW", raising=False)
    assert load_config().instance_path == tmp_path / "instance"
    app = create_app()
    try:
        assert app.instance_path == str(tmp_path / "instance")
    finally:
        app.extensions["madoguchi"].db.dispose()


@pytest.mark.parametrize("setting", ["LINE_API_BASE_URL", "LINE_API_DATA_BASE_URL"])
@pytest.mark.parametrize("value", ["api.line.me", "api-data.line.me/", "https://", "ftp://api.line.me"])
@pytest.mark.parametrize("env", ["production", "development"])
def test_a_line_api_url_without_scheme_or_host_is_refused_naming_the_setting(tmp_path, setting, value, env):
    """`LINE_API_BASE_URL=api.line.me`: the LINE SDK's HTTP library takes an address without a scheme as plain
    http, so every call would carry the channel access token unencrypted (or fail to connect, logged per
    message): the start is refused, naming the setting, as with PUBLIC_BASE_URL."""
    with pytest.raises(ConfigError) as refused:
        load_config(environ=production_env(tmp_path, APP_ENV=env, **{setting: value}))
    assert f"{setting} must be" in str(refused.value) and "https://" in str(refused.value)


@pytest.mark.parametrize("typo", ["LINE_STAFF_GROUP_ID_SAKTA", "LINE_STAFF_GROUP_SAKATA", "LINE_BASIC_ID_KUSHIRO",
                                  "LINE_CHANNEL_TOKEN_OTARU", "LINE_API_URL"])
def test_a_line_setting_nothing_reads_is_warned_of_by_name_never_by_value(tmp_path, typo):
    """A typo in a setting production does not require (the staff group, the basic id) was ignored without a word:
    the staff group was then never told and the operator could not tell why. Nothing refuses (interface.md), but
    the start warns, naming the setting and the names that are read; the value may be a secret and is not shown."""
    cfg = load_config(environ=production_env(tmp_path, **{typo: "@secretvalue0123"}))
    with pytest.warns(UserWarning) as warned:
        warn_unread_line_settings(cfg, OFFICES)
    [said] = [str(w.message) for w in warned]
    assert typo in said and "LINE_STAFF_GROUP_ID_<OFFICE>" in said and "otaru, sakata" in said
    assert "@secretvalue0123" not in said


def test_a_setting_warning_is_printed_as_its_message_alone(tmp_path):
    """An operator reading a command's output or the web log saw each warning as Python prints one: a path into
    bot/config.py, `UserWarning`, then a line of its source. It reads `warning: <message>`, nothing else."""
    code = "from bot.config import load_config, warn_unread_line_settings as w; w(load_config(), ['sakata'])"
    env = {**production_env(tmp_path, PUBLIC_BASE_URL="http://madoguchi.example.jp", LINE_BASIC_ID_SAKTA="@x"),
           "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr.decode()
    lines = done.stderr.decode().splitlines()
    assert [line[:40] for line in lines] == ["warning: PUBLIC_BASE_URL is plain http i",
                                             "warning: SQLite in production: fine for ",
                                             "warning: LINE settings that nothing read"]


def test_the_line_settings_read_are_not_warned_of(tmp_path):
    env = production_env(tmp_path, LINE_STAFF_GROUP_ID_SAKATA="C1", LINE_BASIC_ID_OTARU="@otaru",
                         LINE_API_BASE_URL="https://api.line.me", LINE_API_DATA_BASE_URL="https://api-data.line.me",
                         LINE_CHANNEL_SECRET_KUSHIRO="s", LINE_CHANNEL_ACCESS_TOKEN_KUSHIRO="t")
    cfg = load_config(environ=env)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warn_unread_line_settings(cfg, OFFICES + ["kushiro"])  # a disabled office's too


def test_create_app_warns_of_a_line_setting_nothing_reads(tmp_path, monkeypatch):
    from app import create_app

    for name, value in production_env(tmp_path, LINE_STAFF_GROUP_ID_SAKTA="C1").items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("APP_FAKE_NOW", raising=False)
    with pytest.warns(UserWarning, match="LINE_STAFF_GROUP_ID_SAKTA"):
        app = create_app()
    app.extensions["madoguchi"].db.dispose()


@pytest.mark.parametrize("value", ["123abcde", "https://lin.ee/AbCdEf", "@ 123abcde", "＠123abcde"])
@pytest.mark.parametrize("env", ["production", "development"])
def test_a_basic_id_without_its_at_sign_is_refused_naming_the_setting(tmp_path, value, env):
    """The 「LINEに戻る」 link is `https://line.me/R/oaMessage/<basic id>/?…`: the ID without its `@` (or the
    account's URL) opens no chat, and each completion page would show a link that does nothing."""
    with pytest.raises(ConfigError) as refused:
        load_config(environ=production_env(tmp_path, APP_ENV=env, LINE_BASIC_ID_SAKATA=value))
    assert "LINE_BASIC_ID_SAKATA must be the account's basic ID with its @, e.g. @123abcde" in str(refused.value)


@pytest.mark.parametrize("value", ["@123abcde", "@madoguchi", "@hw.sakata-1"])
def test_a_basic_or_premium_id_is_taken(tmp_path, value):
    assert load_config(environ=production_env(tmp_path, LINE_BASIC_ID_SAKATA=value)).basic_id("sakata") == value
