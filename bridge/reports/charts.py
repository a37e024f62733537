"""The report's charts, drawn by matplotlib as inline SVG (no network, no files, no JavaScript).

matplotlib is imported here only, and this module only when an HTML report is drawn, so the CLI, the
daemon and the JSON path stay light. The figures use matplotlib's object API (``Figure`` with the SVG
canvas), never ``pyplot``'s global state, so drawing is safe inside a daemon thread. Text stays text in
the SVG (``svg.fonttype: none``), small and sharp at any zoom; ids are salted per chart so several
charts share one page.
"""

from __future__ import annotations

import io
from collections import defaultdict
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Final

from bridge.domain.reconciliation import NOT_BILLED, Summary
from bridge.reports.labels import (
    BUCKET_COLOURS,
    BUCKET_TITLES,
    SOURCE_COLOURS,
    SOURCE_TITLES,
    hours_text,
    money_text,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from matplotlib.typing import RcKeyType

COLLECTED_GREY: Final = "#d5dbe3"
BILLED_GREEN: Final = "#2f7d4f"
INK: Final = "#1d2430"
MUTED: Final = "#5b6675"
TOP_PLANS: Final = 10


def daily_hours_chart(summary: Summary) -> str:
    """Hours collected (grey) and billed (green) per day of the month, all sources together."""
    days = summary.month.days()
    collected: dict[int, float] = defaultdict(float)
    billed: dict[int, float] = defaultdict(float)
    for figure in summary.daily:
        collected[figure.day.day] += figure.collected
        billed[figure.day.day] += figure.billed
    numbers = [day.day for day in days]

    def draw(axes: Axes) -> None:
        axes.bar(
            numbers, [collected[n] for n in numbers], width=0.82, color=COLLECTED_GREY, label="collected"
        )
        axes.bar(numbers, [billed[n] for n in numbers], width=0.5, color=BILLED_GREEN, label="billed")
        axes.set_xlim(0.3, len(numbers) + 0.7)
        axes.set_xticks([n for n in numbers if n == 1 or n % 5 == 0])
        axes.set_xlabel(f"day of {summary.month.label}")
        axes.set_ylabel("hours")
        axes.grid(axis="y", color="#eef1f5", linewidth=0.8)
        axes.set_axisbelow(True)
        axes.legend(frameon=False, loc="upper right", ncols=2, bbox_to_anchor=(1.0, 1.14))

    return _svg("daily", (11.4, 3.1), draw)


def revenue_chart(summary: Summary) -> str:
    """Revenue per flavor or plan, coloured by source, in the currency with the most revenue."""
    totals: dict[str, Decimal] = defaultdict(Decimal)
    for item in summary.revenue:
        totals[item.currency] += item.amount
    currency = max(totals, key=lambda key: totals[key]) if totals else None
    items = sorted(
        (item for item in summary.revenue if item.currency == currency),
        key=lambda item: item.amount,
        reverse=True,
    )
    shown = items[:TOP_PLANS]
    rest = sum((item.amount for item in items[TOP_PLANS:]), Decimal(0))
    labels = [_plan_label(item.source, item.plan) for item in shown]
    values = [float(item.amount) for item in shown]
    colours = [SOURCE_COLOURS[item.source] for item in shown]
    texts = [money_text(item.amount, item.currency) for item in shown]
    if rest and currency is not None:
        labels.append(f"{len(items) - TOP_PLANS} more plans")
        values.append(float(rest))
        colours.append(COLLECTED_GREY)
        texts.append(money_text(rest, currency))

    def draw(axes: Axes) -> None:
        if not values:
            _nothing(axes, "no revenue in this month")
            return
        _horizontal_bars(axes, labels, values, colours, texts)
        axes.set_xlabel(currency or "")
        for source, colour in SOURCE_COLOURS.items():
            axes.bar(0, 0, color=colour, label=SOURCE_TITLES[source])
        axes.legend(frameon=False, loc="lower right", fontsize=8)

    return _svg("revenue", (5.6, _bars_height(max(len(values), len(NOT_BILLED)))), draw)


def not_billed_chart(summary: Summary) -> str:
    """Hours not billed, one bar per reason in the reason's colour."""
    reasons = [(bucket, hours) for bucket, hours in summary.not_billed]
    labels = [BUCKET_TITLES[bucket] for bucket, _ in reasons]
    values = [float(hours) for _, hours in reasons]
    colours = [BUCKET_COLOURS[bucket] for bucket, _ in reasons]
    texts = [f"{hours_text(hours)} h" for _, hours in reasons]

    def draw(axes: Axes) -> None:
        if not any(values):
            _nothing(axes, "every collected hour was billed")
            return
        _horizontal_bars(axes, labels, values, colours, texts)
        axes.set_xlabel("hours")

    return _svg("not-billed", (5.6, _bars_height(len(NOT_BILLED))), draw)


def _plan_label(source: str, plan: str) -> str:
    """``m1.small · OpenStack``; SolusVM plans are ids, so ``plan 7 · SolusVM``."""
    name = f"plan {plan}" if source == "solusvm" else plan
    return f"{name} · {SOURCE_TITLES[source]}"


def _bars_height(bars: int) -> float:
    """Inches for a chart of ``bars`` horizontal bars; the two half-width charts share it, so they align."""
    return 1.0 + 0.32 * bars


def _horizontal_bars(
    axes: Axes, labels: Sequence[str], values: Sequence[float], colours: Sequence[str], texts: Sequence[str]
) -> None:
    """One bar per value, top down; fewer bars than the chart's slots keep their thickness, at the top."""
    slots = max(len(values), len(NOT_BILLED))
    positions = [slots - 1 - index for index in range(len(values))]
    axes.barh(positions, values, color=colours, height=0.62)
    axes.set_ylim(-0.6, slots - 0.4)
    axes.set_yticks(positions, labels)
    axes.tick_params(axis="y", length=0)
    axes.spines["left"].set_visible(False)
    top = max(values) or 1.0
    axes.set_xlim(0, top * 1.28)
    for position, value, text in zip(positions, values, texts, strict=True):
        axes.text(value + top * 0.01, position, text, va="center", fontsize=8, color=INK)
    axes.grid(axis="x", color="#eef1f5", linewidth=0.8)
    axes.set_axisbelow(True)


def _nothing(axes: Axes, message: str) -> None:
    axes.set_axis_off()
    axes.text(0.5, 0.5, message, ha="center", va="center", color=MUTED, transform=axes.transAxes)


def _svg(name: str, size: tuple[float, float], draw: Callable[[Axes], None]) -> str:
    """The chart ``draw`` makes on a figure of ``size`` inches, as an ``<svg>`` element."""
    from matplotlib import rc_context
    from matplotlib.backends.backend_svg import FigureCanvasSVG
    from matplotlib.figure import Figure

    style: dict[RcKeyType, Any] = {
        "svg.fonttype": "none",
        "svg.hashsalt": f"reconciliation-{name}",
        "font.family": "sans-serif",
        "font.sans-serif": ["DejaVu Sans", "Liberation Sans", "Arial"],
        "font.size": 9.0,
        "axes.edgecolor": "#9aa5b1",
        "axes.labelcolor": MUTED,
        "xtick.color": MUTED,
        "ytick.color": MUTED,
        "axes.spines.top": False,
        "axes.spines.right": False,
    }
    with rc_context(style):
        figure: Figure = Figure(figsize=size, layout="constrained")
        FigureCanvasSVG(figure)
        draw(figure.add_subplot())
        buffer = io.StringIO()
        figure.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None})
    markup = buffer.getvalue()
    return markup[markup.index("<svg") :]
