"""The rich menu: areas that send the chat words, a picture LINE accepts, and `richmenu deploy`."""
from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import pytest

from bot import richmenu
from dialogs.router import WORD_TRIGGERS, normalise
from bot.render import load_vocabulary

WORDS = ["予約", "予約確認", "ヘルプ", "データ削除", "English", "やさしい日本語"]


def test_areas_send_the_chat_words_in_order():
    menu = richmenu.default_menu().request()
    actions = [area["action"] for area in menu["areas"]]
    assert [a["type"] for a in actions] == ["message"] * 6
    assert [a["text"] for a in actions] == WORDS
    assert len(menu["chatBarText"]) <= 14 and menu["selected"] is True


def test_every_area_word_is_a_word_the_bot_understands():
    vocabulary = load_vocabulary("ja")
    ids = [vocabulary.words.get(normalise(word)) for word in WORDS]
    assert ids == ["book", "status", "help", "delete_data", "lang_en", "lang_easy"]
    assert all(i in WORD_TRIGGERS for i in ids)


def test_areas_tile_the_menu_without_gaps_or_overlap():
    menu = richmenu.default_menu()
    covered = set()
    for area in menu.areas:
        assert area.x + area.width <= menu.width and area.y + area.height <= menu.height
        cell = {(x, y) for x in range(area.x, area.x + area.width, 50) for y in range(area.y, area.y + area.height, 50)}
        assert not covered & cell
        covered |= cell
    assert sum(a.width * a.height for a in menu.areas) == menu.width * menu.height


def test_shipped_picture_is_a_png_of_the_menus_size_under_1_mb():
    menu = richmenu.default_menu()
    picture = menu.picture()
    assert richmenu.png_size(picture) == (menu.width, menu.height)
    assert len(picture) <= richmenu.MAX_PICTURE_BYTES
    with pytest.raises(richmenu.RichMenuError):
        richmenu.check_picture(picture, 2500, 843)
    with pytest.raises(richmenu.RichMenuError):
        richmenu.check_picture(b"GIF89a" + b"\0" * 40, menu.width, menu.height)


def test_picture_page_draws_every_area():
    html = richmenu.picture_html()
    for area in richmenu.default_menu().areas:
        assert f">{area.text}<" in html and area.caption in html


# -- the command ------------------------------------------------------------------------------------------

def test_deploy_creates_uploads_on_the_data_host_and_sets_default(make_app, fake_line):
    port = urlsplit(fake_line.url).port
    app = make_app(line_api_data_base_url=f"http://localhost:{port}")  # same fake, told apart by Host
    result = app.test_cli_runner().invoke(args=["richmenu", "deploy", "sakata"])
    assert result.exit_code == 0, result.output
    menu_id = result.output.strip().splitlines()[-1]
    assert fake_line.default_rich_menu == menu_id
    entry = fake_line.rich_menus[menu_id]
    assert entry["menu"] == richmenu.default_menu().request()
    assert entry["image"] == richmenu.default_menu().picture() and entry["content_type"] == "image/png"
    hosts = {call.path.rsplit("/", 1)[-1]: call.headers["host"] for call in fake_line.calls if "richmenu" in call.path}
    assert hosts["content"] == f"localhost:{port}"
    assert hosts["richmenu"] == f"127.0.0.1:{port}"


def test_deploy_unknown_office_is_misuse(app, fake_line):
    result = app.test_cli_runner().invoke(args=["richmenu", "deploy", "nowhere"])
    assert result.exit_code == 2
    assert fake_line.rich_menus == {}


def test_deploy_to_a_disabled_office_says_to_enable_it_first(make_app, fake_line, tmp_path):
    """README's "Adding an office" ships a profile `enabled: false`; deploying its menu then names the fix."""
    import shutil

    from bot.config import DEFAULT_OFFICES_DIR

    folder = tmp_path / "offices"
    shutil.copytree(DEFAULT_OFFICES_DIR, folder)
    otaru = folder / "otaru.yaml"
    otaru.write_text(otaru.read_text(encoding="utf-8").replace("enabled: true", "enabled: false", 1),
                     encoding="utf-8")
    result = make_app(offices_dir=str(folder)).test_cli_runner().invoke(args=["richmenu", "deploy", "otaru"])
    assert result.exit_code == 2
    assert result.output.strip() == ("otaru is disabled (enabled: false in its profile): set `enabled: true`, "
                                     "restart, then deploy its rich menu")
    assert fake_line.rich_menus == {}


