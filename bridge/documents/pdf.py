"""HTML to PDF with WeasyPrint, reproducible byte for byte.

A stored invoice's PDF must come out identical every time it is rendered from the store, so that a
replay or a re-sent mail carries the same file. WeasyPrint is deterministic given the same HTML, fonts
and library versions, except where it takes things from the world; here each of those is fixed:

* the creation and modification dates (PDF ``/CreationDate`` and ``/ModDate``) are the ``created``
  instant the caller passes (an invoice's issue date), never the clock;
* the file identifier (``/ID``) is derived from the HTML and that instant, never random;
* resources load only from ``file:`` and ``data:`` URLs: a PDF never depends on the network, and a
  resource that cannot be read (a logo file that went away) stops the rendering with a
  :class:`~bridge.errors.BridgeError` instead of silently giving a different document;
* fonts are subset and named by WeasyPrint from a hash of their content, and the template names the
  fonts Debian's packages provide (scripts/ensure-system-packages installs them).

WeasyPrint and its system libraries (Pango, HarfBuzz) take a noticeable time to load, so they are imported
by :func:`render_pdf` itself, never at module import: the CLI's start-up does not pay for them.
"""

from __future__ import annotations

import hashlib
import importlib
import logging
from datetime import UTC, datetime
from types import ModuleType

from bridge.errors import BridgeError

LOCAL_SCHEMES = frozenset({"file", "data"})
"""The only URL schemes a PDF may load resources from."""

SYSTEM_PACKAGES = "libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-liberation fonts-dejavu-core"


def render_pdf(html: str, *, base_url: str | None, created: datetime) -> bytes:
    """The PDF of ``html`` (print media, the document's own ``@page`` rules).

    ``base_url`` resolves relative URLs in ``html`` (a ``file:`` URL or a directory path; None: relative
    URLs are not loaded). ``created`` is the instant the document stands for (an invoice's issue date),
    written as the PDF's creation and modification date; it must be timezone-aware.
    """
    if created.tzinfo is None or created.utcoffset() is None:
        raise ValueError("created must be timezone-aware (an invoice's issue date in UTC)")
    weasyprint = _weasyprint()
    from weasyprint.urls import FatalURLFetchingError, URLFetcher

    fetcher = URLFetcher(allowed_protocols=LOCAL_SCHEMES, fail_on_errors=True)
    document = weasyprint.HTML(string=html, base_url=base_url, url_fetcher=fetcher)
    try:
        rendered = document.render()
    except FatalURLFetchingError as error:
        cause = error.__cause__ or error
        raise BridgeError(f"cannot render the PDF: {error} ({cause})") from error
    stamp = _w3c_date(created)
    rendered.metadata.created = stamp
    rendered.metadata.modified = stamp
    pdf = rendered.write_pdf(pdf_identifier=_identifier(html, stamp))
    assert isinstance(pdf, bytes)
    return pdf


def _weasyprint() -> ModuleType:
    """The weasyprint module, or a BridgeError naming the Debian packages when its libraries are missing."""
    logging.getLogger("weasyprint.progress").setLevel(logging.WARNING)  # "Step 1 - ..." per PDF: noise
    try:
        return importlib.import_module("weasyprint")
    except OSError as error:  # cffi cannot open libpango / libharfbuzz
        raise BridgeError(
            f"PDF rendering needs WeasyPrint's system libraries ({error}); install Debian's "
            f"{SYSTEM_PACKAGES} (as root: bash scripts/ensure-system-packages)"
        ) from None


def _w3c_date(instant: datetime) -> str:
    """``2022-11-01T00:00:00Z``: the instant in UTC to the second, as WeasyPrint's metadata wants it."""
    return instant.astimezone(UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def _identifier(html: str, stamp: str) -> bytes:
    """The PDF file identifier: the same document at the same instant always gets the same one."""
    return hashlib.sha256(f"{stamp}\n{html}".encode()).hexdigest()[:32].encode()
