"""The settlement slip rendered from a value built here (settlements are read elsewhere): the
Tamil reads back from the PDF, the names are whole in its metadata, the Tamil font is embedded,
and the page is not blank."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

from quartermaster.documents.render import render_settlement_slip, rupees
from quartermaster.documents.types import Name, Quantity, SettlementSlip, SlipEntry, SlipFee
from tests.documents.pdf_tools import first_page, ink, pdf_fonts, pdf_info, pdf_text

JASMINE = Name("Jasmine", "மல்லிகை")
ROSE = Name("Rose", "ரோஜா")


def a_slip(**changes: object) -> SettlementSlip:
    fields: dict[str, object] = {
        "number": "STL-000001",
        "status": "approved",
        "farmer_number": "FMR-000001",
        "farmer": Name("Murugan", "முருகன்"),
        "village": "Thovalai",
        "period_from": date(2026, 11, 1),
        "period_to": date(2026, 11, 7),
        "entries": (
            SlipEntry(
                "ENT-000001",
                date(2026, 11, 1),
                "04:00-06:00",
                JASMINE,
                Quantity("12.500", "kg"),
                40000,
                500000,
            ),
            SlipEntry(
                "ENT-000002",
                date(2026, 11, 2),
                "06:00-08:00",
                ROSE,
                Quantity("300", "piece"),
                150,
                45000,
            ),
        ),
        "gross_minor": 545000,
        "commission_bp": 1000,
        "commission_minor": 54500,
        "fees": (SlipFee("market", Name("Market fee", "சந்தைக் கட்டணம்"), 5450),),
        "advance_recovered_minor": 100000,
        "net_minor": 385050,
        "issued_at": datetime(2026, 11, 8, 9, 30, tzinfo=ZoneInfo("Asia/Kolkata")),
        "issuer": "Thovalai Flower Market",
    }
    fields.update(changes)
    return SettlementSlip(**fields)  # type: ignore[arg-type]


def test_the_tamil_slip_reads_back_in_tamil() -> None:
    pdf = render_settlement_slip(a_slip(), "ta")

    text = pdf_text(pdf)
    info = pdf_info(pdf)

    assert pdf.startswith(b"%PDF-")
    # Words that survive extraction whole (pdftotext splits some vowel signs off: "மல்லிகை"
    # comes back as "மல்லி கை"), so the full names are checked in the metadata below.
    for word in ("பட்டுவாடா சீட்டு", "முருகன்", "விவசாயி", "கமிஷன்", "முதல்"):
        assert word in text, (word, text)
    for figure in ("STL-000001", "FMR-000001", "₹5,450.00", "₹545.00", "₹1,000.00", "₹3,850.50"):
        assert figure in text, (figure, text)
    assert info["Title"] == "STL-000001 · பட்டுவாடா சீட்டு"
    assert "FMR-000001 Murugan / முருகன்" in info["Subject"]
    assert "₹3,850.50" in info["Subject"]
    assert "Jasmine / மல்லிகை" in info["Keywords"]
    assert "Rose / ரோஜா" in info["Keywords"]
    assert "Noto-Sans-Tamil" in pdf_fonts(pdf)


def test_the_english_slip_names_the_flowers_in_both_scripts() -> None:
    pdf = render_settlement_slip(a_slip(), "en")

    text = pdf_text(pdf)

    for words in ("Settlement slip", "Murugan", "Jasmine", "Rose", "Net payable", "Commission"):
        assert words in text, (words, text)
    assert "₹3,850.50" in text
    assert "12.500 kg" in text
    assert pdf_info(pdf)["Title"] == "STL-000001 · Settlement slip"
    # The Tamil names are printed under the English ones, in the Tamil font.
    assert "Noto-Sans-Tamil" in pdf_fonts(pdf)


def test_the_page_is_drawn() -> None:
    page = first_page(render_settlement_slip(a_slip(), "ta"))

    # An A4 page at 60 dpi; the header, the table and the totals put ink on a few per cent.
    assert (page.width, page.height) == (497, 702)
    assert 0.01 < ink(page) < 0.5
    # The upper third holds the header and the farmer: not blank.
    assert ink(page.crop((0, 0, page.width, page.height // 3))) > 0.01


def test_markup_in_a_name_is_printed_not_followed() -> None:
    farmer = Name('<img src="file:///etc/hostname">Murugan', "முருகன்")

    text = pdf_text(render_settlement_slip(a_slip(farmer=farmer), "en"))

    assert '<img src="file:///etc/hostname">Murugan' in text


def test_a_long_slip_runs_onto_more_pages() -> None:
    entry = a_slip().entries[0]
    slip = a_slip(entries=(entry,) * 90)

    info = pdf_info(render_settlement_slip(slip, "ta"))

    assert int(info["Pages"]) >= 2


@pytest.mark.parametrize(
    ("minor", "shown"),
    [
        (0, "₹0.00"),
        (5, "₹0.05"),
        (99999, "₹999.99"),
        (100000, "₹1,000.00"),
        (12500050, "₹1,25,000.50"),
        (1234567890, "₹1,23,45,678.90"),
        (-385050, "-₹3,850.50"),
    ],
)
def test_rupees_are_grouped_the_indian_way(minor: int, shown: str) -> None:
    assert rupees(minor) == shown


def test_documents_render_side_by_side_on_several_threads() -> None:
    """The server renders on its pool of request threads: four at once, each its own."""
    numbers = [f"STL-{n:06d}" for n in range(1, 5)]
    start = threading.Barrier(len(numbers))

    def render(number: str) -> bytes:
        start.wait(timeout=30)
        return render_settlement_slip(a_slip(number=number), "ta")

    with ThreadPoolExecutor(len(numbers)) as pool:
        pdfs = list(pool.map(render, numbers))

    assert [pdf_info(pdf)["Title"] for pdf in pdfs] == [
        f"{number} · பட்டுவாடா சீட்டு" for number in numbers
    ]