def test_readme_deploys_a_new_offices_menu_once_it_is_enabled():
    """`richmenu deploy` serves enabled offices only: README's go-live step for a new office enables it first."""
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## Adding an office\n", 1)[1].split("\n## ", 1)[0]
    step = section.split("6. **Go live**", 1)[1].split("\n\n", 1)[0]
    assert step.index("richmenu deploy <id>") > step.index("`enabled: true`")


def test_a_simulator_that_does_not_answer_names_the_port_setting(make_app):
    """In development the commands reach `dev`'s simulator through PUBLIC_BASE_URL: started with another
    --port, a command left at the default port is told which setting to give it."""
    nowhere = "http://127.0.0.1:1"   # nothing listens on port 1
    app = make_app(public_base_url=nowhere, line_api_base_url=f"{nowhere}/simulator/api",
                   line_api_data_base_url=f"{nowhere}/simulator/api")
    result = app.test_cli_runner().invoke(args=["richmenu", "deploy", "otaru"])
    assert result.exit_code == 1
    assert ("; in development this is the simulator: start `flask --app app dev`, and when it serves another "
            "--port, run this command with PUBLIC_BASE_URL=http://localhost:<port> (now http://127.0.0.1:1)") \
        in " ".join(result.output.split())


def test_a_command_run_without_app_env_beside_production_says_to_set_it(make_app, fake_line):
    """A Procfile gives APP_ENV=production to its processes only: a one-off command without it runs in
    development, where LINE is the simulator under PUBLIC_BASE_URL, and the production web process there answers
    404. The operator is told to run it with APP_ENV=production, not only that LINE refused."""
    app = make_app(public_base_url=fake_line.url, line_api_base_url=f"{fake_line.url}/simulator/api",
                   line_api_data_base_url=f"{fake_line.url}/simulator/api")
    result = app.test_cli_runner().invoke(args=["richmenu", "deploy", "otaru"])
    assert result.exit_code == 1
    said = " ".join(result.output.split())
    assert "http 404); this command ran in development (APP_ENV is not `production`)" in said
    assert "to reach LINE, run it with APP_ENV=production" in said


def test_deploy_fails_when_line_refuses(app, fake_line):
    fake_line.fail_next(500, path_contains="/richmenu")
    result = app.test_cli_runner().invoke(args=["richmenu", "deploy", "otaru"])
    assert result.exit_code == 1
    assert "http 500" in result.output


def _deploy(make_app, fake_line, office="sakata"):
    port = urlsplit(fake_line.url).port
    app = make_app(line_api_data_base_url=f"http://localhost:{port}")
    return app.test_cli_runner().invoke(args=["richmenu", "deploy", office])


@pytest.mark.parametrize("failing", ["/content", "/user/all/richmenu"])
def test_a_deploy_that_fails_after_creating_the_menu_removes_it_again(make_app, fake_line, failing):
    """The picture upload (or making it the default) fails: the menu just created on LINE is deleted, so
    LINE keeps no half-made menu and a rerun does not pile up another one."""
    fake_line.fail_next(status=500, path_contains=failing)
    result = _deploy(make_app, fake_line)
    assert result.exit_code == 1
    assert "http 500" in result.output
    assert "removed" in result.output
    assert fake_line.rich_menus == {} and fake_line.default_rich_menu is None
    deleted = [c for c in fake_line.calls if c.method == "DELETE" and "/richmenu/" in c.path]
    assert len(deleted) == 1

    rerun = _deploy(make_app, fake_line)
    assert rerun.exit_code == 0, rerun.output
    assert list(fake_line.rich_menus) == [fake_line.default_rich_menu]


