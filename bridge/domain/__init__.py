"""The pure domain of billing-bridge: values in, values out.

No I/O and no clock reads (the current time is always a parameter); money is ``decimal.Decimal`` end to
end. ``money`` holds the one rounding rule, ``cycles`` the billing cycles in the configured time zone,
``pricing`` the price book and the billable-seconds cap, ``invoicing`` the invoice drafts.
"""
