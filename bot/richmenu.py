"""The rich menu: its definition (templates/richmenu/menu.yaml) and its shipped picture.

Each area is a message action that sends a chat word, so tapping it is the same as typing it.
The picture is a PNG shipped in static/ (no download or drawing at run time); `picture_html()`
is the page it was rendered from, so a changed definition can be drawn again.
`deploy()` puts it on an office's account and deletes the menus an earlier deploy made: `richmenu deploy` and
the simulator's button both run it, and differ only in how they report.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import yaml

from bot.config import PROJECT_ROOT

DEFINITION = PROJECT_ROOT / "templates" / "richmenu" / "menu.yaml"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
MAX_PICTURE_BYTES = 1024 * 1024


class RichMenuError(ValueError):
    """The definition or the picture would be refused by LINE."""


@dataclass(frozen=True)
class Area:
    text: str
    caption: str
    x: int
    y: int
    width: int
    height: int

    def as_line(self) -> dict:
        return {"bounds": {"x": self.x, "y": self.y, "width": self.width, "height": self.height},
                "action": {"type": "message", "label": self.text[:20], "text": self.text}}


@dataclass(frozen=True)
class RichMenu:
    name: str
    chat_bar_text: str
    width: int
    height: int
    columns: int
    areas: tuple[Area, ...]
    picture_path: Path

    def request(self) -> dict:
        """The rich menu object LINE's `create rich menu` takes."""
        return {"size": {"width": self.width, "height": self.height}, "selected": True, "name": self.name,
                "chatBarText": self.chat_bar_text, "areas": [a.as_line() for a in self.areas]}

    def picture(self) -> bytes:
        data = self.picture_path.read_bytes()
        check_picture(data, self.width, self.height)
        return data


@dataclass
class Deployed:
    """What `deploy()` did once the new menu was the default."""

    menu_id: str
    deleted: list[str] = field(default_factory=list)       # earlier menus deleted
    left: list[str] = field(default_factory=list)          # earlier menus LINE did not delete
    unlisted: Exception | None = None                      # the earlier menus could not be listed


def deploy(line, office_id: str, menu: RichMenu, picture: bytes) -> Deployed:
    """Create the menu, upload its picture and make it the default (`line.deploy_rich_menu`, whose error is
    raised: nothing changed for the users), then delete the menus an earlier deploy made: those of the
    definition's name other than the new one, so that LINE keeps one. A menu of another name is never ours to
    delete. A failure after the new menu is the default is not raised but returned: the deploy is done, and the
    next one tries again."""
    done = Deployed(line.deploy_rich_menu(office_id, menu.request(), picture))
    try:
        earlier = [i for i in line.rich_menu_ids(office_id, menu.name) if i != done.menu_id]
    except Exception as exc:  # noqa: BLE001 - the SDK's ApiException and network errors alike
        done.unlisted = exc
        return done
    for old in earlier:
        (done.deleted if line.delete_rich_menu(office_id, old) else done.left).append(old)
    return done


def _cuts(total: int, parts: int) -> list[tuple[int, int]]:
    """(start, length) of `parts` equal slices of `total`; the last takes the remainder."""
    step = total // parts
    return [(i * step, step if i < parts - 1 else total - step * (parts - 1)) for i in range(parts)]


def load(path: Path = DEFINITION) -> RichMenu:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    width, height = int(data["size"]["width"]), int(data["size"]["height"])
    columns, rows = int(data["columns"]), int(data["rows"])
    buttons = data["buttons"]
    if len(buttons) != columns * rows:
        raise RichMenuError(f"{path.name}: {len(buttons)} buttons for a {columns}x{rows} grid")
    if len(data["chatBarText"]) > 14:
        raise RichMenuError(f"{path.name}: chatBarText is over 14 characters")
    cells = [(x, y, w, h) for (y, h) in _cuts(height, rows) for (x, w) in _cuts(width, columns)]
    areas = tuple(Area(str(b["text"]), str(b.get("caption", "")), *cell) for b, cell in zip(buttons, cells))
    return RichMenu(name=str(data["name"]), chat_bar_text=str(data["chatBarText"]), width=width, height=height,
                    columns=columns, areas=areas, picture_path=PROJECT_ROOT / data["picture"])


@lru_cache(maxsize=1)
def default_menu() -> RichMenu:
    return load()


def png_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) of a PNG, read from its IHDR chunk; None if it is not a PNG."""
    if len(data) < 24 or not data.startswith(PNG_MAGIC) or data[12:16] != b"IHDR":
        return None
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def check_picture(data: bytes, width: int, height: int) -> None:
    """LINE takes a PNG or JPEG of the menu's exact size, 1 MB at most."""
    if len(data) > MAX_PICTURE_BYTES:
        raise RichMenuError("the rich menu picture is over 1 MB")
    if png_size(data) != (width, height):
        raise RichMenuError(f"the rich menu picture must be a {width}x{height} PNG")


def picture_html(menu: RichMenu | None = None) -> str:
    """The page the picture is rendered from (a browser screenshot at the menu's size)."""
    from jinja2 import Environment, FileSystemLoader, StrictUndefined

    env = Environment(loader=FileSystemLoader(str(PROJECT_ROOT / "templates")), autoescape=True,
                      undefined=StrictUndefined)
    return env.get_template("richmenu/picture.html").render(menu=menu or default_menu())
