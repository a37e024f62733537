"""Invoice numbers as the configuration writes them: a template of ``{{ number }}``, ``{{ year }}``,
``{{ month }}`` and ``{{ day }}`` (``fiscal_number_format``, ``proforma_number_format``).

The template's grammar lives here once: :func:`check_template` is what the settings and the domain
configuration check a template with, and :func:`render_number` what an invoice is numbered with
(bridge/services/issuing.py), so a template is read the same way when it is checked and when it is used.
"""

from __future__ import annotations

import hashlib
import itertools
import re
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from greenery import Charclass, Fsm, Pattern, parse

NUMBER_PLACEHOLDERS = frozenset({"number", "year", "month", "day"})

_PLACEHOLDER = re.compile(r"{{\s*(\w+)\s*}}")


def placeholders(template: str) -> list[str]:
    """The names a number template uses, in order (``{{ number }}`` -> ``number``)."""
    return _PLACEHOLDER.findall(template)


def check_template(key: str, template: str) -> None:
    """Refuse a number template that could repeat a number or names what a number cannot show.

    ``key`` names the setting in the message (``fiscal_number_format``, ``proforma_number_format``)."""
    names = placeholders(template)
    if "number" not in names:
        raise ValueError(f"{key} {template!r} has no {{{{ number }}}}; numbers must stay unique")
    unknown = sorted(set(names) - NUMBER_PLACEHOLDERS)
    if unknown:
        raise ValueError(
            f"{key} {template!r} uses {', '.join(unknown)}; only {{{{ number }}}}, "
            "{{ year }}, {{ month }} and {{ day }} are known"
        )


def render_number(template: str, number: int, on: datetime) -> str:
    """A number from the configuration's template: {{ number }}, {{ year }}, {{ month }}, {{ day }}.

    Rendered as the Jinja templates it was written for render those placeholders: an unknown name is
    empty, and one trailing newline is dropped."""
    values = {
        "number": str(number),
        "year": f"{on.year:04d}",
        "month": f"{on.month:02d}",
        "day": f"{on.day:02d}",
    }
    text = template.removesuffix("\n")
    return _PLACEHOLDER.sub(lambda match: values.get(match.group(1), ""), text)


_DIGITS = {"number": "[1-9][0-9]*", "year": "[0-9]{4}", "month": "[0-9]{2}", "day": "[0-9]{2}"}

RANDOM_PROFORMA_TEMPLATE = "R{{ random }}"
"""How :func:`random_proforma_number` numbers look, written as a template for :func:`first_shared_number`."""


DEFAULT_SERIES = "default"


def default_number_formats(configuration: str) -> tuple[str, str]:
    """The (fiscal, proforma) templates of a configuration whose settings name none.

    The ``default`` configuration numbers 1, 2, 3 and P1, P2, P3; any other is prefixed with its name in
    capitals (``resellers``: RESELLERS-1 and P-RESELLERS-1), so two configurations left at their defaults
    never issue the same number."""
    if configuration == DEFAULT_SERIES:
        return "{{ number }}", "P{{ number }}"
    prefix = configuration.upper()
    return f"{prefix}-{{{{ number }}}}", f"P-{prefix}-{{{{ number }}}}"


@dataclass(frozen=True)
class NumberSeries:
    """A series of invoice numbers as the settings write it: the key it comes from and its template."""

    key: str
    template: str


def numbers_of(template: str) -> Pattern:
    """Every number ``template`` can render, as a regular language (greenery): placeholders are digits."""
    parts: list[str] = []
    position = 0
    text = template.removesuffix("\n")
    for match in _PLACEHOLDER.finditer(text):
        parts.extend(str(Charclass(char)) for char in text[position : match.start()])
        parts.append("[0-9]{10}" if match.group(1) == "random" else _DIGITS.get(match.group(1), ""))
        position = match.end()
    parts.extend(str(Charclass(char)) for char in text[position:])
    return parse("".join(parts))


def first_shared_number(first: str, second: str) -> str | None:
    """A number both templates can render (the shortest), or None when no number can come from both.

    Numbers must identify one invoice, so two series whose languages meet would one day issue the same
    number: "{{ number }}" and "{{ year }}{{ number }}" meet at "20221", "F{{ number }}" and "{{ number }}"
    never do."""
    shared = (numbers_of(first) & numbers_of(second)).to_fsm()
    return _shortest_accepted(shared)


def _shortest_accepted(machine: Fsm) -> str | None:
    """The shortest string ``machine`` accepts, taking the first character of each class on the way.

    (greenery's own ``strings()`` enumerates every string of each length first: far too many digits.)"""
    paths = {machine.initial: ""}
    queue = deque([machine.initial])
    while queue:
        state = queue.popleft()
        if state in machine.finals:
            return paths[state]
        for charclass, target in sorted(machine.map[state].items()):
            if target not in paths and not charclass.negated and charclass.ord_ranges:
                paths[target] = paths[state] + chr(charclass.ord_ranges[0][0])
                queue.append(target)
    return None


def colliding_series(series: Sequence[NumberSeries]) -> list[tuple[NumberSeries, NumberSeries, str]]:
    """Each pair of series that can render the same number, with the first such number."""
    found = []
    for first, second in itertools.combinations(series, 2):
        number = first_shared_number(first.template, second.template)
        if number is not None:
            found.append((first, second, number))
    return found


def random_proforma_number(reference: str) -> str:
    """A non-sequential proforma number for "proforma only with random numbers".

    Derived from the invoice's reference rather than drawn at random, so a replay gives the same number.
    """
    return "R" + str(int(hashlib.sha256(reference.encode()).hexdigest()[:12], 16)).zfill(15)[:10]
