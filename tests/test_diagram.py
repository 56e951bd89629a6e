"""`flask --app app diagram` prints the conversation as Mermaid, and README embeds exactly that output."""
from __future__ import annotations

import re
from pathlib import Path

from dialogs.diagram import mermaid
from dialogs.machine import MACHINE_TRANSITIONS, State

README = Path(__file__).resolve().parent.parent / "README.md"


def readme_diagram() -> str:
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## The conversation"):]
    blocks = re.findall(r"```mermaid\n(.*?)\n```", section, flags=re.S)
    assert blocks, "README's 'The conversation' section has no mermaid block"
    return blocks[0]


def test_the_command_prints_a_mermaid_state_diagram_of_every_state_and_trigger(app):
    result = app.test_cli_runner().invoke(args=["diagram"])
    assert result.exit_code == 0
    lines = result.output.rstrip("\n").splitlines()
    assert lines[:2] == ["stateDiagram-v2", "    [*] --> idle"]
    assert all(re.fullmatch(r"    [a-z_]+ --> [a-z_]+: [a-z_]+(, [a-z_]+)*", line) for line in lines[2:])
    body = "\n".join(lines)
    for state in State:
        assert f" {state.value} -->" in body and f"--> {state.value}" in body
    for trigger in {t["trigger"] for t in MACHINE_TRANSITIONS}:
        assert re.search(rf"[:,] {trigger}(,|$)", body, flags=re.M), trigger


def test_readme_embeds_the_commands_output(app):
    output = app.test_cli_runner().invoke(args=["diagram"]).output.rstrip("\n")
    assert output == mermaid()
    assert readme_diagram() == output, "README is out of date: paste the output of `flask --app app diagram`"
