"""Which module holds which command, and the group that imports a command's module on first use.

``billing-bridge --help`` and ``version`` import no command module (and so no database, vendor or web
library): the group's listing shows each command's summary from :data:`COMMANDS`.
``tests/cli/test_commands.py`` holds the table to the commands themselves, so it cannot drift.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import click


@dataclass(frozen=True)
class Lazy:
    """A top-level command: the modules that register it (and its subcommands), and its help's summary."""

    modules: tuple[str, ...]
    summary: str


_DAEMON = "bridge.cli.daemon"
_PLANS = "bridge.cli.plans"
_OUTBOX = "bridge.cli.outbox"
_USAGE = "bridge.cli.usage"
_CREDIT = "bridge.cli.credit"

COMMANDS: Mapping[str, Lazy] = {
    "check-config": Lazy(
        (_DAEMON,), "Validate the settings file and print the effective settings, secrets masked."
    ),
    "client": Lazy(
        # credit.py and enrollment.py add subcommands (set, can-create, sso-link) to the client group.
        ("bridge.cli.clients", _CREDIT, "bridge.cli.enrollment"),
        "Clients and the accounts they own in OpenStack, SolusVM and WHMCS.",
    ),
    "clients": Lazy((_USAGE,), "Bulk operations on clients."),
    "credit": Lazy((_CREDIT,), "Client credit: payments in, up-to-date credit, burn rate."),
    "discount": Lazy(
        (_PLANS,),
        "Clients' discounts: a percentage or a fixed amount off, from a start, optionally until an end.",
    ),
    "enrollment": Lazy(
        ("bridge.cli.enrollment",), "Sign-ups through the enrollment pages and their SolusVM users."
    ),
    "invoice": Lazy(
        ("bridge.cli.invoices",),
        "Invoice every client's ended billing cycles as of --date (each cycle once), or manage invoices.",
    ),
    "migrate": Lazy((_DAEMON,), "Upgrade the database schema to this version's head (safe to repeat)."),
    "outbox": Lazy(
        (_OUTBOX,),
        "Effects waiting for WHMCS, oldest first; `outbox retry ID` and `outbox cancel ID` act on one.",
    ),
    "payments-sync": Lazy(
        (_OUTBOX,),
        "Read paid invoices and clients' agreements from WHMCS now (the daemon's payments_sync job).",
    ),
    "period": Lazy(
        (_PLANS,), "Billing periods: the schedules subscriptions recharge on (monthly or yearly)."
    ),
    "plan": Lazy(
        (_PLANS,),
        'Pricing plans ([pricing] is plan "default"; [plans.<name>] adds more) and clients\' assignments.',
    ),
    "process-clients": Lazy(
        (_CREDIT,),
        "Run the credit engine: notifications, suspension, termination, auto pay and auto-invoices.",
    ),
    "push": Lazy(
        (_OUTBOX,),
        "Send pending outbox rows to WHMCS now, under the same lease as the daemon's push job.",
    ),
    "reconcile": Lazy(
        ("bridge.cli.reconcile",),
        "Trace every collected hour of --month to an invoice line or a named reason, exactly once.",
    ),
    "run": Lazy((_DAEMON,), "Run the daemon: scheduled jobs and the health endpoint, until SIGTERM."),
    "status": Lazy((_DAEMON,), "Show the schema state and each job's last run, age and next run."),
    "subscription": Lazy(
        (_PLANS,), "Subscriptions: recurring fees in a billing period, and one-off charges on them."
    ),
    "sync": Lazy((_USAGE,), "Collect usage now, under the same lease as the daemon's usage_sync job."),
    "usage": Lazy((_USAGE,), "Collected usage."),
}


class LazyGroup(click.Group):
    """A click group that imports a command's modules when the command is first asked for.

    The modules register their commands on this group with ``@cli.command()`` as before; only the moment
    of their import changes.
    """

    def __init__(self, *args: Any, lazy: Mapping[str, Lazy], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = lazy

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in self.lazy:
            load(self.lazy[cmd_name])
        return self.commands.get(cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """Click's listing, with a command not imported yet shown by its summary (imports nothing)."""
        listing: dict[str, click.Command] = {
            name: self.commands.get(name) or click.Command(name, help=self.lazy[name].summary)
            for name in self.list_commands(ctx)
        }
        click.Group(commands=listing).format_commands(ctx, formatter)


def load(command: Lazy) -> None:
    for module in command.modules:
        importlib.import_module(module)


def load_all() -> None:
    """Import every command module (tests, and tools that walk the whole command tree)."""
    for command in COMMANDS.values():
        load(command)
