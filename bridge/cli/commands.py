"""Imports every command module, so each registers its commands on the group."""

from bridge.cli import clients, daemon, invoices, usage

__all__ = ["clients", "daemon", "invoices", "usage"]
