"""PDF tests need WeasyPrint's system libraries and poppler-utils (pdftotext, pdftoppm, pdfinfo, pdffonts),
Debian packages that scripts/ensure-system-packages installs. Without them these tests skip, unless
BRIDGE_REQUIRE_SERVICES=1 (as on CI), which makes the skip a failure."""

from __future__ import annotations

import importlib
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support.databases import services_required

POPPLER = ("pdftotext", "pdftoppm", "pdfinfo", "pdffonts")


def _missing() -> str | None:
    try:
        importlib.import_module("weasyprint")
    except OSError as error:
        return f"WeasyPrint's system libraries are missing ({error})"
    absent = [tool for tool in POPPLER if shutil.which(tool) is None]
    if absent:
        return f"poppler-utils is missing ({', '.join(absent)})"
    return None


@pytest.fixture(scope="session")
def pdf_tools() -> None:
    """Skip (or fail under BRIDGE_REQUIRE_SERVICES=1) without WeasyPrint's libraries and poppler-utils."""
    missing = _missing()
    if missing is None:
        return
    message = f"{missing}; `make system-packages` installs Debian's packages"
    if services_required():
        pytest.fail(f"{message}; BRIDGE_REQUIRE_SERVICES=1 requires them", pytrace=False)
    pytest.skip(message)


def poppler(tool: str, *args: str | Path) -> str:
    """What a poppler-utils command prints."""
    done = subprocess.run([tool, *map(str, args)], capture_output=True, text=True, check=True)
    return done.stdout


def pdf_text(pdf: Path, page: int | None = None) -> str:
    """The text of ``pdf`` (or of one page), in reading layout, spaces collapsed."""
    pages = ("-f", str(page), "-l", str(page)) if page is not None else ()
    text = poppler("pdftotext", "-layout", *pages, pdf, "-")
    return "\n".join(" ".join(line.split()) for line in text.splitlines() if line.strip())
