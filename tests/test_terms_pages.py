"""GET /terms/<office> and /terms/<office>/<version>: the offices' terms as readable, mobile-friendly pages."""
from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.config import DEFAULT_OFFICES_DIR
from bot.models import TermsVersion
from tests.conftest import DEFAULT_NOW
from tests.intake_walk import Chat

VIEWPORT = '<meta name="viewport" content="width=device-width, initial-scale=1">'


def page(client, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200, url
    assert response.mimetype == "text/html"
    return response.get_data(as_text=True)


def test_shipped_versions_are_seeded(rt):
    with rt.db.reading() as s:
        rows = {(v.office_id, v.version): v.body is not None for v in s.scalars(select(TermsVersion))}
    assert rows == {("sakata", "2022-07-01"): False, ("sakata", "2022-09-15"): False,
                    ("sakata", "2023-11-01"): True, ("otaru", "2023-10-01"): True}


@pytest.mark.parametrize("url", ["/terms/sakata", "/terms/sakata/2023-11-01"])
def test_sakata_current_terms(client, url):
    html = page(client, url)
    assert VIEWPORT in html and '<html lang="ja">' in html
    assert "2023-11-01版" in html and "（現在の版）" in html
    for words in ["ハローワーク酒田オンライン職業相談利用規約", "第2条（対象者）", "マザーズコーナー",
                  "第14条（準拠法及び合意管轄裁判所）", "山形地方裁判所", "令和5年11月1日改訂"]:
        assert words in html
    assert "さかたまザース" not in html


@pytest.mark.parametrize("version", ["2022-07-01", "2022-09-15"])
def test_a_version_known_by_date_only_says_so_and_links_the_current_one(client, version):
    html = page(client, f"/terms/sakata/{version}")
    assert f"この版（{version}）の本文は、このサイトでは保管していません" in html
    assert '<a href="/terms/sakata">現在の利用規約はこちら</a>' in html
    assert "第1条" not in html


def test_otaru_shows_only_the_terms_not_the_notice(client):
    html = page(client, "/terms/otaru")
    assert VIEWPORT in html and "2023-10-01版" in html
    for words in ["小樽公共職業安定所オンライン職業相談利用規約", "ZOOM サービス規約", "札幌地方・家庭裁判所小樽支部",
                  "附則", "令和5年10月1日より施行"]:
        assert words in html
    for notice_only in ["オンライン職業相談のお知らせ", "おすすめ利用法", "ご利用の流れ", "部門コード", "41#",
                        "s-otaru.sm@hkdrdk.go.jp", "フリーWi-Fi"]:
        assert notice_only not in html


def test_the_version_list_links_every_version(client):
    html = page(client, "/terms/sakata")
    links = re.findall(r'href="(/terms/sakata/[^"]+)"', html)
    assert links == ["/terms/sakata/2023-11-01", "/terms/sakata/2022-09-15", "/terms/sakata/2022-07-01"]
    for link in links:
        page(client, link)


@pytest.mark.parametrize("url", [
    "/terms/sakata/2021-01-01",            # a date, but no such version
    "/terms/otaru/2023-11-01",             # Sakata's version, not Otaru's
    "/terms/sakata/latest",                # not a date
    "/terms/sakata/2023-13-01",
    "/terms/sakata/2023-02-30",
    "/terms/sakata/2023-1-1",
    "/terms/sakata/20231101",
    "/terms/sakata/2023-11-01x",
    "/terms/sakata/%EF%BC%92%EF%BC%90%EF%BC%92%EF%BC%93-%EF%BC%91%EF%BC%91-%EF%BC%90%EF%BC%91",  # full-width
    "/terms/sakata/' OR 1=1 --",
    "/terms/nowhere",
    "/terms/Sakata",
])
def test_unknown_offices_and_versions_are_404(client, url):
    assert client.get(url).status_code == 404


def test_a_future_version_is_shown_as_such_and_the_current_one_stays(rt, client):
    with rt.db.transaction() as s:
        s.add(TermsVersion(office_id="sakata", version="2027-01-01", body="# 新しい規約\n\n<script>x</script>",
                           summary="変更点", published_at=DEFAULT_NOW))
    assert "2023-11-01版" in page(client, "/terms/sakata")
    html = page(client, "/terms/sakata/2027-01-01")
    assert "2027-01-01から適用される版" in html and "過去の版" not in html
    assert "<script>x</script>" not in html and "&lt;script&gt;" in html
    # Not yet in force: 同意する in the chat now would agree to the current version, not to this one.
    assert "「同意する」を押してください" not in html and "2027-01-01から適用されます" in html
    assert "この版の主な変更点: 変更点" in html                   # what the notice's link is opened for
    assert "「同意する」を押してください" in page(client, "/terms/sakata")
    assert "「同意する」を押してください" not in page(client, "/terms/sakata/2022-09-15")  # a past version
    # The list of versions (the future one first) says which applies now and which only from its date.
    listed = page(client, "/terms/sakata").split('class="versions"')[1]
    assert re.search(r'2027-01-01版</a>（2027-01-01から適用）', listed)
    assert re.search(r'aria-current="page">2023-11-01版</a>（現在の版）', listed)
    assert re.search(r'2022-09-15版</a>（本文なし）', listed)
    assert 'aria-current="page">2027-01-01版' in page(client, "/terms/sakata/2027-01-01")


def test_a_disabled_office_has_no_terms_page(make_app, tmp_path):
    offices = tmp_path / "offices"
    shutil.copytree(DEFAULT_OFFICES_DIR, offices)
    otaru = offices / "otaru.yaml"
    otaru.write_text(otaru.read_text(encoding="utf-8").replace("enabled: true", "enabled: false"), encoding="utf-8")
    client = make_app(offices_dir=str(offices)).test_client()
    assert client.get("/terms/otaru").status_code == 404
    assert client.get("/terms/sakata").status_code == 200


@pytest.mark.parametrize("office,version", [("sakata", "2023-11-01"), ("otaru", "2023-10-01")])
def test_the_link_in_the_consent_message_opens_the_version_asked_for(user_factory, fake_line, rt, client, office,
                                                                 version):
    chat = Chat(user_factory(office), fake_line, rt)
    [consent] = chat.say("予約")
    url = next(line for line in consent.splitlines() if line.startswith(rt.config.public_base_url + "/terms/"))
    path = url.removeprefix(rt.config.public_base_url)
    assert path == f"/terms/{office}/{version}"
    assert f"{version}版" in page(client, path)


@pytest.mark.parametrize(("language", "heading"), [("English", "Summary (translation)"),
                                                 ("やさしい日本語", "やさしい 日本語に したもの")])
def test_a_translated_consents_link_opens_that_version_with_the_translated_summary(user_factory, fake_line, rt,
                                                                                   client, language, heading):
    chat = Chat(user_factory("otaru"), fake_line, rt)
    chat.say(language)
    consent = chat.say("予約")[-1]
    url = next(line for line in consent.splitlines() if line.startswith(rt.config.public_base_url + "/terms/"))
    path = url.removeprefix(rt.config.public_base_url)
    assert path.startswith("/terms/otaru/2023-10-01?lang=")
    html = page(client, path)
    assert heading in html and "2023-10-01版" in html


def test_no_path_of_this_machine_in_the_pages(client):
    html = page(client, "/terms/sakata")
    assert str(Path(__file__).resolve().parent.parent) not in html


def test_the_terms_page_ends_with_the_way_back_to_line(make_app, client):
    """Read on a phone in LINE's browser, the long text ends with what to do next and a link back to the chat."""
    html = page(client, "/terms/sakata")
    assert "「同意する」を押してください" in html and "LINEのトーク画面にお戻りください" in html
    assert html.index("第14条") < html.index("LINEのトーク画面にお戻りください")
    app = make_app(env={"LINE_BASIC_ID_OTARU": "@madoguchi"})
    html = page(app.test_client(), "/terms/otaru")
    link = re.search(r'<a class="button" href="([^"]+)">LINEに戻る</a>', html).group(1)
    assert link == "https://line.me/R/oaMessage/%40madoguchi/?%E4%BA%88%E7%B4%84"


@pytest.mark.parametrize("office_id, title", [("sakata", "ハローワーク酒田オンライン職業相談利用規約"),
                                              ("otaru", "小樽公共職業安定所オンライン職業相談利用規約")])
def test_the_terms_title_is_the_pages_one_h1_and_the_articles_come_under_it(client, office_id, title):
    html = page(client, f"/terms/{office_id}")
    assert re.findall(r"<h1[^>]*>(.*?)</h1>", html) == [title]
    assert re.search(r"<h2[^>]*>第1条（目的）</h2>", html)


@pytest.mark.parametrize("office_id, articles", [("sakata", 14), ("otaru", 12)])
def test_a_contents_list_under_the_title_jumps_to_each_article(client, office_id, articles):
    """Fourteen articles are many screens on a phone: a folded contents list (no script) right under the title
    links every article's heading."""
    html = page(client, f"/terms/{office_id}")
    contents = re.search(r'</h1>\s*<details class="contents">(.*?)</details>', html, re.S).group(1)
    links = re.findall(r'<a href="#([^"]+)">(第\d+条（[^<]+）)</a>', contents)
    assert len(links) == articles and links[0][1] == "第1条（目的）"
    for anchor, title in links:
        assert f'<h2 id="{anchor}">{title}</h2>' in html
