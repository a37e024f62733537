"""Structured logs: JSON lines for journald and log shippers, readable lines on a terminal.

One processor, :class:`SecretMasker`, sits in every chain and replaces each secret in force (and any
value under a key that names a secret) with ``***``, so no code path can leak one by accident.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Iterable, MutableMapping
from typing import Any

import structlog

MASK = "***"
CHATTY_LIBRARIES = ("alembic", "urllib3", "keystoneauth", "stevedore", "apscheduler.scheduler")
"""Libraries whose INFO lines are noise for an operator; shown only with --debug."""
_SECRET_KEY_WORDS = ("secret", "token", "password", "passwd", "authorization", "access_key", "api_key")


class SecretMasker:
    """Masks registered secret values wherever they appear, and values under secret-looking keys."""

    def __init__(self) -> None:
        self._secrets: frozenset[str] = frozenset()
        self._lock = threading.Lock()

    def register(self, secrets: Iterable[str]) -> None:
        with self._lock:
            self._secrets = self._secrets | {s for s in secrets if len(s) >= 4}

    def mask_text(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        return text

    def __call__(
        self, _logger: Any, _method: str, event: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        for key, value in list(event.items()):
            if any(word in key.lower() for word in _SECRET_KEY_WORDS) and value is not None:
                event[key] = MASK
            elif isinstance(value, str):
                event[key] = self.mask_text(value)
            elif isinstance(value, BaseException):
                event[key] = self.mask_text(f"{type(value).__name__}: {value}")
        return event


masker = SecretMasker()


def configure(level: str = "info", fmt: str = "auto", *, stream: Any = None) -> None:
    """Set up structlog (and route the standard library's loggers through the same masking)."""
    as_json = fmt == "json" or (fmt == "auto" and not (stream or sys.stderr).isatty())
    renderer: Any = structlog.processors.JSONRenderer() if as_json else structlog.dev.ConsoleRenderer()
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            masker,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        # Without an explicit stream, look sys.stderr up at each write (it may be replaced, e.g. by pytest).
        logger_factory=lambda *_args: structlog.PrintLogger(stream or sys.stderr),
        cache_logger_on_first_use=False,
    )
    _route_stdlib(level)


def _route_stdlib(level: str) -> None:
    """Library loggers (apscheduler, openstacksdk, urllib3) go through structlog too."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if isinstance(handler, _StructlogHandler):
            root.removeHandler(handler)
    root.addHandler(_StructlogHandler())
    root.setLevel(logging.getLevelName(level.upper()))
    for chatty in CHATTY_LIBRARIES:
        logging.getLogger(chatty).setLevel(logging.DEBUG if level == "debug" else logging.WARNING)


class _StructlogHandler(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        log = structlog.get_logger().bind(logger=record.name)
        message = record.getMessage()
        if record.levelno >= logging.ERROR:
            log.error(message)
        elif record.levelno >= logging.WARNING:
            log.warning(message)
        else:
            log.info(message)


def get_logger(name: str) -> Any:
    return structlog.get_logger(name)
