"""``billing-bridge``: the operator's command line. Thin: parse, call a service, print text or JSON.

Exit codes: 0 ok, 1 runtime failure, 2 bad input. Errors are one line on stderr; ``--debug`` adds the
traceback.
"""

from __future__ import annotations

import json
import sys
import traceback
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, NoReturn

import click

from bridge import __version__
from bridge.bootstrap import App, build_app
from bridge.domain.clients import Client, LinkKind
from bridge.errors import EXIT_BAD_INPUT, EXIT_FAILURE, BridgeError, InputError
from bridge.logs import configure as configure_logging
from bridge.logs import masker
from bridge.services.status import status_report
from bridge.settings import Settings, config_path, load_settings
from bridge.store.database import ensure_sqlite_directory, migrate, sqlite_file_missing


@dataclass
class Context:
    """Settings and the app, built on first use so ``--help`` and ``version`` need no settings file."""

    config: str | None
    debug: bool
    _app: App | None = field(default=None, init=False)

    @property
    def settings(self) -> Settings:
        return self.app.settings

    @property
    def app(self) -> App:
        if self._app is None:
            settings = load_settings(config_path(self.config))
            configure_logging("debug" if self.debug else settings.logging.level, settings.logging.format)
            self._app = build_app(settings)
        return self._app


pass_context = click.make_pass_decorator(Context)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option(
    "--config",
    metavar="PATH",
    help="Settings file (default: $BRIDGE_CONFIG, else ./settings.toml).",
)
@click.option("--debug", is_flag=True, help="Debug logs, and a traceback with any error.")
@click.pass_context
def cli(ctx: click.Context, config: str | None, debug: bool) -> None:
    """billing-bridge: bills OpenStack and SolusVM 2 usage, exactly once, into WHMCS or its own invoices."""
    ctx.obj = Context(config=config, debug=debug)
    ctx.call_on_close(lambda: ctx.obj._app.close() if ctx.obj._app else None)


@cli.command()
def version() -> None:
    """Print the version."""
    click.echo(f"billing-bridge {__version__}")


@cli.command("check-config")
@click.option("--json", "as_json", is_flag=True, help="Print the effective settings as JSON.")
@pass_context
def check_config(context: Context, as_json: bool) -> None:
    """Validate the settings file and print the effective settings, secrets masked."""
    settings = load_settings(config_path(context.config))
    effective = settings.model_dump(mode="json")
    effective["database"]["url"] = settings.masked_database_url()
    if as_json:
        _print_json(effective)
        return
    click.echo(f"{config_path(context.config)}: valid")
    for section, values in effective.items():
        click.echo(f"[{section}]")
        click.echo(json.dumps(values, indent=2, sort_keys=True))


@cli.command("migrate")
@pass_context
def migrate_command(context: Context) -> None:
    """Upgrade the database schema to this version's head (safe to repeat)."""
    url = context.settings.database_url()
    ensure_sqlite_directory(url)
    before, after = migrate(context.app.engine)
    if before == after:
        click.echo(f"database schema already at {after}; nothing to do")
    else:
        click.echo(f"database schema upgraded from {before or 'empty'} to {after}")


@cli.command()
@pass_context
def run(context: Context) -> None:
    """Run the daemon: scheduled jobs and the health endpoint, until SIGTERM."""
    from bridge.sync.daemon import Daemon

    app = context.app
    if sqlite_file_missing(app.settings.database_url()):
        raise BridgeError(
            f"no database at {app.settings.masked_database_url()}; run `billing-bridge migrate` first"
        )
    daemon = Daemon(app)
    daemon.start()
    daemon.run_until_stopped()


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@pass_context
def status(context: Context, as_json: bool) -> None:
    """Show the schema state and each job's last run, age and next run."""
    app = context.app
    report = status_report(app.engine, app.clock, app.settings, list(app.jobs))
    if as_json:
        _print_json(report)
        return
    database = report["database"]
    click.echo(f"billing-bridge {report['version']}  database {database['url']}")
    if database["ok"]:
        state = "at head" if database["at_head"] else f"BEHIND (head {database['schema_head']}): run migrate"
        click.echo(f"schema {database['schema'] or 'none'} {state}")
    else:
        click.echo(f"database: {database['error']}")
    for job in report["jobs"]:
        last = job["last_run"]
        click.echo(
            f"{job['name']:<16} schedule {job['schedule']!r:<16} last {last['status'] or 'never'}"
            f" {last['started_at'] or ''}  next {job['next_run'] or '-'}"
        )


@cli.group()
def client() -> None:
    """Clients and the accounts they own in OpenStack, SolusVM and WHMCS."""


