"""What the invoicing tests share: the prices of the fixtures' flavors and plans, and a linked client."""

from __future__ import annotations

from bridge.bootstrap import App
from bridge.domain.clients import Client, LinkKind

PRICING = {
    "token_price": "0.00100",
    "flavors": {"m1.small": "0.0125", "m1.large": "0.10"},
    "solusvm_plans": {"7": {"tokens_per_hour": 7, "tokens_per_month": 5000}},
}


def client_with(app: App, email: str, *, project: str | None = None, solus_user: str | None = None) -> Client:
    """A client named after its email, linked to an OpenStack project and/or a SolusVM user."""
    client = app.clients.add(email=email, name=email.split("@")[0].title())
    if project:
        app.clients.link(str(client.id), LinkKind.OPENSTACK_PROJECT, project)
    if solus_user:
        app.clients.link(str(client.id), LinkKind.SOLUSVM_USER, solus_user)
    return app.clients.get(str(client.id))
