"""Imports every command module, so each registers its commands on the group."""

from bridge.cli import clients, credit, daemon, enrollment, invoices, outbox, plans, usage

__all__ = ["clients", "credit", "daemon", "enrollment", "invoices", "outbox", "plans", "usage"]
