"""The sign-up pages' own HTTP server: threaded, on ``enrollment.listen``, beside the operator endpoint.

Request lines carry single-use tokens (``/verify/<token>``, ``/sso/<token>``), so they are logged (at
debug level) with the token replaced by ``***``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

from bridge.logs import MASK, get_logger
from bridge.web.server import BackgroundServer

log = get_logger(__name__)

_TOKEN_IN_PATH = re.compile(r"/(verify|sso|signin)/[^/?\s\"]+")


def redact(text: str) -> str:
    """``text`` with any link token in it replaced by ``***``."""
    return _TOKEN_IN_PATH.sub(rf"/\1/{MASK}", text)


class EnrollmentServer(BackgroundServer):
    """The sign-up pages' server; raises OSError when it cannot listen.

    ``workers`` and ``request_timeout`` are ``enrollment.workers`` and ``enrollment.request_timeout_seconds``.
    """

    def __init__(
        self,
        app: Callable[..., Iterable[bytes]],
        host: str,
        port: int,
        *,
        workers: int = 16,
        request_timeout: float = 10.0,
    ) -> None:
        super().__init__(
            app,
            host,
            port,
            name="enrollment",
            log_request=lambda line: log.debug("enrollment request", line=redact(line)),
            workers=workers,
            request_timeout=request_timeout,
        )
