"""Taxes: the rules per country, a client's tax identity, the exemption decision, and an invoice's tax.

Prices are tax-exclusive: every price, line amount and credit amount in billing-bridge is net of tax,
and tax is added on top of an invoice's subtotal. The up-to-date credit and the credit engine count
money net of tax, as Fleio does.

Who computes the tax depends on where invoices are issued:

* invoices issued by the bridge: :func:`tax_lines` below, with the ``[taxes]`` rules;
* invoices issued in WHMCS: WHMCS applies its own tax rules; the bridge only sets each item's
  ``taxed`` flag, from :func:`is_taxed`.

The exemption flow of seed 001 ("Auto set EU tax exemption", "Your home country", "VAT ID validation
flow") is :func:`decide_exemption`: with auto exemption on, a client of an EU member state other than
the home country whose VAT ID VIES confirms is tax exempt (the EU B2B reverse charge). A client of the
home country is always taxed. A client outside the EU is never marked exempt by this flow: there is no
reverse charge to apply, and its tax simply follows the rules (a country without a rule pays no tax; a
country with one, say CH where the provider is registered, pays it). Staff may still mark any client
exempt by hand, with who, when and why kept.

VIES is asked again periodically (:func:`vat_id_standing`): if it cannot answer for 48 consecutive
hours, the confirmation lapses and the client is taxed again (seed 001).

Rounding: invoice lines are rounded once each (:func:`~bridge.domain.money.round_money`) before tax is
computed; tax is then rounded once per invoice per rate (:func:`~bridge.domain.money.tax_amount`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Protocol

from bridge.domain.instants import as_utc
from bridge.domain.money import is_rounded, round_money, tax_amount

EU_MEMBER_STATES = frozenset({
    "AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GR", "HR", "HU",
    "IE", "IT", "LT", "LU", "LV", "MT", "NL", "PL", "PT", "RO", "SE", "SI", "SK",
})  # fmt: skip
"""The 27 member states by ISO 3166-1 code (Greece is GR here; EL is only its VAT prefix).

Checked against python-stdnum's list of VIES member states by the tests, so a change there is noticed.
"""

VAT_PREFIX_COUNTRY = {"EL": "GR"}
"""VAT ID prefixes that are not their country's ISO 3166-1 code."""

UNAVAILABLE_GRACE = timedelta(hours=48)
"""How long VIES may fail to answer before a confirmed VAT ID no longer counts (seed 001)."""

REVERSE_CHARGE_TEXT = (
    "Reverse charge: VAT to be accounted for by the recipient (Article 196, Council Directive 2006/112/EC)."
)

_ZERO = Decimal(0)
_HUNDRED = Decimal(100)


# -- the rules -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TaxRule:
    """The tax of one country: its name on the invoice (``VAT``) and its rate in percent (``19``)."""

    country: str
    name: str
    rate: Decimal
    label: str = field(init=False, repr=False, compare=False)
    """How the rule reads on an invoice: ``VAT 19 %``."""

    def __post_init__(self) -> None:
        check_country(self.country)
        if not self.name.strip():
            raise ValueError(f"the tax rule of {self.country} needs a name such as 'VAT'")
        if not isinstance(self.rate, Decimal) or not _ZERO <= self.rate < _HUNDRED:
            raise ValueError(f"the tax rate of {self.country} must be a Decimal percent in [0, 100)")
        object.__setattr__(self, "label", _label(self.name, self.rate))


@dataclass(frozen=True)
class TaxRules:
    """The ``[taxes]`` settings as values.

    ``tax_on_add_credit``: add-credit invoices (and credit auto-invoices) carry tax on top of the amount
    entered (seed 001 "Add tax on add-credit invoices"); off, they carry none and the tax is charged when
    the credit is spent on usage. ``auto_eu_exemption``: seed 001 "Auto set EU tax exemption".
    """

    home_country: str
    rules: tuple[TaxRule, ...] = ()
    tax_on_add_credit: bool = False
    auto_eu_exemption: bool = False
    _by_country: dict[str, TaxRule] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        check_country(self.home_country)
        by_country: dict[str, TaxRule] = {}
        for rule in self.rules:
            if rule.country in by_country:
                raise ValueError(f"two tax rules for {rule.country}; keep one")
            by_country[rule.country] = rule
        if self.home_country not in by_country:
            raise ValueError(f"the home country {self.home_country} has no tax rule; add one")
        object.__setattr__(self, "_by_country", by_country)

    def rule_for(self, country: str) -> TaxRule | None:
        """The rule of ``country``, or None: a country without a rule pays no tax."""
        return self._by_country.get(country)


