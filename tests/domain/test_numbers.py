"""Invoice number templates: read the same way when the configuration checks them and when they number."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bridge.domain.configuration import Configuration
from bridge.domain.numbers import (
    RANDOM_PROFORMA_TEMPLATE,
    NumberSeries,
    colliding_series,
    default_number_formats,
    first_shared_number,
    placeholders,
    random_proforma_number,
    render_number,
)

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


@pytest.mark.parametrize(
    ("first", "second", "shared"),
    [
        ("{{ number }}", "{{ number }}", "1"),
        ("{{ number }}", "{{ year }}{{ number }}", "10001"),  # year 1000, number 1: the languages meet
        ("INV-{{ number }}", "INV-{{ year }}-{{ number }}", None),  # a number holds no "-"
        ("F{{ number }}", "{{ number }}", None),  # a number never starts with F
        ("P-{{ number }}", "P-{{ year }}.{{ number }}", None),  # the dot only one of them writes
        ("R{{ number }}", RANDOM_PROFORMA_TEMPLATE, "R1000000000"),  # "proforma_random" numbers are R + 10
        ("{{ year }}/{{ number }}", "{{ year }}-{{ number }}", None),
    ],
)
def test_two_templates_share_a_number_only_when_both_can_render_it(
    first: str, second: str, shared: str | None
) -> None:
    assert first_shared_number(first, second) == shared
    assert first_shared_number(second, first) == shared


def test_a_shared_number_is_one_both_templates_really_render() -> None:
    assert render_number("{{ year }}{{ number }}", 1, datetime(1000, 1, 1, tzinfo=UTC)) == "10001"
    assert render_number("{{ number }}", 10001, ON) == "10001"


def test_configurations_left_at_their_defaults_never_share_a_number() -> None:
    series = [
        NumberSeries(f"{name}.{kind}", template)
        for name in ("default", "resellers", "eu")
        for kind, template in zip(("fiscal", "proforma"), default_number_formats(name), strict=True)
    ]
    assert colliding_series(series) == []
    assert default_number_formats("default") == ("{{ number }}", "P{{ number }}")
    assert default_number_formats("resellers") == ("RESELLERS-{{ number }}", "P-RESELLERS-{{ number }}")


def test_every_colliding_pair_is_named_with_its_first_shared_number() -> None:
    one, two, three = (NumberSeries(key, "{{ number }}") for key in "abc")
    assert [(a.key, b.key, n) for a, b, n in colliding_series([one, two, three])] == [
        ("a", "b", "1"),
        ("a", "c", "1"),
        ("b", "c", "1"),
    ]
