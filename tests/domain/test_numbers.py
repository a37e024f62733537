"""Invoice number templates: read the same way when the configuration checks them and when they number."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bridge.domain.configuration import Configuration
from bridge.domain.numbers import placeholders, random_proforma_number, render_number

ON = datetime(2022, 3, 7, tzinfo=UTC)


@pytest.mark.parametrize(
    ("template", "number"),
    [
        ("{{ number }}", "42"),
        ("INV-{{ year }}{{ month }}{{ day }}-{{number}}", "INV-20220307-42"),
        ("{{  year  }}/{{ number }}\n", "2022/42"),  # the spacing is free; one trailing newline is dropped
        ("{{ number }}{{ unknown }}", "42"),  # as Jinja rendered it: an unknown name is empty
    ],
)
def test_a_template_renders_its_placeholders(template: str, number: str) -> None:
    assert render_number(template, 42, ON) == number


def test_the_names_a_template_uses_are_the_ones_the_renderer_fills() -> None:
    assert placeholders("F{{year}}-{{ month }}-{{ number }}") == ["year", "month", "number"]


def test_the_configuration_refuses_a_fiscal_template_with_no_number_or_an_unknown_name() -> None:
    with pytest.raises(ValueError, match="fiscal_number_format"):
        Configuration(fiscal_number_format="F-{{ year }}")
    with pytest.raises(ValueError, match="uses week"):
        Configuration(fiscal_number_format="{{ number }}-{{ week }}")
    assert Configuration(fiscal_number_format="F{{year}}-{{number}}").fiscal_number_format


def test_a_random_proforma_number_is_the_same_for_the_same_reference_and_differs_between_references() -> None:
    first = random_proforma_number("BB-1-2022-10")
    assert first == random_proforma_number("BB-1-2022-10")
    assert first != random_proforma_number("BB-2-2022-10")
    assert first.startswith("R") and len(first) == 11 and first[1:].isdigit()