# -- the client's tax identity -------------------------------------------------------------------------


@dataclass(frozen=True)
class ExemptionDecision:
    """Whether a client is tax exempt, and who decided it, when and why.

    ``by`` is ``vies`` for the automatic flow, else the staff member who set it.
    """

    exempt: bool
    by: str
    at: datetime
    why: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "at", as_utc(self.at))
        if not self.by.strip() or not self.why.strip():
            raise ValueError("an exemption decision names who made it and why")


BY_VIES = "vies"


@dataclass(frozen=True)
class ClientTaxIdentity:
    """A client's country (ISO 3166-1), its VAT ID (validated, with prefix: ``FR40303265045``) or None,
    and its tax exemption (None: never decided, so not exempt)."""

    country: str
    vat_id: str | None = None
    exemption: ExemptionDecision | None = None

    def __post_init__(self) -> None:
        check_country(self.country)
        if self.vat_id is not None and (len(self.vat_id) < 4 or not self.vat_id[:2].isalpha()):
            raise ValueError(f"VAT ID {self.vat_id!r} does not start with its two-letter country prefix")

    @property
    def tax_exempt(self) -> bool:
        return self.exemption is not None and self.exemption.exempt

    @property
    def vat_id_country(self) -> str | None:
        """The ISO 3166-1 country of the VAT ID's prefix (GR for ``EL...``)."""
        if self.vat_id is None:
            return None
        prefix = self.vat_id[:2].upper()
        return VAT_PREFIX_COUNTRY.get(prefix, prefix)


# -- VIES answers and the 48-hour rule -----------------------------------------------------------------


class ViesOutcome(StrEnum):
    """What one VIES consultation said: the number is valid, invalid, or VIES could not tell."""

    VALID = "valid"
    INVALID = "invalid"
    UNAVAILABLE = "unavailable"


@dataclass(frozen=True)
class ViesObservation:
    """One VIES answer about a client's VAT ID, at the instant the bridge received it."""

    at: datetime
    outcome: ViesOutcome

    def __post_init__(self) -> None:
        object.__setattr__(self, "at", as_utc(self.at))


@dataclass(frozen=True)
class VatIdStanding:
    """Whether VIES's confirmation of a VAT ID is in force at an instant, and why."""

    confirmed: bool
    why: str


def vat_id_standing(
    history: Iterable[ViesObservation], now: datetime, *, grace: timedelta = UNAVAILABLE_GRACE
) -> VatIdStanding:
    """Whether the VAT ID counts as confirmed by VIES at ``now``, from every VIES answer about it.

    The latest definite answer (valid or invalid) decides. Answers of "unavailable" after it do not
    change it until VIES has been unavailable for ``grace`` (48 h) in a row, counted from the first
    unavailable answer after the latest definite one to ``now``; then a valid VAT ID no longer counts.
    Answers after ``now`` are refused: the history is evidence of the past.
    """
    now = as_utc(now)
    ordered = sorted(history, key=lambda observation: observation.at)
    if ordered and ordered[-1].at > now:
        raise ValueError(f"a VIES answer at {ordered[-1].at} is later than now ({now})")
    definite = [observation for observation in ordered if observation.outcome != ViesOutcome.UNAVAILABLE]
    last = definite[-1] if definite else None
    unavailable_since = _first_unavailable_after(ordered, last)
    if last is None:
        if unavailable_since is None:
            return VatIdStanding(False, "VIES has not been asked yet")
        return VatIdStanding(False, f"VIES has not answered since {_instant(unavailable_since)}")
    if last.outcome == ViesOutcome.INVALID:
        return VatIdStanding(False, f"VIES answered invalid at {_instant(last.at)}")
    if unavailable_since is None:
        return VatIdStanding(True, f"VIES confirmed it at {_instant(last.at)}")
    down = now - unavailable_since
    if down >= grace:
        return VatIdStanding(
            False,
            f"VIES has been unavailable for {_hours(down)} h in a row since {_instant(unavailable_since)} "
            f"(limit {_hours(grace)} h)",
        )
    return VatIdStanding(
        True,
        f"VIES confirmed it at {_instant(last.at)}; unavailable since {_instant(unavailable_since)} "
        f"({_hours(down)} of {_hours(grace)} h)",
    )


