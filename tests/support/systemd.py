"""The systemd units shipped in systemd/, read as systemd reads them."""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

UNITS = Path(__file__).parents[2] / "systemd"


def parse_unit(path: Path) -> dict[str, dict[str, list[str]]]:
    """Section -> key -> values of a unit file; a line systemd would not read fails with its place."""
    sections: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    current = None
    for number, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        header = re.fullmatch(r"\[(\w+)\]", line)
        if header:
            current = header.group(1)
            continue
        key, sep, value = line.partition("=")
        assert current and sep and re.fullmatch(r"[A-Za-z]+", key), f"{path.name}:{number}: {raw!r}"
        sections[current][key].append(value)
    return sections
