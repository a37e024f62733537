"""Taxes at month end: the domain's tax_lines over 100,000 invoices of 3 lines, beside a plain Decimal loop.

    .venv/bin/python bench/taxes.py [--invoices 100000] [--lines 3]

Prints invoices per second for ``bridge.domain.tax.tax_lines`` (a German client at 19 %: the rule is
found, the lines are checked to be in one currency and rounded, one tax line per rate) and for a plain
loop over the same amounts (sum the lines, times 19 / 100, round half up to the cent, add), the best of
--rounds interleaved runs each, so both see the same machine; and, for scale, what taxing that many
invoices adds to the 300 s month-end budget of bench/month_end.py.

Issue 16's acceptance: month end with taxes on at most 10 % slower than with taxes off. Target here:
tax_lines >= 20 % of the plain loop's rate (it checks what the loop takes on trust).
"""

from __future__ import annotations

import argparse
import time
from decimal import ROUND_HALF_UP, Decimal

from bridge.domain.tax import Charge, ClientTaxIdentity, TaxRule, TaxRules, tax_lines

MONTH_END_BUDGET_SECONDS = 300
TARGET_RATIO = 0.20
RATE = Decimal("19")
CENT = Decimal("0.01")


def invoices(count: int, lines: int) -> list[list[Charge]]:
    """``count`` invoices of ``lines`` rounded EUR lines each, amounts varying from 0.01 to 999.99."""
    return [
        [
            Charge(Decimal((invoice * 7919 + line * 104729) % 100_000 + 1) / 100, "EUR")
            for line in range(lines)
        ]
        for invoice in range(count)
    ]


def domain_rate(batch: list[list[Charge]]) -> tuple[float, Decimal]:
    rules = TaxRules("DE", (TaxRule("DE", "VAT", RATE), TaxRule("FR", "TVA", Decimal("20"))))
    client = ClientTaxIdentity("DE", "DE136695976")
    began = time.perf_counter()
    total = sum((tax_lines(rules, client, lines).total for lines in batch), Decimal(0))
    return len(batch) / (time.perf_counter() - began), total


def plain_rate(batch: list[list[Charge]]) -> tuple[float, Decimal]:
    hundred = Decimal(100)
    began = time.perf_counter()
    total = Decimal(0)
    for lines in batch:
        subtotal = sum((line.amount for line in lines), Decimal(0))
        total += subtotal + (subtotal * RATE / hundred).quantize(CENT, rounding=ROUND_HALF_UP)
    return len(batch) / (time.perf_counter() - began), total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--invoices", type=int, default=100_000)
    parser.add_argument("--lines", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    options = parser.parse_args()
    batch = invoices(options.invoices, options.lines)
    domain = plain = 0.0
    for _ in range(options.rounds):
        domain_round, domain_total = domain_rate(batch)
        plain_round, plain_total = plain_rate(batch)
        if domain_total != plain_total:
            raise SystemExit(f"tax_lines and the plain loop disagree: {domain_total} != {plain_total}")
        domain, plain = max(domain, domain_round), max(plain, plain_round)
    ratio = domain / plain
    seconds = options.invoices / domain
    print(
        f"tax_lines:  {domain:,.0f} invoices/s ({options.lines} lines each) beside a plain Decimal loop at "
        f"{plain:,.0f} invoices/s = {ratio:.0%} (target >= {TARGET_RATIO:.0%})"
    )
    print(
        f"month end:  taxing {options.invoices:,} invoices takes {seconds:.2f} s, "
        f"{seconds / MONTH_END_BUDGET_SECONDS:.2%} of the {MONTH_END_BUDGET_SECONDS} s month-end budget"
    )
    if ratio < TARGET_RATIO:
        raise SystemExit("below target")


if __name__ == "__main__":
    main()