@client.command("add")
@click.option("--email", required=True, help="The client's email (unique).")
@click.option("--name", required=True, help="The client's name or company.")
@click.option("--currency", help="ISO 4217 code (default: billing.currency).")
@click.option("--configuration", help="Named configuration (default: default).")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@pass_context
def client_add(
    context: Context, email: str, name: str, currency: str | None, configuration: str | None, as_json: bool
) -> None:
    """Add a client."""
    added = context.app.clients.add(email=email, name=name, currency=currency, configuration=configuration)
    _print_client(added, as_json)


@client.command("link")
@click.argument("client_ref", metavar="CLIENT")
@click.option("--openstack-project", help="OpenStack project id.")
@click.option("--solusvm-user", help="SolusVM user id.")
@click.option("--whmcs-client", help="WHMCS client id.")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@pass_context
def client_link(
    context: Context,
    client_ref: str,
    openstack_project: str | None,
    solusvm_user: str | None,
    whmcs_client: str | None,
    as_json: bool,
) -> None:
    """Link CLIENT (id or email) to one external account."""
    given = {
        LinkKind.OPENSTACK_PROJECT: openstack_project,
        LinkKind.SOLUSVM_USER: solusvm_user,
        LinkKind.WHMCS_CLIENT: whmcs_client,
    }
    chosen = [(kind, value) for kind, value in given.items() if value is not None]
    if len(chosen) != 1:
        raise InputError("give exactly one of --openstack-project, --solusvm-user, --whmcs-client")
    kind, external_id = chosen[0]
    _print_client(context.app.clients.link(client_ref, kind, external_id), as_json)


@client.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@pass_context
def client_list(context: Context, as_json: bool) -> None:
    """List clients."""
    found = context.app.clients.all()
    if as_json:
        _print_json([_client_json(item) for item in found])
        return
    if not found:
        click.echo("no clients yet; add one with `billing-bridge client add --email ... --name ...`")
    for item in found:
        links = ", ".join(f"{link.kind.value}={link.external_id}" for link in item.links) or "no links"
        click.echo(
            f"{item.id:>6}  {item.email:<32} {item.name:<24} {item.currency} {item.configuration}  {links}"
        )


@client.command("show")
@click.argument("client_ref", metavar="CLIENT")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@pass_context
def client_show(context: Context, client_ref: str, as_json: bool) -> None:
    """Show one client (by id or email)."""
    _print_client(context.app.clients.get(client_ref), as_json)


def _client_json(item: Client) -> dict[str, Any]:
    return {
        "id": item.id,
        "email": item.email,
        "name": item.name,
        "currency": item.currency,
        "configuration": item.configuration,
        "created_at": item.created_at.isoformat(),
        "links": [
            {
                "kind": link.kind.value,
                "external_id": link.external_id,
                "created_at": link.created_at.isoformat(),
            }
            for link in item.links
        ],
    }


def _print_client(item: Client, as_json: bool) -> None:
    if as_json:
        _print_json(_client_json(item))
        return
    click.echo(f"client {item.id}: {item.name} <{item.email}>")
    click.echo(f"  currency       {item.currency}")
    click.echo(f"  configuration  {item.configuration}")
    click.echo(f"  created        {item.created_at.isoformat()}")
    for link in item.links:
        click.echo(f"  {link.kind.value:<14} {link.external_id}")


def _print_json(document: Any) -> None:
    click.echo(json.dumps(document, indent=2, sort_keys=True, default=_json_default))


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    return str(value)


def main(argv: list[str] | None = None) -> NoReturn:
    """Console entry point: maps errors to exit codes and one clean line on stderr."""
    debug = "--debug" in (argv if argv is not None else sys.argv[1:])
    try:
        cli.main(args=argv, prog_name="billing-bridge", standalone_mode=False)
    except click.exceptions.Exit as done:
        sys.exit(done.exit_code)
    except click.Abort:
        click.echo("aborted", err=True)
        sys.exit(EXIT_FAILURE)
    except click.ClickException as error:
        error.show()
        sys.exit(EXIT_BAD_INPUT)
    except BridgeError as error:
        _fail(error, error.exit_code, debug)
    except Exception as error:  # a bug or an unexpected failure: one line, traceback with --debug
        _fail(error, EXIT_FAILURE, debug, prefix=f"unexpected {type(error).__name__}: ")
    sys.exit(0)


def _fail(error: BaseException, code: int, debug: bool, prefix: str = "") -> NoReturn:
    if debug:
        traceback.print_exc()
    click.echo(f"error: {prefix}{masker.mask_text(str(error))}", err=True)
    sys.exit(code)
