"""The reconciliation as one self-contained HTML page an operator would rather look at than read.

templates/reconciliation.html.j2 lays it out: defects first, in red; the summary (hours collected, billed
and not billed by reason; money invoiced, confirmed and paid); three charts (billed against collected
hours per day, revenue per source and plan, hours not billed per reason) drawn inline as SVG by
:mod:`bridge.reports.charts`; the money and cloud sides; then one row per client that opens onto its
resources (``<details>``). Nothing is fetched: no scripts, fonts, images or styles from anywhere.

The clients are rendered as they come (Jinja's ``generate``), so :func:`write_html` takes any iterable;
the charts need only the summary.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Final, TextIO

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from bridge.domain.reconciliation import (
    NOT_BILLED,
    Bucket,
    ClientResult,
    Report,
    ResourceResult,
    Summary,
)
from bridge.reports.labels import (
    BUCKET_COLOURS,
    BUCKET_TITLES,
    DEFECT_RED,
    DEFECT_TITLES,
    PUSH_TITLES,
    SOURCE_TITLES,
    first_day,
    hours_text,
    last_day,
    money_text,
    share_text,
)

TEMPLATES: Final = Path(__file__).parent.parent / "templates"
_pages = Environment(
    loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html", "j2"]), trim_blocks=True
)
_pages.filters["hours"] = hours_text
_pages.filters["money"] = money_text
_pages.filters["first_day"] = first_day
_pages.filters["last_day"] = last_day


@dataclass(frozen=True)
class Segment:
    """A piece of a client's bar: one bucket's share of its hours."""

    bucket: Bucket
    title: str
    colour: str
    percent: float
    hours: Decimal


@dataclass(frozen=True)
class ClientRow:
    result: ClientResult
    segments: tuple[Segment, ...]
    not_billed: Decimal
    resources: tuple[ResourceResult, ...]


def render_html(report: Report) -> str:
    """The page of a month held in memory."""
    return "".join(_chunks(report.summary, report.clients))


def write_html(summary: Summary, clients: Iterable[ClientResult], out: TextIO) -> None:
    """The page, written to ``out`` as the clients come."""
    for chunk in _chunks(summary, clients):
        out.write(chunk)


def _chunks(summary: Summary, clients: Iterable[ClientResult]) -> Iterator[str]:
    from bridge.reports import charts  # matplotlib only when a page is drawn

    template = _pages.get_template("reconciliation.html.j2")
    return template.generate(
        summary=summary,
        month=summary.month,
        buckets=_buckets(summary),
        billed_share=share_text(summary.billed, summary.collected),
        not_billed=summary.collected - summary.billed,
        charts={  # matplotlib's own SVG, every text in it escaped by matplotlib
            "daily": Markup(charts.daily_hours_chart(summary)),
            "revenue": Markup(charts.revenue_chart(summary)),
            "not_billed": Markup(charts.not_billed_chart(summary)),
        },
        clients=(_row(result) for result in clients),
        bucket_titles=BUCKET_TITLES,
        bucket_colours=BUCKET_COLOURS,
        defect_titles=DEFECT_TITLES,
        push_titles=PUSH_TITLES,
        source_titles=SOURCE_TITLES,
        red=DEFECT_RED,
    )


def _buckets(summary: Summary) -> list[Segment]:
    """Every bucket of the month, with its share of the collected hours."""
    collected = summary.collected
    return [_segment(bucket, summary.hours_in(bucket), collected) for bucket in Bucket]


def _segment(bucket: Bucket, hours: Decimal, whole: Decimal) -> Segment:
    return Segment(bucket, BUCKET_TITLES[bucket], BUCKET_COLOURS[bucket], _percent(hours, whole), hours)


def _row(result: ClientResult) -> ClientRow:
    hours = result.hours
    totals = result.by_bucket()
    segments = tuple(_segment(bucket, amount, hours) for bucket, amount in totals.items() if amount)
    not_billed = sum((totals[bucket] for bucket in NOT_BILLED), Decimal(0))
    return ClientRow(result, segments, not_billed, result.resources)


def _percent(part: Decimal, whole: Decimal) -> float:
    return round(float(part * 100 / whole), 2) if whole else 0.0
