"""Our deterministic references, and how to find one inside free text WHMCS gives back.

No WHMCS action takes an idempotency key (research section 5), so each write carries a reference such as
``BB-42-2025-03-usage`` in a text field WHMCS keeps (invoice ``notes``, credit ``description``). Settling
an in-doubt write means finding that reference again. It must match as a whole token: ``BB-4-2025-03``
must not be found inside ``BB-42-2025-03``, nor ``...-usage`` inside ``...-usage2``.
"""

from __future__ import annotations

import re

_REFERENCE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
_TOKEN_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")


def check_reference(reference: str) -> str:
    """The reference itself, if it is letters, digits, ``_`` and ``-`` (starting with a letter or digit)."""
    if not _REFERENCE.match(reference):
        raise ValueError(
            f"reference {reference!r} must be letters, digits, '_' and '-', starting with a letter or digit"
        )
    return reference


def contains_reference(text: str, reference: str) -> bool:
    """Whether ``reference`` appears in ``text`` as a whole token (not as part of a longer one)."""
    check_reference(reference)
    at = text.find(reference)
    while at >= 0:  # no pattern per reference: compiling one cost the push a millisecond per row
        end = at + len(reference)
        before = text[at - 1] if at > 0 else ""
        after = text[end] if end < len(text) else ""
        if before not in _TOKEN_CHARS and after not in _TOKEN_CHARS:
            return True
        at = text.find(reference, at + 1)
    return False
