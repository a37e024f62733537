"""Suspend, resume, shelve and unshelve Nova servers: the levers the credit engine pulls.

Each call is one ``POST /servers/{id}/action`` through openstacksdk (``{"suspend": null}`` and so on).
Nothing is retried here: an action is not idempotent on Nova's side (a second suspend is a 409), so the
caller decides, using :attr:`ServerActionError.status`, whether a failure means "already done" or "try
later". Note that a suspended or shelved server still accrues ``hours`` in simple-tenant-usage.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import openstack.connection
from keystoneauth1 import exceptions as ks_exceptions
from openstack import exceptions as os_exceptions

from bridge.errors import VendorError
from bridge.fleio._vendor import SOURCE, describe_error, scrub
from bridge.logs import get_logger

log = get_logger(__name__)

Action = Literal["suspend", "resume", "shelve", "unshelve", "delete"]


class ServerActionError(VendorError):
    """A server action Nova refused or that never reached it; ``status`` is the HTTP status when there is one
    (404: no such server, 409: the server's state does not allow the action)."""

    def __init__(self, action: Action, server_id: str, problem: str, *, status: int | None = None) -> None:
        path = f"/servers/{server_id}/action"
        super().__init__(SOURCE, path, f"{action} of server {server_id} failed: {problem}")
        self.action = action
        self.server_id = server_id
        self.status = status


class NovaServerActions:
    """Server state changes through an openstacksdk connection (admin, or the server's project)."""

    def __init__(self, conn: openstack.connection.Connection) -> None:
        self._conn = conn

    def suspend(self, server_id: str) -> None:
        """Suspend (memory saved to disk); the server keeps accruing hours."""
        self._run("suspend", server_id, self._conn.compute.suspend_server)

    def resume(self, server_id: str) -> None:
        """Resume a suspended server."""
        self._run("resume", server_id, self._conn.compute.resume_server)

    def shelve(self, server_id: str) -> None:
        """Shelve (snapshot and, by default, offload from its host); the server keeps accruing hours."""
        self._run("shelve", server_id, self._conn.compute.shelve_server)

    def unshelve(self, server_id: str) -> None:
        """Unshelve; Nova resets the server's launch time, so usage restarts from the unshelve."""
        self._run("unshelve", server_id, self._conn.compute.unshelve_server)

    def delete(self, server_id: str) -> None:
        """Delete the server for good (automatic termination, when the configuration enables it)."""
        self._run("delete", server_id, self._conn.compute.delete_server)

    def _run(self, action: Action, server_id: str, call: Callable[[str], None]) -> None:
        _check_id(action, server_id)
        try:
            call(server_id)
        except (os_exceptions.SDKException, ks_exceptions.ClientException) as error:
            problem, status = _problem(error)
            raise ServerActionError(action, server_id, problem, status=status) from None
        log.info("openstack.server_action", action=action, server_id=server_id)


def _check_id(action: Action, server_id: str) -> None:
    """A server id goes into the URL path, so it must be a plain, non-empty id."""
    if not server_id or "/" in server_id or server_id != server_id.strip():
        raise ValueError(f"{action}: {server_id!r} is not a server id")


def _problem(error: os_exceptions.SDKException | ks_exceptions.ClientException) -> tuple[str, int | None]:
    """The one-line problem (no host, no secret) and the HTTP status, if any."""
    if isinstance(error, os_exceptions.HttpException):
        return _http_problem(error.status_code, scrub(str(error.details or ""))), error.status_code
    status = error.http_status if isinstance(error, ks_exceptions.HttpError) else None
    return describe_error(error), status


def _http_problem(status: int | None, details: str) -> str:
    if status == 404:
        return "no such server (HTTP 404)"
    if status == 409:
        return f"the server's state does not allow it (HTTP 409): {details}"
    return f"HTTP {status}: {details}"
