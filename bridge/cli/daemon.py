"""Running and inspecting the daemon: run, migrate, check-config, status."""

from __future__ import annotations

import json
import os
import sys

import click

from bridge.cli.base import Context, cli, pass_context, print_json
from bridge.errors import EXIT_OK, BridgeError
from bridge.settings import config_path, load_settings


@cli.command("check-config")
@click.option("--json", "as_json", is_flag=True, help="Print the effective settings as JSON.")
@pass_context
def check_config(context: Context, as_json: bool) -> None:
    """Validate the settings file and print the effective settings, secrets masked.

    The client notifications' templates are rendered once with sample facts, so a broken one is refused.
    """
    from bridge.mail.notices import check_templates

    settings = load_settings(config_path(context.config))
    check_templates(settings)
    effective = settings.model_dump(mode="json")
    effective["database"]["url"] = settings.masked_database_url()
    if as_json:
        print_json(effective)
        return
    click.echo(f"{config_path(context.config)}: valid")
    for section, values in effective.items():
        click.echo(f"[{section}]")
        click.echo(json.dumps(values, indent=2, sort_keys=True))


@cli.command("migrate")
@pass_context
def migrate_command(context: Context) -> None:
    """Upgrade the database schema to this version's head (safe to repeat)."""
    before, after = context.app.migrate()
    if before == after:
        click.echo(f"database schema already at {after}; nothing to do")
    else:
        click.echo(f"database schema upgraded from {before or 'empty'} to {after}")


@cli.command()
@pass_context
def run(context: Context) -> None:
    """Run the daemon: scheduled jobs and the health endpoint, until SIGTERM."""
    from bridge.daemon import Daemon

    app = context.app
    if app.database_missing():
        raise BridgeError(
            f"no database at {app.settings.masked_database_url()}; run `billing-bridge migrate` first"
        )
    daemon = Daemon(app)
    daemon.handle_signals()
    daemon.start()
    daemon.run_until_stopped()
    if daemon.abandoned:
        # A job thread is still stuck (e.g. in a vendor's socket read) and the interpreter would wait for it
        # at exit: end the process now, as the shutdown timeout promises.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(EXIT_OK)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@pass_context
def status(context: Context, as_json: bool) -> None:
    """Show the schema state and each job's last run, age and next run."""
    app = context.app
    report = app.views.status(list(app.jobs))
    if as_json:
        print_json(report)
    database = report["database"]
    if not database["ok"]:
        raise BridgeError(
            f"{database['error']} ({database['url']}); check [database] url and that the server runs"
        )
    if not database["at_head"]:
        app.require_schema()
    if as_json:
        return
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
