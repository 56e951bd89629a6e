"""The channels store: encrypted credentials beside the environment, which always wins."""
from __future__ import annotations

import pytest
from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy import select

from bot import channels
from bot.config import ConfigError

pytestmark = pytest.mark.filterwarnings("ignore:PUBLIC_BASE_URL is plain http", "ignore:SQLite in production")

SECRET = "stored-secret-0123456789abcdef"
TOKEN = "stored-token-" + "x" * 40


@pytest.fixture
def production(make_app, rt, fake_line):
    """Build a production app on the same database and keys as the development `rt`."""
    def build(env: dict[str, str] | None = None):
        return make_app(app_env="production", secret_key="s" * 32,
                        data_encryption_keys=rt.config.data_encryption_keys, env=dict(env or {}))
    return build


def store(rt, office: str, **values: str) -> None:
    with rt.db.transaction() as s:
        channels.put(s, rt.config.data_encryption_keys, office, values, rt.clock.now())


def store_all(rt) -> None:
    for office in rt.offices:
        store(rt, office, secret=f"{SECRET}-{office}", token=f"{TOKEN}-{office}")


def test_production_refuses_without_a_channel_and_starts_with_a_stored_one(rt, production):
    with pytest.raises(ConfigError) as refused:
        production()
    assert "LINE_CHANNEL_SECRET_SAKATA" in str(refused.value)
    assert "LINE_CHANNEL_ACCESS_TOKEN_OTARU" in str(refused.value)

    store_all(rt)
    cfg = production().extensions["madoguchi"].config
    assert cfg.channel_secret("sakata") == f"{SECRET}-sakata"
    assert cfg.channel_token("otaru") == f"{TOKEN}-otaru"
    assert SECRET not in repr(cfg)


def test_the_environment_wins_setting_by_setting(rt, production):
    store_all(rt)
    cfg = production({"LINE_CHANNEL_SECRET_SAKATA": "from-env"}).extensions["madoguchi"].config
    assert cfg.channel_secret("sakata") == "from-env"
    assert cfg.channel_token("sakata") == f"{TOKEN}-sakata"


def test_a_partial_store_still_refuses_naming_what_is_missing(rt, production):
    store_all(rt)
    with rt.db.transaction() as s:
        channels.remove(s, "otaru")
    store(rt, "otaru", secret="only-the-secret")
    with pytest.raises(ConfigError) as refused:
        production()
    assert str(refused.value).splitlines()[0].endswith(": LINE_CHANNEL_ACCESS_TOKEN_OTARU")  # the secret is there


def test_a_store_the_keys_cannot_open_is_named_as_a_key_problem(rt, make_app):
    """The old key dropped from DATA_ENCRYPTION_KEY too early (a rotation, a backup restored under another key):
    the store is there, its channels are not readable. The refusal says which key to put back, not to store the
    channels again as if there were none."""
    store_all(rt)
    other_key = Fernet.generate_key().decode()
    with pytest.raises(ConfigError) as refused:
        make_app(app_env="production", secret_key="s" * 32, data_encryption_keys=(other_key,), env={})
    message = str(refused.value)
    assert "LINE_CHANNEL_SECRET_SAKATA" in message and "LINE_CHANNEL_ACCESS_TOKEN_OTARU" in message
    assert "channels store holds the channel of otaru, sakata, but no key in DATA_ENCRYPTION_KEY opens it" in message
    assert "`<new>,<old>`" in message
    assert "enabled: false" not in message   # not the way to a store that has them already
    assert other_key not in message and SECRET not in message


def test_a_signed_webhook_is_verified_with_the_stored_secret(rt, production, fake_line):
    from tests.lineuser import LineUser

    store_all(rt)
    app = production()
    user = LineUser(app.test_client(), "sakata", channel_secret=f"{SECRET}-sakata", fake=fake_line)
    assert user.says("ヘルプ").status_code == 200
    forged = LineUser(app.test_client(), "sakata", channel_secret="dev-line-channel-secret-sakata")
    assert forged.says("ヘルプ").status_code == 400
    assert len(fake_line.deliveries("reply")) == 1  # only the genuine event was answered


