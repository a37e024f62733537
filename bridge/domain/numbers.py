"""Invoice numbers as the configuration writes them: a template of ``{{ number }}``, ``{{ year }}``,
``{{ month }}`` and ``{{ day }}`` (``fiscal_number_format``, ``proforma_number_format``).

The template's grammar lives here once: :func:`check_template` is what the settings and the domain
configuration check a template with, and :func:`render_number` what an invoice is numbered with
(bridge/services/issuing.py), so a template is read the same way when it is checked and when it is used.
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime

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


def random_proforma_number(reference: str) -> str:
    """A non-sequential proforma number for "proforma only with random numbers".

    Derived from the invoice's reference rather than drawn at random, so a replay gives the same number.
    """
    return "R" + str(int(hashlib.sha256(reference.encode()).hexdigest()[:12], 16)).zfill(15)[:10]