def _first_unavailable_after(
    ordered: Sequence[ViesObservation], last: ViesObservation | None
) -> datetime | None:
    after = ordered if last is None else [observation for observation in ordered if observation.at > last.at]
    return after[0].at if after else None


# -- the exemption decision ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ExemptionVerdict:
    """What the seed 001 flow says about a client: exempt or not, and why."""

    exempt: bool
    why: str


def decide_exemption(
    rules: TaxRules, identity: ClientTaxIdentity, standing: VatIdStanding
) -> ExemptionVerdict:
    """The seed 001 "VAT ID validation flow", at sign-up, when staff add a client, and at revalidation.

    Exempt only when all hold: auto EU exemption is on; the client is not of the home country; the
    client is of an EU member state; it has a VAT ID of that same member state; VIES confirms it.
    """
    country = identity.country
    if not rules.auto_eu_exemption:
        return ExemptionVerdict(False, "auto EU tax exemption is off")
    if country == rules.home_country:
        return ExemptionVerdict(False, f"clients of the home country {country} are always taxed")
    if country not in EU_MEMBER_STATES:
        return ExemptionVerdict(
            False, f"{country} is outside the EU: no reverse charge; its tax follows the rules"
        )
    if identity.vat_id is None:
        return ExemptionVerdict(False, "no VAT ID")
    if identity.vat_id_country != country:
        return ExemptionVerdict(False, f"VAT ID {identity.vat_id} is not of the client's country {country}")
    if not standing.confirmed:
        return ExemptionVerdict(False, f"VAT ID {identity.vat_id}: {standing.why}")
    return ExemptionVerdict(
        True, f"EU business with VAT ID {identity.vat_id} ({standing.why}): reverse charge"
    )


# -- an invoice's tax ----------------------------------------------------------------------------------


class TaxableLine(Protocol):
    """An invoice line as tax sees it: its rounded amount, net of tax, and its currency."""

    @property
    def amount(self) -> Decimal: ...

    @property
    def currency(self) -> str: ...


@dataclass(frozen=True)
class Charge:
    """A line that is a plain amount: an add-credit invoice or a credit auto-invoice (seed 000)."""

    amount: Decimal
    currency: str


class InvoicePurpose(StrEnum):
    """What an invoice bills: usage and fees always follow the rules; credit follows ``tax_on_add_credit``."""

    USAGE = "usage"
    ADD_CREDIT = "add_credit"


@dataclass(frozen=True)
class TaxLine:
    """One rate's tax on an invoice: ``VAT 19 %`` of ``base`` is ``amount``."""

    name: str
    rate: Decimal
    base: Decimal
    amount: Decimal

    @property
    def label(self) -> str:
        return _label(self.name, self.rate)


@dataclass(frozen=True)
class InvoiceTaxes:
    """An invoice's subtotal (net), its tax lines, their sum ``tax`` (0.00 when there are none), its
    ``total`` (subtotal + tax, never rounded again), and why it is taxed as it is. Made by :func:`tax_lines`.

    ``reverse_charge`` is the note an exempt EU business invoice must carry, with the client's VAT ID.
    """

    currency: str
    subtotal: Decimal
    lines: tuple[TaxLine, ...]
    tax: Decimal
    total: Decimal
    why: str
    reverse_charge: str | None = None


def tax_lines(
    rules: TaxRules,
    identity: ClientTaxIdentity,
    lines: Sequence[TaxableLine],
    *,
    purpose: InvoicePurpose = InvoicePurpose.USAGE,
    currency: str | None = None,
) -> InvoiceTaxes:
    """The tax of an invoice of ``lines`` (tax-exclusive, each already rounded) for ``identity``.

    One tax line per rate, rounded once (:func:`~bridge.domain.money.tax_amount`). An exempt client pays
    none; an exempt EU business gets the reverse-charge note with its VAT ID. ``currency`` is needed only
    for an invoice without lines. Raises ValueError for lines in two currencies or an unrounded line.
    """
    invoice_currency, zero, subtotal = _subtotal(lines, currency)
    rule, why = _applicable_rule(rules, identity, purpose)
    if rule is None:
        return InvoiceTaxes(invoice_currency, subtotal, (), zero, subtotal, why, _reverse_charge(identity))
    tax = tax_amount(subtotal, rule.rate, invoice_currency)
    line = TaxLine(rule.name, rule.rate, subtotal, tax)
    return InvoiceTaxes(invoice_currency, subtotal, (line,), tax, subtotal + tax, why)