def test_values_are_encrypted_at_rest_and_survive_key_rotation(rt):
    store(rt, "sakata", secret=SECRET, token=TOKEN)
    with rt.db.reading() as s:
        blob = s.scalar(select(channels.ChannelCredentials.credentials))
    assert SECRET.encode() not in bytes(blob) and TOKEN.encode() not in bytes(blob)

    old = list(rt.config.data_encryption_keys)
    rotated = [Fernet.generate_key().decode(), *old]
    with rt.db.reading() as s:
        assert channels.stored(s, rotated)["sakata"] == {"secret": SECRET, "token": TOKEN}
    with rt.db.transaction() as s:
        assert channels.reencrypt(s, rotated) == 1
    with rt.db.reading() as s:
        assert channels.stored(s, rotated[:1])["sakata"]["token"] == TOKEN
        assert channels.stored(s, old) == {}  # the retired key no longer opens it
        blob = s.scalar(select(channels.ChannelCredentials.credentials))
    with pytest.raises(InvalidToken):
        Fernet(old[0].encode()).decrypt(bytes(blob))


def test_setting_one_value_keeps_the_other(rt):
    store(rt, "sakata", secret=SECRET, token=TOKEN)
    store(rt, "sakata", token="new-token")
    with rt.db.reading() as s:
        assert channels.stored(s, rt.config.data_encryption_keys)["sakata"] == {"secret": SECRET,
                                                                               "token": "new-token"}


def test_cli_sets_lists_and_deletes_without_showing_values(app, rt):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["channels", "set", "--office", "otaru", "--secret-stdin", "--token-stdin"],
                           input=f"{SECRET}\n{TOKEN}\n")
    assert result.exit_code == 0, result.output
    assert SECRET not in result.output and TOKEN not in result.output
    with rt.db.reading() as s:
        assert channels.stored(s, rt.config.data_encryption_keys)["otaru"] == {"secret": SECRET, "token": TOKEN}

    listing = runner.invoke(args=["channels", "list"])
    assert listing.exit_code == 0
    otaru_line = next(line for line in listing.output.splitlines() if line.startswith("otaru"))
    assert otaru_line.split()[1:4] == ["yes", "store", "store"]
    assert SECRET not in listing.output

    assert runner.invoke(args=["channels", "delete", "--office", "otaru"]).exit_code == 0
    assert runner.invoke(args=["channels", "delete", "--office", "otaru"]).exit_code == 1


def test_readme_stores_the_secret_and_the_token_each_in_its_place(app, rt):
    """README's `channels set` line, as an operator pastes it: the secret goes first, the token second."""
    import re
    import shlex
    import subprocess
    from pathlib import Path

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    [line] = [span for span in re.findall(r"`([^`\n]+)`", readme) if "| flask --app app channels set" in span]
    feed, command = line.split(" | ", 1)
    piped = subprocess.run(["bash", "-c", feed], env={"SECRET": SECRET, "TOKEN": TOKEN}, capture_output=True,
                           text=True, check=True).stdout
    result = app.test_cli_runner().invoke(args=shlex.split(command)[3:], input=piped)
    assert result.exit_code == 0, result.output
    with rt.db.reading() as s:
        assert channels.stored(s, rt.config.data_encryption_keys)["sakata"] == {"secret": SECRET, "token": TOKEN}
    help_text = app.test_cli_runner().invoke(args=["channels", "set", "--help"]).output
    assert "the line after the secret's" in " ".join(help_text.split())


@pytest.mark.parametrize("args, stdin", [
    (["--office", "nowhere", "--secret-stdin"], "x\n"),      # unknown office
    (["--office", "sakata"], ""),                             # nothing to read
    (["--office", "sakata", "--secret-stdin", "--token-stdin"], "only-one-line\n"),
    (["--office", "sakata", "--token-stdin"], "\n"),          # empty value
])
def test_cli_misuse_exits_2_and_stores_nothing(app, rt, args, stdin):
    result = app.test_cli_runner().invoke(args=["channels", "set", *args], input=stdin)
    assert result.exit_code == 2
    with rt.db.reading() as s:
        assert channels.listing(s) == {}
