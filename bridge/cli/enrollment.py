"""Enrollment for support staff and operators: a client's login link, the sign-ups, the deferred retry."""

from __future__ import annotations

from typing import Any

import click

from bridge.bootstrap import App
from bridge.cli.base import COUNT, Context, cli, pass_context, print_json
from bridge.cli.clients import client
from bridge.errors import InputError
from bridge.services.enrollment import EnrollmentService
from bridge.services.views import Enrollment


def _service(app: App) -> EnrollmentService:
    return app.enrollment


@client.command("sso-link")
@click.argument("client_ref", metavar="CLIENT")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@pass_context
def client_sso_link(context: Context, client_ref: str, as_json: bool) -> None:
    """Print a single-use link that logs CLIENT (id or email) in to SolusVM.

    The link leads through the sign-up site (enrollment.public_url), which asks SolusVM for a one-time
    token when it is opened; it works once and expires after enrollment.sso_link_ttl_minutes.
    """
    app = context.app
    if not app.settings.enrollment.enabled:
        raise InputError("enrollment.enabled is false: no site serves the link; enable [enrollment] first")
    link, expires_at = _service(app).login_link(client_ref)
    if as_json:
        print_json({"url": link, "expires_at": expires_at})
        return
    click.echo(link)
    click.echo(f"single use; valid until {expires_at.isoformat()}", err=True)


@client.command("signin-link")
@click.argument("client_ref", metavar="CLIENT")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@pass_context
def client_signin_link(context: Context, client_ref: str, as_json: bool) -> None:
    """Print a single-use link that signs CLIENT (id or email) in to its own page on the sign-up site:
    credit, invoices, auto-invoicing, and post-pay activation for a client that has none yet.

    It works once and expires after enrollment.sso_link_ttl_minutes.
    """
    app = context.app
    if not app.settings.enrollment.enabled:
        raise InputError("enrollment.enabled is false: no site serves the link; enable [enrollment] first")
    link, expires_at = app.self_service.account_link(client_ref)
    if as_json:
        print_json({"url": link, "expires_at": expires_at})
        return
    click.echo(link)
    click.echo(f"single use; valid until {expires_at.isoformat()}", err=True)


@cli.group()
def enrollment() -> None:
    """Sign-ups through the enrollment pages and their SolusVM users."""


@enrollment.command("list")
@click.option("--limit", default=100, type=COUNT, show_default=True, help="How many, newest first.")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@pass_context
def enrollment_list(context: Context, limit: int, as_json: bool) -> None:
    """List sign-ups, newest first, with the state of each one's client and SolusVM user."""
    found = _service(context.app).recent(limit)
    if as_json:
        print_json([_enrollment_json(item) for item in found])
        return
    if not found:
        click.echo(f"no sign-ups yet; the sign-up page is {context.settings.enrollment.base_url()}/")
    for item in found:
        client_id = item.client_id if item.client_id is not None else "-"
        problem = f"  ({item.solusvm_error})" if item.solusvm_error else ""
        click.echo(
            f"{item.id:>6}  {item.email:<32} {item.state.value:<8} client {client_id!s:<6} "
            f"solusvm {item.solusvm_state.value} {item.solusvm_user_id or ''}{problem}"
        )


@enrollment.command("retry")
@pass_context
def enrollment_retry(context: Context) -> None:
    """Finish interrupted sign-ups and create deferred SolusVM users now (the daemon does it on schedule)."""
    ready = _service(context.app).retry_pending()
    click.echo(f"{ready} SolusVM user{'s' if ready != 1 else ''} made ready")


def _enrollment_json(item: Enrollment) -> dict[str, Any]:
    return {
        "id": item.id,
        "email": item.email,
        "name": item.name,
        "company": item.company,
        "state": item.state.value,
        "client_id": item.client_id,
        "solusvm_state": item.solusvm_state.value,
        "solusvm_user_id": item.solusvm_user_id,
        "solusvm_error": item.solusvm_error,
        "solusvm_attempts": item.solusvm_attempts,
        "auto_order_service": item.auto_order_service,
        "requested_at": item.requested_at,
        "accepted_at": item.accepted_at,
        "activated_at": item.activated_at,
    }
