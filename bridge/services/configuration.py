"""From a ``[configurations.<name>]`` section to the domain's Configuration.

The settings file speaks the operator's language (0 turns the billable-seconds limit off,
invoice_zero_amounts); the domain speaks seed 001's. This is the one place the two meet.
"""

from __future__ import annotations

from datetime import UTC, datetime

from bridge.domain.configuration import (
    AutoInvoiceMode,
    AutoInvoicing,
    Configuration,
    InvoicingOption,
    SuspensionRule,
    TerminationRule,
)
from bridge.settings import ConfigurationSettings, Settings


def configuration_section(settings: Settings, name: str) -> ConfigurationSettings:
    """The ``[configurations.<name>]`` section a client of configuration ``name`` has: ``default`` when the
    name is not (or no longer) in the settings. The one place that choice is made."""
    return settings.configurations.get(name, settings.configurations["default"])


def configuration_named(settings: Settings, name: str) -> Configuration:
    """The domain's configuration of ``name`` (see :func:`configuration_section`)."""
    section = configuration_section(settings, name)
    return to_domain(section, generate_invoices_default=settings.billing.generate_invoices)


def to_domain(section: ConfigurationSettings, *, generate_invoices_default: bool) -> Configuration:
    generate = (
        section.generate_invoices if section.generate_invoices is not None else generate_invoices_default
    )
    return Configuration(
        required_credit_for_new_services=section.required_credit_for_new_services,
        credit_limit=section.credit_limit,
        minimum_credit_after_payment=section.minimum_credit_after_payment,
        required_credit_on_agreement=section.required_credit_on_agreement,
        credit_limit_on_agreement=section.credit_limit_on_agreement,
        client_initial_credit=section.client_initial_credit,
        billing_cycle_as_calendar_month=section.billing_cycle_calendar,
        mark_invoiced_periods_paid=section.mark_invoiced_periods_paid,
        billable_seconds_per_month=section.billable_seconds_per_month or None,
        generate_invoices=generate,
        generate_invoices_after=_aware(section.generate_invoices_after),
        do_not_invoice_zero_prices=not section.invoice_zero_amounts,
        notify_on_unpaid_invoices=section.notify_on_unpaid_invoices,
        automatic_settlements=section.automatic_settlements,
        auto_pay_only_when_enough_credit=section.auto_pay_only_when_enough_credit,
        invoicing_option=InvoicingOption(section.invoicing_option),
        next_fiscal_number=section.next_fiscal_number,
        fiscal_number_format=section.fiscal_number_format,
        proforma_number_format=section.proforma_number_format,
        invoice_due_days=section.invoice_due_days,
        invoice_detail=section.invoice_detail,
        credit_notifications=tuple(section.credit_notifications),
        suspension=SuspensionRule(
            enabled=section.suspension.enabled,
            delay_hours=section.suspension.delay_hours,
            delay_credit=section.suspension.delay_credit,
        ),
        termination=TerminationRule(
            enabled=section.termination.enabled,
            delay_hours=section.termination.delay_hours,
            suspend_instead=section.termination.suspend_instead,
        ),
        shelve_instances_on_suspend=section.shelve_instances_on_suspend,
        auto_invoicing=AutoInvoicing(
            enabled=section.auto_invoicing.enabled,
            mode=AutoInvoiceMode(section.auto_invoicing.mode),
            fixed_amount=section.auto_invoicing.fixed_amount,
        ),
    )


def _aware(instant: datetime | None) -> datetime | None:
    """A cutoff from the settings file; one written without an offset is read as UTC."""
    if instant is None or instant.tzinfo is not None:
        return instant
    return instant.replace(tzinfo=UTC)
