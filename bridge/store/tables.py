"""The schema, as SQLAlchemy Core tables. Alembic migrations in ./migrations create exactly this."""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    Date,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from bridge.store.types import ExactDecimal, UTCDateTime

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

clients = Table(
    "clients",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("email", String(254), nullable=False, unique=True),
    Column("name", String(200), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("configuration", String(64), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    # The client's tax identity (issue 16): ISO 3166-1 country and offline-checked VAT ID, or NULL.
    Column("country", String(2), nullable=True),
    Column("vat_id", String(32), nullable=True),
)

client_tax_exemptions = Table(
    "client_tax_exemptions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("client_id", Integer, ForeignKey("clients.id", ondelete="CASCADE"), nullable=False),
    Column("exempt", Boolean, nullable=False),
    Column("decided_by", String(128), nullable=False),
    Column("decided_at", UTCDateTime(), nullable=False),
    Column("why", Text(), nullable=False),
    Index(None, "client_id"),
)
"""Every tax exemption decision (staff's or the VIES flow's); the latest of a client is in force."""

vies_checks = Table(
    "vies_checks",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("client_id", Integer, ForeignKey("clients.id", ondelete="CASCADE"), nullable=False),
    Column("vat_id", String(32), nullable=False),
    Column("asked_at", UTCDateTime(), nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("code", String(64), nullable=True),
    Column("request_date", UTCDateTime(), nullable=True),
    Column("consultation_number", String(64), nullable=True),
    Column("detail", Text(), nullable=True),
    Index(None, "client_id", "asked_at"),
)
"""Every VIES answer about a client's VAT ID: the evidence of the exemption and of the 48-hour rule."""

client_links = Table(
    "client_links",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("client_id", Integer, ForeignKey("clients.id", ondelete="CASCADE"), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("external_id", String(128), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    UniqueConstraint("kind", "external_id"),
    Index(None, "client_id"),
)

job_runs = Table(
    "job_runs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("job", String(64), nullable=False),
    Column("owner", String(128), nullable=False),
    Column("started_at", UTCDateTime(), nullable=False),
    Column("finished_at", UTCDateTime(), nullable=True),
    Column("status", String(16), nullable=False),
    Column("error", Text(), nullable=True),
    Index(None, "job", "started_at"),
)

leases = Table(
    "leases",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("owner", String(128), nullable=False),
    Column("acquired_at", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False),
    # A new random token per acquisition: what fences the holder's writes (bridge/store/jobs.py).
    Column("token", String(64), nullable=True),
)

work_chunks = Table(
    "work_chunks",
    metadata,
    # One range of client ids of one generation of a run, claimed by one worker at a time (store/chunks.py).
    Column("run", String(64), primary_key=True),
    Column("generation", Integer, primary_key=True, autoincrement=False),
    Column("chunk", Integer, primary_key=True, autoincrement=False),
    Column("first_client", Integer, nullable=False),
    Column("last_client", Integer, nullable=False),
    Column("opened_at", UTCDateTime(), nullable=False),
    Column("holder", String(128), nullable=True),
    Column("token", String(64), nullable=True),
    Column("claimed_at", UTCDateTime(), nullable=True),
    Column("expires_at", UTCDateTime(), nullable=True),
    Column("done_at", UTCDateTime(), nullable=True),
)

push_claims = Table(
    "push_claims",
    metadata,
    # Which push works a client's outbox rows now (migration 0018, issue 17; bridge/store/push_claims.py):
    # the claim holds while the lease ``lease`` is held with ``token``, and frees itself when it is not.
    Column("client_id", Integer, ForeignKey("clients.id", ondelete="CASCADE"), primary_key=True),
    Column("lease", String(64), nullable=False),
    Column("token", String(64), nullable=False),
    Column("holder", String(128), nullable=False),
    Column("claimed_at", UTCDateTime(), nullable=False),
)

usage_records = Table(
    "usage_records",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("source", String(16), nullable=False),
    Column("window_start", UTCDateTime(), nullable=False),
    Column("resource_id", String(64), nullable=False),
    Column("window_end", UTCDateTime(), nullable=False),
    Column("resource_name", String(255), nullable=False),
    Column("owner", String(64), nullable=False),
    Column("plan", String(128), nullable=False),
    Column("hours", ExactDecimal(20, 8), nullable=False),
    Column("tokens", ExactDecimal(20, 8), nullable=True),
    Column("collected_at", UTCDateTime(), nullable=False),
    UniqueConstraint("source", "window_start", "resource_id"),
    Index(None, "owner", "window_start"),
    Index(None, "resource_id", "window_start"),
    # Every column the reconciliation's per-cycle sums read, in their grouping order (migration 0017).
    Index(
        "ix_usage_records_owner_resource_covering",
        "owner",
        "source",
        "resource_id",
        "plan",
        "window_start",
        "window_end",
        "hours",
        "resource_name",
    ),
)

usage_rollups = Table(
    # Per resource, plan and billing day (local, in usage_rollup_state.zone): the totals of the hourly
    # windows in usage_records that start that day, kept in the transaction that writes those windows
    # (bridge/store/usage_rollups.py). Month end reads these, not the hours.
    "usage_rollups",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("source", String(16), nullable=False),
    Column("owner", String(64), nullable=False),
    Column("resource_id", String(64), nullable=False),
    Column("plan", String(128), nullable=False),
    Column("day_start", UTCDateTime(), nullable=False),
    Column("first_start", UTCDateTime(), nullable=False),
    Column("last_end", UTCDateTime(), nullable=False),
    Column("latest_name", String(280), nullable=False),
    Column("windows", Integer, nullable=False),
    Column("hours", ExactDecimal(20, 8), nullable=False),
    Column("tokens", ExactDecimal(20, 8), nullable=True),
    Column("collected_at", UTCDateTime(), nullable=False),
    UniqueConstraint("source", "day_start", "resource_id", "owner", "plan"),
    Index(None, "owner", "day_start"),
)

usage_rollup_state = Table(
    # One row: the zone whose days usage_rollups are cut in, and the instant before which the hourly
    # evidence was pruned (windows starting earlier are final: they are no longer ingested).
    "usage_rollup_state",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("zone", String(64), nullable=False),
    Column("pruned_before", UTCDateTime(), nullable=True),
)

usage_watermarks = Table(
    "usage_watermarks",
    metadata,
    Column("source", String(16), primary_key=True),
    Column("collected_until", UTCDateTime(), nullable=True),
    Column("updated_at", UTCDateTime(), nullable=False),
    Column("records_collected", Integer, nullable=False, default=0),
    Column("last_error", Text(), nullable=True),
    Column("last_error_at", UTCDateTime(), nullable=True),
)

solusvm_plans = Table(
    "solusvm_plans",
    metadata,
    Column("plan_id", String(32), primary_key=True),
    Column("name", String(255), nullable=False),
    Column("tokens_per_hour", Integer, nullable=False),
    Column("tokens_per_month", Integer, nullable=False),
    Column("read_at", UTCDateTime(), nullable=False),
)

invoices = Table(
    "invoices",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("client_id", Integer, ForeignKey("clients.id"), nullable=False),
    Column("reference", String(64), nullable=False, unique=True),
    Column("kind", String(16), nullable=False),
    Column("period_start", UTCDateTime(), nullable=True),
    Column("period_end", UTCDateTime(), nullable=True),
    Column("currency", String(3), nullable=False),
    Column("status", String(16), nullable=False),
    Column("issuer", String(16), nullable=False),
    Column("series", String(64), nullable=True),
    Column("number", String(64), nullable=True),
    Column("proforma_number", String(64), nullable=True),
    Column("issued_at", UTCDateTime(), nullable=False),
    Column("due_at", UTCDateTime(), nullable=False),
    Column("total", ExactDecimal(20, 8), nullable=False),
    Column("paid_at", UTCDateTime(), nullable=True),
    Column("paid_amount", ExactDecimal(20, 8), nullable=True),
    Column("remote_id", String(32), nullable=True),
    Column("replaces_id", Integer, ForeignKey("invoices.id"), nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
    # Taxes (issue 16): the net subtotal (NULL before taxes existed: total is net), why the invoice is
    # taxed as it is, and the reverse-charge note of an exempt EU business. total = subtotal + tax.
    Column("subtotal", ExactDecimal(20, 8), nullable=True),
    Column("tax_reason", Text(), nullable=True),
    Column("reverse_charge", Text(), nullable=True),
    Index(None, "client_id", "kind", "period_start"),
    Index(None, "status"),
    UniqueConstraint("series", "number"),
    UniqueConstraint("series", "proforma_number"),
)

invoice_lines = Table(
    "invoice_lines",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("invoice_id", Integer, ForeignKey("invoices.id", ondelete="CASCADE"), nullable=False),
    Column("position", Integer, nullable=False),
    Column("line_reference", String(255), nullable=False),
    Column("source", String(16), nullable=False),
    Column("resource_id", String(64), nullable=False),
    Column("resource_name", String(255), nullable=False),
    Column("plan", String(128), nullable=False),
    Column("period_start", UTCDateTime(), nullable=False),
    Column("period_end", UTCDateTime(), nullable=False),
    Column("hours", ExactDecimal(20, 8), nullable=False),
    Column("billed_hours", ExactDecimal(20, 8), nullable=False),
    Column("unit_price", ExactDecimal(20, 8), nullable=False),
    Column("tokens_per_hour", Integer, nullable=True),
    Column("tokens", Integer, nullable=True),
    Column("amount", ExactDecimal(20, 8), nullable=False),
    Column("capped", Boolean, nullable=False),
    Column("late", Boolean, nullable=False),
    Column("description", Text(), nullable=False),
    UniqueConstraint("invoice_id", "line_reference"),
)

invoice_taxes = Table(
    "invoice_taxes",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("invoice_id", Integer, ForeignKey("invoices.id", ondelete="CASCADE"), nullable=False),
    Column("position", Integer, nullable=False),
    Column("name", String(64), nullable=False),
    Column("rate", ExactDecimal(20, 8), nullable=False),
    Column("base", ExactDecimal(20, 8), nullable=False),
    Column("amount", ExactDecimal(20, 8), nullable=False),
    UniqueConstraint("invoice_id", "position"),
)
"""One row per tax rate on an invoice: ``VAT 19 %`` of ``base`` is ``amount``, rounded once."""

number_sequences = Table(
    "number_sequences",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("next_value", Integer, nullable=False),
)

outbox = Table(
    "outbox",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("client_id", Integer, ForeignKey("clients.id"), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("reference", String(128), nullable=False, unique=True),
    Column("payload", Text(), nullable=False),
    Column("state", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("remote_id", String(64), nullable=True),
    Column("last_error", Text(), nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    Column("next_attempt_at", UTCDateTime(), nullable=False),
    Column("done_at", UTCDateTime(), nullable=True),
    # The lease token of the push that last claimed the row, and when: an in-doubt row is looked up only
    # whmcs.in_doubt_settle_seconds after its claim, and only by the holder of the current lease.
    Column("lease_token", String(64), nullable=True),
    Column("claimed_at", UTCDateTime(), nullable=True),
    Index(None, "state", "client_id", "id"),
)

client_agreements = Table(
    "client_agreements",
    metadata,
    Column("client_id", Integer, ForeignKey("clients.id", ondelete="CASCADE"), primary_key=True),
    Column("has_agreement", Boolean, nullable=False),
    Column("changed_at", UTCDateTime(), nullable=False),
    Column("checked_at", UTCDateTime(), nullable=False),
)

ledger_entries = Table(
    "ledger_entries",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("client_id", Integer, ForeignKey("clients.id"), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("amount", ExactDecimal(20, 8), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("reference", String(128), nullable=False, unique=True),
    Column("description", Text(), nullable=False),
    Column("occurred_at", UTCDateTime(), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Index(None, "client_id", "occurred_at"),
)

client_credit_states = Table(
    "client_credit_states",
    metadata,
    Column("client_id", Integer, ForeignKey("clients.id", ondelete="CASCADE"), primary_key=True),
    Column("settled_until", UTCDateTime(), nullable=True),
    Column("under_limit_since", UTCDateTime(), nullable=True),
    Column("suspended_at", UTCDateTime(), nullable=True),
    Column("shelved", Boolean, nullable=False),
    Column("terminated_at", UTCDateTime(), nullable=True),
    Column("notifications_sent", String(64), nullable=False),
    Column("auto_invoicing", String(16), nullable=True),
    Column("auto_invoice_amount", ExactDecimal(20, 8), nullable=True),
    Column("updated_at", UTCDateTime(), nullable=False),
)

client_suspensions = Table(
    "client_suspensions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("client_id", Integer, ForeignKey("clients.id", ondelete="CASCADE"), nullable=False),
    Column("started_at", UTCDateTime(), nullable=False),
    Column("ended_at", UTCDateTime(), nullable=True),
    Column("reason", Text(), nullable=False),
    Column("started_by", String(128), nullable=False),
    Column("ended_by", String(128), nullable=True),
    Column("shelved", Boolean, nullable=False),
    UniqueConstraint("client_id", "started_at"),
)
"""Every suspension of a client (the current one open): from, to, why and who (staff or process_clients)."""

client_notifications = Table(
    "client_notifications",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("client_id", Integer, ForeignKey("clients.id"), nullable=False),
    Column("reference", String(128), nullable=False, unique=True),
    Column("kind", String(32), nullable=False),
    Column("subject", String(255), nullable=False),
    Column("body", Text(), nullable=False),
    Column("channel", String(16), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
)

# -- enrollment (migration 0007): sign-up requests, their single-use links, terms acceptance ---------------

enrollments = Table(
    "enrollments",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("email", String(254), nullable=False, unique=True),
    Column("name", String(200), nullable=False),
    Column("company", String(200), nullable=False),
    Column("state", String(16), nullable=False),
    Column("sealed_password", Text(), nullable=True),
    Column("client_id", Integer, ForeignKey("clients.id"), nullable=True, unique=True),
    Column("solusvm_state", String(16), nullable=False),
    Column("solusvm_user_id", String(32), nullable=True),
    Column("solusvm_error", Text(), nullable=True),
    Column("solusvm_attempts", Integer, nullable=False),
    Column("solusvm_claimed_until", UTCDateTime(), nullable=True),
    Column("auto_order_service", String(128), nullable=True),
    Column("requested_at", UTCDateTime(), nullable=False),
    Column("accepted_at", UTCDateTime(), nullable=True),
    Column("activated_at", UTCDateTime(), nullable=True),
    Column("updated_at", UTCDateTime(), nullable=False),
    # The country and VAT ID given at sign-up (issue 16), handed to the client made from it.
    Column("country", String(2), nullable=True),
    Column("vat_id", String(32), nullable=True),
    Index(None, "state", "solusvm_state"),
)

enrollment_tokens = Table(
    "enrollment_tokens",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("digest", String(64), nullable=False, unique=True),
    Column("purpose", String(16), nullable=False),
    Column("enrollment_id", Integer, ForeignKey("enrollments.id", ondelete="CASCADE"), nullable=True),
    Column("client_id", Integer, ForeignKey("clients.id", ondelete="CASCADE"), nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False),
    Column("used_at", UTCDateTime(), nullable=True),
    Index(None, "enrollment_id"),
    Index(None, "client_id"),
    Index(None, "expires_at"),
)

terms_acceptances = Table(
    "terms_acceptances",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("enrollment_id", Integer, ForeignKey("enrollments.id", ondelete="CASCADE"), nullable=False),
    Column("document", String(32), nullable=False),
    Column("version", String(64), nullable=False),
    Column("accepted_at", UTCDateTime(), nullable=False),
    Column("accepted_from", String(64), nullable=True),
    UniqueConstraint("enrollment_id", "document", "version"),
)

# -- pricing plans, discounts, billing periods and subscriptions (migration 0006, issue 8) ------------------

client_terms = Table(
    "client_terms",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("client_id", Integer, ForeignKey("clients.id"), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("plan", String(64), nullable=True),
    Column("discount_type", String(16), nullable=True),
    Column("value", ExactDecimal(20, 8), nullable=True),
    Column("source", String(16), nullable=True),
    Column("resource_kind", String(128), nullable=True),
    Column("starts_at", UTCDateTime(), nullable=False),
    Column("ends_at", UTCDateTime(), nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Index(None, "client_id", "starts_at"),
)

billing_periods = Table(
    "billing_periods",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("client_id", Integer, ForeignKey("clients.id"), nullable=False),
    Column("frequency", String(8), nullable=False),
    Column("invoice_day", Integer, nullable=False),
    Column("invoice_month", Integer, nullable=True),
    Column("periods", Integer, nullable=True),
    Column("charged", Integer, nullable=False),
    Column("started_on", Date(), nullable=False),
    Column("next_recharge_on", Date(), nullable=False),
    Column("ended_on", Date(), nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Index(None, "client_id"),
    Index(None, "next_recharge_on"),
)

subscriptions = Table(
    "subscriptions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("client_id", Integer, ForeignKey("clients.id"), nullable=False),
    Column("period_id", Integer, ForeignKey("billing_periods.id"), nullable=False),
    Column("name", String(128), nullable=False),
    Column("frequency", String(8), nullable=False),
    Column("amount", ExactDecimal(20, 8), nullable=False),
    Column("prorate", Boolean, nullable=False),
    Column("started_at", UTCDateTime(), nullable=False),
    Column("billed_until", Date(), nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Index(None, "client_id"),
    Index(None, "period_id"),
)

subscription_charges = Table(
    "subscription_charges",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("subscription_id", Integer, ForeignKey("subscriptions.id"), nullable=False),
    Column("description", String(255), nullable=False),
    Column("amount", ExactDecimal(20, 8), nullable=False),
    Column("prorate", Boolean, nullable=False),
    Column("added_on", Date(), nullable=False),
    Column("span_start", Date(), nullable=False),
    Column("bill_until", Date(), nullable=False),
    Column("invoice_id", Integer, ForeignKey("invoices.id"), nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Index(None, "subscription_id"),
)

# SolusVM runtime evidence (issue 14, docs/solusvm-runtime.md section 5): kept after a server is deleted.
solusvm_servers = Table(
    "solusvm_servers",
    metadata,
    Column("server_id", Integer, primary_key=True, autoincrement=False),
    Column("name", String(255), nullable=False),
    Column("user_id", Integer, nullable=False),
    Column("plan_id", Integer, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("last_listed_at", UTCDateTime(), nullable=False),
    Index(None, "last_listed_at"),
)

solusvm_polls = Table(
    "solusvm_polls",
    metadata,
    Column("server_id", Integer, primary_key=True, autoincrement=False),
    Column("at", UTCDateTime(), primary_key=True),
    Column("state", String(16), nullable=False),
)

solusvm_records = Table(
    "solusvm_records",
    metadata,
    Column("kind", String(16), primary_key=True),
    Column("record_id", Integer, primary_key=True, autoincrement=False),
    Column("server_id", Integer, nullable=True),
    Column("action", String(64), nullable=False),
    Column("status", String(32), nullable=True),
    Column("created_at", UTCDateTime(), nullable=True),
    Column("started_at", UTCDateTime(), nullable=True),
    Column("finished_at", UTCDateTime(), nullable=True),
    Column("listed_after", UTCDateTime(), nullable=True),
    Column("listed_at", UTCDateTime(), nullable=False),
    Index(None, "server_id"),
)

# -- self-service (migration 0010, issues 15.7 and 19): each client's auto-invoicing choices, and the
# password a client signs in to its pages with. The current choice is client_credit_states.auto_invoicing
# (``off``, ``estimated`` or ``fixed``) and .auto_invoice_amount; every change is a row here.
auto_invoicing_changes = Table(
    "auto_invoicing_changes",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("client_id", Integer, ForeignKey("clients.id", ondelete="CASCADE"), nullable=False),
    # ``off``, ``estimated`` or ``fixed:AMOUNT``; NULL: the configuration's default (never chosen before).
    Column("old_choice", String(48), nullable=True),
    Column("new_choice", String(48), nullable=False),
    Column("changed_by", String(255), nullable=False),
    Column("changed_at", UTCDateTime(), nullable=False),
    Index(None, "client_id", "changed_at"),
)

client_passwords = Table(
    "client_passwords",
    metadata,
    Column("client_id", Integer, ForeignKey("clients.id", ondelete="CASCADE"), primary_key=True),
    Column("password_hash", String(255), nullable=False),
    Column("set_at", UTCDateTime(), nullable=False),
)

# -- billing-cycle schedule history (migration 0015, issue 15) ---------------------------------------------

cycle_schedules = Table(
    "cycle_schedules",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("client_id", Integer, ForeignKey("clients.id", ondelete="CASCADE"), nullable=False),
    Column("calendar_months", Boolean, nullable=False),
    Column("since", UTCDateTime(), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Index(None, "client_id", "since"),
)
