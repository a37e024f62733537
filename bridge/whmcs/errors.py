"""The ways a WHMCS call can fail, typed by what the caller must do next.

==========================  =============================================  ==========================
error                       meaning                                        next step
==========================  =============================================  ==========================
WhmcsAuthError              credentials, IP allow-list or API role         fix the settings; nothing
                            refused (HTTP 401/403 or an auth message)      was done in WHMCS
WhmcsBusinessError          WHMCS understood and refused (result=error)    park for the operator;
                                                                           nothing was done
WhmcsTransportError         no usable answer: timeout, dropped or refused  ``in_doubt`` False: safe to
                            connection, 5xx, HTML or non-JSON body         call again. True: look the
                                                                           reference up first
WhmcsResponseError          a success answer missing a field we need or    as WhmcsTransportError
                            holding a value of an unknown shape            (never retried: it repeats)
WhmcsDuplicateError         a reference lookup found more than one record  the operator removes the
                                                                           extra record(s)
==========================  =============================================  ==========================

Messages name the action and WHMCS's own words, never the identifier, the secret or the access key
(the client redacts them from anything WHMCS echoes back before building an error).
"""

from __future__ import annotations

from bridge.errors import VendorAccessDenied, VendorError

API_PATH = "/includes/api.php"


class WhmcsError(VendorError):
    """Any failure of a WHMCS API call; ``action`` is the API action (``CreateInvoice``)."""

    def __init__(self, action: str, problem: str, *, field: str | None = None) -> None:
        self.action = action
        super().__init__("whmcs", API_PATH, f"{action}: {problem}", field=field)


class WhmcsAuthError(WhmcsError, VendorAccessDenied):
    """WHMCS refused who we are, where we call from or what our API role may do. Nothing was done."""

    def __init__(self, action: str, message: str, *, http_status: int) -> None:
        self.message = message
        self.http_status = http_status
        super().__init__(
            action,
            f"{message or 'access denied'} (HTTP {http_status}); check whmcs.identifier and whmcs.secret, "
            "the API role's permissions for this action, and the IP allow-list (or set whmcs.access_key)",
        )


class WhmcsBusinessError(WhmcsError):
    """WHMCS answered ``result=error``: it read the request and refused it. Nothing was done.

    ``message`` is WHMCS's own text (for example ``Client Not Found``), for matching by callers.
    """

    def __init__(self, action: str, message: str) -> None:
        self.message = message
        super().__init__(action, f"WHMCS refused: {message or '(no message)'}")

    @property
    def duplicate_email(self) -> bool:
        """Whether AddClient/UpdateClient refused because the email address is already taken."""
        text = self.message.lower()
        return any(marker in text for marker in _DUPLICATE_EMAIL_MARKERS)


_DUPLICATE_EMAIL_MARKERS = (
    "a user already exists with that email address",
    "email address entered is not available",
    "duplicate email address",
)


class WhmcsTransportError(WhmcsError):
    """No usable answer came back.

    ``in_doubt`` is True when the request may have reached WHMCS and been applied, which only matters for
    writes: the caller must look its reference up before sending again. It is False for reads, and for
    writes that provably never left (connection refused, connect timeout, TLS handshake failure).
    """

    def __init__(self, action: str, problem: str, *, in_doubt: bool, field: str | None = None) -> None:
        self.in_doubt = in_doubt
        suffix = "; the write may have been applied: look it up before sending again" if in_doubt else ""
        super().__init__(action, problem + suffix, field=field)


class WhmcsResponseError(WhmcsTransportError):
    """A success answer we cannot read: a missing id or a field in no known shape. Never retried."""


class WhmcsDuplicateError(WhmcsError):
    """A lookup by our reference found several records where there must be at most one."""

    def __init__(self, action: str, reference: str, kind: str, ids: tuple[int, ...]) -> None:
        """``kind`` is the plural noun of what was found (``invoices``)."""
        self.reference = reference
        self.ids = ids
        listed = ", ".join(str(i) for i in ids)
        super().__init__(
            action,
            f"{len(ids)} {kind} carry reference {reference!r} (ids {listed}); "
            f"keep one and cancel or remove the others in WHMCS",
        )
