"""Where reconciliation reports are kept (``var/reports/`` by default) and which one is the latest.

Each month has up to four files, named for it so a listing sorts by month::

    reconciliation-2022-10.json           the whole document (json_report)
    reconciliation-2022-10.summary.json   the same without the clients: small, for /metrics and /status
    reconciliation-2022-10.html           the page (html_report)
    reconciliation-2022-10.csv            one row per client and bucket (csv_report)

Files are written next to their final name and renamed into place (:meth:`ReportArchive.writing`), so a
reader (the operator endpoint, an alert) never sees half a report, and a crash leaves the previous one.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, TextIO

PREFIX: Final = "reconciliation-"
_MONTH: Final = re.compile(r"reconciliation-(\d{4}-\d{2})\.summary\.json")


@dataclass(frozen=True)
class ReportFiles:
    """The files of one month's report."""

    month: str
    json: Path
    summary: Path
    html: Path
    csv: Path


class ReportArchive:
    """A directory of monthly reports."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def files(self, month: str) -> ReportFiles:
        stem = self.directory / f"{PREFIX}{month}"
        return ReportFiles(
            month,
            stem.with_suffix(".json"),
            stem.with_suffix(".summary.json"),
            stem.with_suffix(".html"),
            stem.with_suffix(".csv"),
        )

    def months(self) -> list[str]:
        """The months with a report, oldest first (a report counts once its summary is in place)."""
        if not self.directory.is_dir():
            return []
        found = (_MONTH.fullmatch(path.name) for path in self.directory.iterdir())
        return sorted(match.group(1) for match in found if match)

    def latest(self) -> ReportFiles | None:
        months = self.months()
        return self.files(months[-1]) if months else None

    def latest_summary(self) -> dict[str, Any] | None:
        """The latest month's summary document (json_report.head_document), or None before the first."""
        latest = self.latest()
        if latest is None:
            return None
        with latest.summary.open(encoding="utf-8") as handle:
            document: dict[str, Any] = json.load(handle)
        return document

    @contextlib.contextmanager
    def writing(self, path: Path) -> Iterator[TextIO]:
        """``path`` opened for text, renamed into place only when the block ends without an error."""
        self.directory.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=self.directory, prefix=f".{path.name}.", suffix=".part")
        try:
            with os.fdopen(handle, "w", encoding="utf-8", newline="") as out:
                yield out
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
