"""One printed table of the reliability suite, and the sizes it is built at."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Size = Literal["ci", "full"]


@dataclass(frozen=True)
class Table:
    """A titled table: ``columns`` name the cells of every row; ``totals`` are the figures that must hold
    (e.g. duplicates 0, losses 0, mismatches 0; bad inputs handled = tried), printed under the table."""

    title: str
    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    totals: dict[str, int] = field(default_factory=dict)

    def render(self) -> str:
        widths = [
            max([len(column), *(len(row[index]) for row in self.rows)])
            for index, column in enumerate(self.columns)
        ]
        line = "  ".join("-" * width for width in widths)
        out = [self.title, "=" * len(self.title)]
        out.append("  ".join(column.ljust(width) for column, width in zip(self.columns, widths, strict=True)))
        out.append(line)
        for row in self.rows:
            out.append("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))
        out.append(line)
        out.extend(f"{name}: {value}" for name, value in self.totals.items())
        return "\n".join(out)
