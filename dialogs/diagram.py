"""The conversation as a Mermaid state diagram, drawn from the machine's own table."""
from __future__ import annotations

from dialogs.machine import MACHINE_TRANSITIONS, State


def _names(source) -> list[str]:
    if source == "*":
        return [s.value for s in State]
    if isinstance(source, (list, tuple)):
        return [str(getattr(s, "value", s)) for s in source]
    return [str(getattr(source, "value", source))]


def edges() -> dict[tuple[str, str], list[str]]:
    """(source, destination) -> the triggers that lead there, in the table's order."""
    found: dict[tuple[str, str], list[str]] = {}
    for t in MACHINE_TRANSITIONS:
        dest = t.get("dest")
        for src in _names(t["source"]):
            target = src if dest is None else str(getattr(dest, "value", dest))
            triggers = found.setdefault((src, target), [])
            if t["trigger"] not in triggers:
                triggers.append(t["trigger"])
    return found


def mermaid() -> str:
    """One arrow per pair of states, labelled with every trigger that takes it."""
    lines = ["stateDiagram-v2", f"    [*] --> {State.IDLE.value}"]
    for (src, target), triggers in edges().items():
        lines.append(f"    {src} --> {target}: {', '.join(triggers)}")
    return "\n".join(lines)
