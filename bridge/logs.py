"""Structured logs: JSON lines for journald and log shippers, readable lines on a terminal.

Every line, ours and the libraries', leaves through one standard-library handler whose
:class:`structlog.stdlib.ProcessorFormatter` runs the same chain: level, time, the exception rendered,
then the :class:`SecretMasker`, so no code path can leak a secret by accident. The masker is a value:
bootstrap builds it once with the secrets in force and hands it to :func:`configure` and to the places
that print error text.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable, MutableMapping
from typing import Any

MASK = "***"
CHATTY_LIBRARIES = ("alembic", "urllib3", "keystoneauth", "stevedore", "apscheduler.scheduler")
"""Libraries whose INFO lines are noise for an operator; shown only with --debug."""
_SECRET_KEY_WORDS = ("secret", "token", "password", "passwd", "authorization", "access_key", "api_key")
_SHORTEST_SECRET = 4
"""Shorter values are not masked: masking "ab" would garble every word that contains it."""


class SecretMasker:
    """Masks the given secret values wherever they appear, and values under secret-looking keys.

    Immutable: the secrets are fixed when it is built, so it can be shared between threads freely.
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets = frozenset(s for s in secrets if len(s) >= _SHORTEST_SECRET)

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


def configure(
    level: str = "info", fmt: str = "auto", *, masker: SecretMasker | None = None, stream: Any = None
) -> None:
    """Send structlog's events and the standard library's records through one masking formatter.

    Without an explicit ``stream``, ``sys.stderr`` is looked up at each write (pytest replaces it).
    """
    import structlog  # here and in get_logger, not at the top: the CLI's --help needs neither

    as_json = fmt == "json" or (fmt == "auto" and not (stream or sys.stderr).isatty())
    renderer: Any = structlog.processors.JSONRenderer() if as_json else structlog.dev.ConsoleRenderer()
    stamped: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[*stamped, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        wrapper_class=structlog.make_filtering_bound_logger(_level_number(level)),
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=False,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        # Records from libraries: their logger's name and any ``extra=`` fields are kept.
        foreign_pre_chain=[*stamped, structlog.stdlib.add_logger_name, structlog.stdlib.ExtraAdder()],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            masker or SecretMasker(),
            renderer,
        ],
    )
    _install(_Handler(stream), formatter, level)


def _install(handler: logging.Handler, formatter: logging.Formatter, level: str) -> None:
    """One handler of ours on the root logger (configuring again replaces it); chatty libraries quieter."""
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _Handler)]:
        root.removeHandler(old)
    handler.setFormatter(formatter)
    root.addHandler(handler)
    root.setLevel(_level_number(level))
    for chatty in CHATTY_LIBRARIES:
        logging.getLogger(chatty).setLevel(logging.DEBUG if level == "debug" else logging.WARNING)


def _level_number(level: str) -> int:
    return logging.getLevelNamesMapping()[level.upper()]


class _Handler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to ``stream``, or to whatever ``sys.stderr`` is at the time of the write."""

    def __init__(self, stream: Any = None) -> None:
        super().__init__(stream)
        self._fixed = stream

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = self._fixed or sys.stderr  # under the handler's lock (Handler.handle holds it)
        super().emit(record)


def get_logger(name: str) -> Any:
    import structlog

    return structlog.get_logger(name)
