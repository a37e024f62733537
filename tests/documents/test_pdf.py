"""PDF invoices: the golden invoice rendered with WeasyPrint is the same file every time, and shows what a
client needs to read and pay it: the provider, every line, the taxes, the total and where to pay."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest

from bridge.documents.invoices import render_html
from bridge.documents.pdf import render_pdf
from bridge.errors import BridgeError
from tests.documents.conftest import pdf_text, poppler
from tests.documents.golden import (
    FRENCH_BUSINESS,
    GERMAN_CLIENT,
    ISSUED,
    OCTOBER_RESOURCES,
    configuration,
    document,
    many_resources,
    write_logo,
)

ARTIFACTS = Path(__file__).parents[2] / "test-artifacts" / "invoice-pdf"
ROOT = Path(__file__).parents[2]
DASH = "\N{EN DASH}"

pytestmark = pytest.mark.usefixtures("pdf_tools")


@pytest.fixture
def golden_html(tmp_path: Path) -> str:
    """The golden invoice of a German client (VAT 19 %), with the company block and its logo."""
    return render_html(document(identity=GERMAN_CLIENT), configuration(write_logo(tmp_path)))


def write(path: Path, pdf: bytes) -> Path:
    path.write_bytes(pdf)
    return path


def test_the_golden_invoice_renders_to_the_same_bytes_every_time(golden_html: str, tmp_path: Path) -> None:
    first = render_pdf(golden_html, base_url=None, created=ISSUED)
    second = render_pdf(golden_html, base_url=None, created=ISSUED)
    assert first == second
    (tmp_path / "invoice.html").write_text(golden_html)
    another_process = subprocess.run(
        [sys.executable, "-c", RENDER_IN_ANOTHER_PROCESS, str(tmp_path / "invoice.html")],
        capture_output=True,
        check=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONHASHSEED": "12345"},
    ).stdout
    assert another_process == first


RENDER_IN_ANOTHER_PROCESS = """
import sys
from pathlib import Path
from bridge.documents.pdf import render_pdf
from tests.documents.golden import ISSUED
sys.stdout.buffer.write(render_pdf(Path(sys.argv[1]).read_text(), base_url=None, created=ISSUED))
"""


def test_the_pdf_shows_the_company_every_line_the_tax_lines_and_the_total(
    golden_html: str, tmp_path: Path
) -> None:
    pdf = write(tmp_path / "invoice.pdf", render_pdf(golden_html, base_url=None, created=ISSUED))
    text = pdf_text(pdf)
    for company in (
        "Nimbus Hosting GmbH",
        "Cloud servers and VPS hosting",
        "Hauptstraße 5",
        "10115 Berlin",
        "VAT ID DE136695976",
        "IBAN DE89 3704 0044 0532 0130 00",
        "BIC COBADEFFXXX",
        "Amtsgericht Berlin-Charlottenburg HRB 123456 B",
    ):
        assert company in text
    assert "Invoice" in text and "No. 2022-0041" in text and "Acme Ltd" in text
    for row in (
        f"web-1 (m1.small) 2022-10-01 {DASH} 2022-10-31 744 666.666667 0.0125 8.33 EUR",
        f"db-1 (m1.large) 2022-10-01 {DASH} 2022-10-31 227.5 227.5 0.10 22.75 EUR",
        f"build-runner (m1.medium) 2022-10-01 {DASH} 2022-10-31 120 120 0.05 6.00 EUR",
        f"k8s-node-1 (m1.xlarge) 2022-10-01 {DASH} 2022-10-31 744 666.666667 0.20 133.33 EUR",
        f"k8s-node-2 (m1.xlarge) 2022-10-01 {DASH} 2022-10-31 744 666.666667 0.20 133.33 EUR",
        f"k8s-node-3 (m1.xlarge) 2022-10-01 {DASH} 2022-10-31 312 312 0.20 62.40 EUR",
        f"vps-berlin-1 (VPS S) 2022-10-01 {DASH} 2022-10-31 744 10 7440 0.001 7.44 EUR",
        f"vps-berlin-2 (VPS M) 2022-10-01 {DASH} 2022-10-31 96 20 1920 0.001 1.92 EUR",
    ):
        assert row in text
    assert len(OCTOBER_RESOURCES) == 8
    for total in ("Subtotal (net) 375.50 EUR", "VAT 19 % on 375.50 71.35 EUR", "Total due 446.85 EUR"):
        assert total in text
    assert "Page 1 of 1" in text


def test_the_golden_invoice_is_saved_as_png_for_a_look(golden_html: str, tmp_path: Path) -> None:
    pdf = write(tmp_path / "invoice.pdf", render_pdf(golden_html, base_url=None, created=ISSUED))
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for old in ARTIFACTS.glob("invoice-*.png"):
        old.unlink()
    poppler("pdftoppm", "-png", "-r", "100", pdf, ARTIFACTS / "invoice")
    pages = sorted(ARTIFACTS.glob("invoice-*.png"))
    assert [page.name for page in pages] == ["invoice-1.png"]
    assert pages[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_pdf_is_dated_by_the_issue_date_and_embeds_its_fonts(golden_html: str, tmp_path: Path) -> None:
    pdf = write(tmp_path / "invoice.pdf", render_pdf(golden_html, base_url=None, created=ISSUED))
    info = dict(line.split(":", 1) for line in poppler("pdfinfo", "-isodates", pdf).splitlines())
    assert info["CreationDate"].strip() == "2022-10-31T23:00:00Z"
    assert info["ModDate"].strip() == "2022-10-31T23:00:00Z"
    assert info["Page size"].strip().endswith("(A4)")
    fonts = poppler("pdffonts", pdf).splitlines()[2:]
    assert fonts and all(" yes yes " in font for font in fonts), fonts
    assert any("Liberation-Sans" in font for font in fonts)


def test_another_issue_date_is_another_file(golden_html: str) -> None:
    later = datetime(2022, 11, 30, 23, 0, tzinfo=ISSUED.tzinfo)
    assert render_pdf(golden_html, base_url=None, created=later) != render_pdf(
        golden_html, base_url=None, created=ISSUED
    )


def test_an_eu_business_gets_the_reverse_charge_note_and_no_tax_line(tmp_path: Path) -> None:
    html = render_html(document(identity=FRENCH_BUSINESS), configuration())
    text = pdf_text(write(tmp_path / "invoice.pdf", render_pdf(html, base_url=None, created=ISSUED)))
    assert "Subtotal (net) 375.50 EUR" in text and "Total due 375.50 EUR" in text
    assert "VAT 19 %" not in text and "VAT 20 %" not in text
    assert "Reverse charge: VAT to be accounted for by the recipient" in text
    assert "FR40303265045" in text


def test_a_long_invoice_breaks_between_rows_repeats_the_header_and_numbers_its_pages(tmp_path: Path) -> None:
    resources = many_resources(70)
    html = render_html(document(resources, identity=GERMAN_CLIENT), configuration())
    pdf = write(tmp_path / "invoice.pdf", render_pdf(html, base_url=None, created=ISSUED))
    pages = int(dict(line.split(":", 1) for line in poppler("pdfinfo", pdf).splitlines())["Pages"])
    assert pages >= 2
    texts = [pdf_text(pdf, page) for page in range(1, pages + 1)]
    for number, text in enumerate(texts, start=1):
        assert f"Page {number} of {pages}" in text
        assert "Resource Period Hours Billed hours Price/hour Amount" in text
        assert "Amtsgericht Berlin-Charlottenburg" in text
    for resource in resources:
        name_on = [n for n, text in enumerate(texts) if f"{resource.name} (m1.small)" in text]
        id_on = [n for n, text in enumerate(texts) if f"{resource.name}-0000-4000-8000" in text]
        assert len(name_on) == 1 and name_on == id_on, f"{resource.name} is split across pages"
    assert "Total due 47.48 EUR" in texts[-1]


def test_an_invoice_whose_configuration_gives_only_name_and_details_has_no_optional_blocks(
    tmp_path: Path,
) -> None:
    """Company settings left empty print nothing: no address, VAT ID, bank box, logo or tax block."""
    bare = {"company_address": "", "company_vat_id": "", "company_bank_details": "", "invoice_footer": ""}
    html = render_html(document(), configuration(company_details="Cloud servers", **bare))
    for optional in ('class="legal', 'class="payment"', 'class="logo"', "VAT ID", "Subtotal (net)"):
        assert optional not in html
    text = pdf_text(write(tmp_path / "invoice.pdf", render_pdf(html, base_url=None, created=ISSUED)))
    assert "Nimbus Hosting GmbH" in text and "Total due 375.50 EUR" in text and "Page 1 of 1" in text


def test_nothing_is_loaded_from_the_network(golden_html: str) -> None:
    html = golden_html.replace("<header>", '<header><img src="https://cdn.example.invalid/logo.png">')
    with pytest.raises(
        BridgeError, match=r"cannot render the PDF: .*https://cdn\.example\.invalid/logo\.png"
    ):
        render_pdf(html, base_url=None, created=ISSUED)


def test_a_logo_that_went_away_stops_the_rendering_naming_it(tmp_path: Path) -> None:
    logo = write_logo(tmp_path)
    html = render_html(document(), configuration(logo))
    logo.unlink()
    with pytest.raises(BridgeError, match=r"nimbus-logo\.svg"):
        render_pdf(html, base_url=None, created=ISSUED)


def test_a_date_without_a_timezone_is_refused(golden_html: str) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        render_pdf(golden_html, base_url=None, created=datetime(2022, 11, 1))


def test_the_cli_starts_without_loading_weasyprint() -> None:
    check = "import sys, bridge.cli, bridge.documents.pdf; print('weasyprint' in sys.modules)"
    loaded = subprocess.run(
        [sys.executable, "-c", check], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert loaded.stdout.strip() == "False"