def test_a_menu_that_cannot_be_removed_is_named_for_the_operator(make_app, fake_line):
    fake_line.fail_next(status=500, path_contains="/content")
    fake_line.fail_next(status=500, path_contains="/v2/bot/richmenu/richmenu-")
    result = _deploy(make_app, fake_line)
    assert result.exit_code == 1
    [left] = list(fake_line.rich_menus)
    assert left in result.output and "could not be removed" in result.output


def test_deploy_with_a_refused_token_names_the_setting(make_app, fake_line):
    fake_line.access_token = "the token LINE issued"
    try:
        result = make_app().test_cli_runner().invoke(args=["richmenu", "deploy", "otaru"])
    finally:
        fake_line.access_token = None
    assert result.exit_code == 1
    assert "http 401" in result.output and "LINE_CHANNEL_ACCESS_TOKEN_OTARU" in result.output
    assert "the token LINE issued" not in result.output and "dev-line-channel-access-token" not in result.output


def test_deploy_with_line_unreachable_names_the_address(make_app, fake_line):
    result = make_app(line_api_base_url="http://127.0.0.1:9", line_api_data_base_url="http://127.0.0.1:9",
                      line_timeout_seconds=0.5).test_cli_runner().invoke(args=["richmenu", "deploy", "otaru"])
    assert result.exit_code == 1
    assert "could not be reached at http://127.0.0.1:9" in result.output


def _foreign_menu(fake_line, name: str) -> str:
    """A menu someone else made on the account through the Messaging API (a campaign's, another tool's)."""
    menu_id = f"richmenu-{name}"
    fake_line.rich_menus[menu_id] = {"menu": dict(richmenu.default_menu().request(), name=name),
                                     "image": b"", "content_type": "image/png"}
    return menu_id


def test_a_deploy_deletes_the_menu_an_earlier_deploy_made_and_no_other(make_app, fake_line):
    """A redeploy (after changing the menu or its picture) leaves one menu of the app on LINE: the one before is
    deleted once the new one is the default, and the command says so. A menu of another name is not the app's."""
    campaign = _foreign_menu(fake_line, "campaign")
    first = _deploy(make_app, fake_line)
    assert first.exit_code == 0, first.output
    earlier = first.output.strip().splitlines()[-1]
    assert "deleted" not in first.output

    second = _deploy(make_app, fake_line)
    assert second.exit_code == 0, second.output
    menu_id = second.output.strip().splitlines()[-1]
    assert menu_id != earlier and fake_line.default_rich_menu == menu_id
    assert f"the earlier menu {earlier} was deleted" in second.output
    assert sorted(fake_line.rich_menus) == sorted([menu_id, campaign])
    deletes = [c.path for c in fake_line.calls if c.method == "DELETE"]
    assert deletes == [f"/v2/bot/richmenu/{earlier}"]


def test_an_earlier_menu_that_cannot_be_deleted_leaves_the_deploy_done(make_app, fake_line):
    """Deleting the earlier menu fails: the new one stays the default, the command ends well and names the menu
    left behind; the next deploy deletes it."""
    first = _deploy(make_app, fake_line)
    earlier = first.output.strip().splitlines()[-1]
    fake_line.fail_next(status=500, path_contains=f"/richmenu/{earlier}")
    second = _deploy(make_app, fake_line)
    assert second.exit_code == 0, second.output
    menu_id = second.output.strip().splitlines()[-1]
    assert fake_line.default_rich_menu == menu_id
    assert f"the earlier menu {earlier} could not be deleted" in " ".join(second.output.split())
    assert sorted(fake_line.rich_menus) == sorted([earlier, menu_id])

    third = _deploy(make_app, fake_line)
    assert third.exit_code == 0, third.output
    assert list(fake_line.rich_menus) == [fake_line.default_rich_menu]


def test_earlier_menus_that_cannot_be_listed_leave_the_deploy_done(make_app, fake_line):
    earlier = _deploy(make_app, fake_line).output.strip().splitlines()[-1]
    fake_line.fail_next(status=500, path_contains="/richmenu/list")
    second = _deploy(make_app, fake_line)
    assert second.exit_code == 0, second.output
    menu_id = second.output.strip().splitlines()[-1]
    assert fake_line.default_rich_menu == menu_id and earlier in fake_line.rich_menus
    assert "the earlier ones could not be listed" in " ".join(second.output.split())
