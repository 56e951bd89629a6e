"""The conversation as a Mermaid state diagram, drawn from the machine's own table."""
from __future__ import annotations

from dialogs.machine import MACHINE_TRANSITIONS, State


def _names(source) -> list[str]:
    if source == "*":
        return [s.value for s in State]
    if isinstance(source, (list, tuple)):
        return [str(getattr(s, "value", s)) for s in source]
    return [str(getattr(source, "value", source))]


def mermaid() -> str:
    lines = ["stateDiagram-v2", f"    [*] --> {State.IDLE.value}"]
    seen: set[tuple[str, str, str]] = set()
    for t in MACHINE_TRANSITIONS:
        dest = t.get("dest")
        for src in _names(t["source"]):
            target = src if dest is None else str(getattr(dest, "value", dest))
            key = (src, target, t["trigger"])
            if key in seen:
                continue
            seen.add(key)
            lines.append(f"    {src} --> {target}: {t['trigger']}")
    return "\n".join(lines)
