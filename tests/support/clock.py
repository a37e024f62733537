"""The moment the tests' clock starts at (the ``clock`` fixture) unless a test sets another."""

from __future__ import annotations

from datetime import UTC, datetime

START = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
