"""Suspend, resume, shelve and unshelve Nova servers, disable and enable Keystone projects: the levers
the credit engine pulls.

Each server call is one ``POST /servers/{id}/action`` through openstacksdk (``{"suspend": null}`` and so
on). Nothing is retried here: an action is not idempotent on Nova's side (a second suspend is a 409), so
the caller decides, using :attr:`ServerActionError.status`, whether a failure means "already done" or "try
later". Note that a suspended or shelved server still accrues ``hours`` in simple-tenant-usage.

A client's project is suspended as Fleio suspends it (its staff docs: a suspended client's "client and
services are suspended"; its configurations "enable automatic OpenStack project suspension"): the project
is disabled in Keystone, ``PATCH /v3/projects/{id}`` with ``{"project": {"enabled": false}}``
(openstacksdk ``identity.update_project(id, is_enabled=False)``), so no token is issued for it and its
owner can neither resume a server nor create one; its servers keep running unless suspended, which their
own actions do. The project is read first (``GET /v3/projects/{id}``): a project already in the wanted
state is left alone, so a retry after a lost answer settles the doubt by looking, and PATCHes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import openstack.connection
from keystoneauth1 import exceptions as ks_exceptions
from openstack import exceptions as os_exceptions
from openstack.identity.v3._proxy import Proxy as IdentityV3

from bridge.errors import VendorError
from bridge.fleio._vendor import SOURCE, describe_error, scrub
from bridge.logs import get_logger

log = get_logger(__name__)

Action = Literal["suspend", "resume", "shelve", "unshelve", "delete", "disable", "enable"]


class ServerActionError(VendorError):
    """A server action Nova refused or that never reached it; ``status`` is the HTTP status when there is one
    (404: no such server, 409: the server's state does not allow the action)."""

    def __init__(
        self,
        action: Action,
        server_id: str,
        problem: str,
        *,
        status: int | None = None,
        project: bool = False,
    ) -> None:
        what, path = (
            ("project", f"/v3/projects/{server_id}")
            if project
            else ("server", f"/servers/{server_id}/action")
        )
        super().__init__(SOURCE, path, f"{action} of {what} {server_id} failed: {problem}")
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

    def disable_project(self, project_id: str) -> bool:
        """Disable the project in Keystone; False when it already was (nothing sent)."""
        return self._set_project_enabled("disable", project_id, enabled=False)

    def enable_project(self, project_id: str) -> bool:
        """Enable the project in Keystone again; False when it already was (nothing sent)."""
        return self._set_project_enabled("enable", project_id, enabled=True)

    def _set_project_enabled(self, action: Action, project_id: str, *, enabled: bool) -> bool:
        _check_id(action, project_id)
        identity = self._conn.identity
        if not isinstance(identity, IdentityV3):
            problem = "Keystone v3 is needed to disable or enable a project; openstack.auth_url must be v3"
            raise ServerActionError(action, project_id, problem, project=True)
        try:
            if identity.get_project(project_id).is_enabled == enabled:
                log.info("openstack.project_already", action=action, project_id=project_id)
                return False
            identity.update_project(project_id, is_enabled=enabled)
        except (os_exceptions.SDKException, ks_exceptions.ClientException) as error:
            problem, status = _problem(error, "project")
            raise ServerActionError(action, project_id, problem, status=status, project=True) from None
        log.info("openstack.project_action", action=action, project_id=project_id)
        return True

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


def _problem(
    error: os_exceptions.SDKException | ks_exceptions.ClientException, what: str = "server"
) -> tuple[str, int | None]:
    """The one-line problem (no host, no secret) and the HTTP status, if any."""
    if isinstance(error, os_exceptions.HttpException):
        return _http_problem(error.status_code, scrub(str(error.details or "")), what), error.status_code
    status = error.http_status if isinstance(error, ks_exceptions.HttpError) else None
    return describe_error(error), status


def _http_problem(status: int | None, details: str, what: str) -> str:
    if status == 404:
        return f"no such {what} (HTTP 404)"
    if status == 409:
        return f"the {what}'s state does not allow it (HTTP 409): {details}"
    return f"HTTP {status}: {details}"
