"""The pure domain of billing-bridge: values in, values out; every billing rule is written here once.

No I/O and no clock reads (the current time is always a parameter); money is ``decimal.Decimal`` end to
end. ``money`` holds the one rounding rule, ``cycles`` the billing cycles in the configured time zone and
the one cycle choice of a client, ``pricing`` the price book and the billable-seconds cap, ``terms`` plans
and discounts over time, ``invoicing`` the invoice drafts, the plan of an invoicing run, the invoice status
machine and the stored line shape, ``periods`` billing periods and what a recharge bills, ``credit`` the
up-to-date credit and the credit decisions, ``configuration`` a client's configuration, ``references``
every ``BB-...`` reference, ``effects`` the typed intents the outbox holds.
"""
