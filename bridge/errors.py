"""Errors the operator sees, each with the exit code the CLI maps it to.

The message of every error here is shown as one line on stderr: it names what is wrong (the setting,
the field, the argument) and how to fix it, and it never carries a secret.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_BAD_INPUT = 2


class BridgeError(Exception):
    """A failure at run time (a database or vendor that does not answer, a job that failed)."""

    exit_code = EXIT_FAILURE


class InputError(BridgeError):
    """Bad input from the operator: a setting, a CLI argument, a duplicate that must not be created."""

    exit_code = EXIT_BAD_INPUT


class ConfigError(InputError):
    """The settings file is invalid; nothing was created or changed."""


class NotFound(InputError):
    """The thing the operator named does not exist."""


class VendorError(BridgeError):
    """A vendor API answered with something we cannot use.

    ``source`` is the vendor (``openstack``, ``solusvm``, ``whmcs``), ``path`` the URL path without host,
    query or credentials, and ``field`` the payload field at fault, when there is one.
    """

    def __init__(self, source: str, path: str, problem: str, *, field: str | None = None) -> None:
        self.source = source
        self.path = path
        self.problem = problem
        self.field = field
        where = f"{source} {path}"
        if field:
            where += f" field {field!r}"
        super().__init__(f"{where}: {problem}")


class VendorAccessDenied(VendorError):
    """The vendor refused who we are or what our role may do: nothing was done, and trying the next call
    will not help (a run stops on it)."""


class VendorRefused(VendorError):
    """The vendor refused the content of a request (a validation error): the same request will be
    refused again."""


def checked(check: Callable[..., T], value: Any, field: str, **limits: Any) -> T:
    """``check(value, field, **limits)`` (a pure check of bridge/domain/bounds.py), its ValueError raised
    as the operator's :class:`InputError` with the same one-line message."""
    try:
        return check(value, field, **limits)
    except ValueError as error:
        raise InputError(str(error)) from None