def is_taxed(
    rules: TaxRules, identity: ClientTaxIdentity, purpose: InvoicePurpose = InvoicePurpose.USAGE
) -> bool:
    """Whether items for this client carry tax: WHMCS's ``taxed`` flag in WHMCS mode."""
    rule, _ = _applicable_rule(rules, identity, purpose)
    return rule is not None and rule.rate > 0


def _applicable_rule(
    rules: TaxRules, identity: ClientTaxIdentity, purpose: InvoicePurpose
) -> tuple[TaxRule | None, str]:
    if identity.tax_exempt:
        assert identity.exemption is not None
        return None, f"tax exempt ({identity.exemption.why}; set by {identity.exemption.by})"
    if purpose == InvoicePurpose.ADD_CREDIT and not rules.tax_on_add_credit:
        return None, "tax on add-credit invoices is off: tax is charged when the credit is spent"
    rule = rules.rule_for(identity.country)
    if rule is None:
        return None, f"no tax rule for {identity.country}"
    return rule, rule.label


def _reverse_charge(identity: ClientTaxIdentity) -> str | None:
    """The reverse-charge note, for an exempt client of an EU member state with a VAT ID of it."""
    if not identity.tax_exempt or identity.vat_id is None or identity.country not in EU_MEMBER_STATES:
        return None
    if identity.vat_id_country != identity.country:
        return None
    return f"{REVERSE_CHARGE_TEXT} Customer VAT ID: {identity.vat_id}."


def _subtotal(lines: Sequence[TaxableLine], currency: str | None) -> tuple[str, Decimal, Decimal]:
    """The invoice's currency, its zero (0.00) and the sum of its lines; refuses a second currency or an
    unrounded line."""
    invoice_currency = currency if currency is not None else lines[0].currency if lines else None
    if invoice_currency is None:
        raise ValueError("an invoice without lines needs its currency")
    zero = subtotal = round_money(_ZERO, invoice_currency)
    for line in lines:
        if line.currency != invoice_currency:
            both = ", ".join(sorted((invoice_currency, line.currency)))
            raise ValueError(f"an invoice's lines are in one currency; got {both}")
        if not is_rounded(line.amount, invoice_currency):
            raise ValueError(
                f"line amount {line.amount} is not rounded to the minor unit of {invoice_currency}; "
                "round each line once (money.round_money) before taxing the invoice"
            )
        subtotal += line.amount
    return invoice_currency, zero, subtotal


def check_country(code: str) -> str:
    """``code`` if it looks like an ISO 3166-1 alpha-2 code (two capitals), else a ValueError.

    Whether the code exists is checked where the settings are read (pycountry); the domain only needs
    the shape.
    """
    if not isinstance(code, str) or len(code) != 2 or not code.isalpha() or not code.isupper():
        raise ValueError(f"{code!r} is not an ISO 3166-1 alpha-2 country code such as 'DE'")
    return code


def _label(name: str, rate: Decimal) -> str:
    return f"{name} {rate.normalize():f} %"


def _instant(at: datetime) -> str:
    return at.strftime("%Y-%m-%d %H:%M UTC")


def _hours(span: timedelta) -> str:
    return f"{span.total_seconds() / 3600:g}"


# -- credit, counted net of tax ------------------------------------------------------------------------


def credit_cost(net: Decimal, total: Decimal, rules: TaxRules | None) -> Decimal:
    """What paying an invoice of ``net`` (``total`` with tax) from credit takes from the credit.

    Credit is counted net of tax, as Fleio does. With "tax on add-credit invoices" on, the tax was paid
    when the credit was bought, so the credit pays the net; with it off (or taxes off), the credit was
    bought without tax and the tax is charged when it is spent, so the credit pays the total.
    """
    if rules is not None and rules.tax_on_add_credit:
        return net
    return total


def net_of_tax(paid: Decimal, net: Decimal, total: Decimal, currency: str) -> Decimal:
    """The part of a payment of ``paid`` on an invoice of ``net`` (``total`` with tax) that is net of tax:
    what the payment adds to the credit (an add-credit invoice of 50.00 + 19 % paid 59.50 adds 50.00).
    A full payment is the net; a part payment its share, rounded once (money.round_money)."""
    if paid == total:
        return net
    if net == total or total == 0:
        return paid
    return round_money(paid * net / total, currency)
