"""A client's own pages (issue 19) and post-pay activation by an existing client (issue 15 point 10).

Signed in (a password, or a single-use link from the WHMCS panel or support), a client sees its up-to-date
credit, burn rate and hours left, its invoices (HTML and PDF), its notification address and the way into
SolusVM, and chooses its credit auto-invoicing: the one thing here that concerns money, kept in the ledger
of changes. Every page needs a session that has not expired; every POST needs the CSRF token (app.py);
sign-ins are rate-limited per address and per email. Another client's invoice is "not found".
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from flask import Blueprint, Response, abort, redirect, render_template, request, session
from pydantic import SecretStr

from bridge.domain.clients import Client
from bridge.errors import InputError, NotFound
from bridge.services.enrollment import LinkProblem, TermsNotAccepted
from bridge.services.self_service import SelfService
from bridge.settings import ConfigurationSettings
from bridge.store.invoices import StoredInvoice
from bridge.web.enrollment.app import site
from bridge.web.enrollment.forms import password_problem
from bridge.web.enrollment.views import Page, _client_id, _ip, _link_limit, _sign_in, _too_many

blueprint = Blueprint("account", __name__)


def pages() -> SelfService:
    """The self-service of the site; the pages are "not found" on a site built without it."""
    found = site().self_service
    if found is None:
        abort(404)
    return found


def signed_in(view: Callable[[int], Page]) -> Callable[[], Page]:
    """A page for a signed-in client, called with its id; without a live session, the sign-in page."""

    @functools.wraps(view)
    def guarded() -> Page:
        client_id = _client_id()
        if client_id is None:
            return redirect("/signin", code=303)
        return view(client_id)

    return guarded


# -- signing in and out ----------------------------------------------------------------------------------


@blueprint.get("/signin")
def signin_form() -> Page:
    if _client_id() is not None:
        return redirect("/account", code=303)
    return render_template("signin.html", email="", failed=False)


@blueprint.post("/signin")
def signin() -> Page:
    config = site().settings.enrollment
    email = request.form.get("email", "").strip().lower()[:254]
    limits = [(f"signin-ip:{_ip()}", config.signin_limit_per_ip)]
    if email:
        limits.append((f"signin-email:{email}", config.signin_limit_per_email))
    wait = site().limiter.allow(limits)
    if wait is not None:
        return _too_many(wait)
    client_id = pages().sign_in(email, SecretStr(request.form.get("password", "")))
    if client_id is None:
        return render_template("signin.html", email=email, failed=True), 401
    _sign_in(client_id)
    return redirect("/account", code=303)


@blueprint.get("/signin/<token>")
def signin_link(token: str) -> Page:
    """A single-use sign-in link (the WHMCS panel's or support's): sign in, then the client's page."""
    wait = _link_limit()
    if wait is not None:
        return _too_many(wait)
    try:
        client_id = pages().use_account_link(token)
    except LinkProblem as problem:
        return render_template("link.html", state=problem.state.value, token="", login=True), 410
    _sign_in(client_id)
    return redirect("/account", code=303)


@blueprint.post("/signout")
def signout() -> Page:
    session.clear()
    return redirect("/", code=303)


# -- the client's page -----------------------------------------------------------------------------------


@blueprint.get("/account")
@signed_in
def account(client_id: int) -> Page:
    saved = request.args.get("saved") == "1"
    return _account_page(client_id, error=None, saved=saved, password_set=request.args.get("password") == "1")


@blueprint.post("/account/auto-invoicing")
@signed_in
def auto_invoicing(client_id: int) -> Page:
    try:
        pages().choose_auto_invoicing(client_id, _choice(), from_address=_ip())
    except InputError as error:
        return _account_page(client_id, error=str(error), saved=False), 400
    return redirect("/account?saved=1", code=303)


@blueprint.post("/account/password")
@signed_in
def password(client_id: int) -> Page:
    """A new sign-in password (a client that came with a link from the WHMCS panel has none yet)."""
    service = pages()
    client = service.client(client_id)
    chosen = request.form.get("password", "")
    length = site().settings.enrollment.password_min_length
    problem = password_problem(chosen, min_length=length, email=client.email, name=client.name)
    if problem is None and chosen != request.form.get("password_confirm", ""):
        problem = "The two passwords differ; type the same password twice."
    if problem is not None:
        return _account_page(client_id, error=problem, saved=False), 400
    service.set_password(client_id, SecretStr(chosen))
    return redirect("/account?password=1", code=303)


@blueprint.get("/account/invoices/<invoice_ref>")
def invoice_html(invoice_ref: str) -> Page:
    """The client's invoice as the printable HTML it would receive by mail."""
    from bridge.documents.invoices import stored_html

    found = _own_invoice(invoice_ref)
    if found is None:
        return redirect("/signin", code=303)
    invoice, client = found
    html = stored_html(invoice, client, site().settings.billing.zone(), _configuration(client))
    return Response(html, mimetype="text/html")


@blueprint.get("/account/invoices/<invoice_ref>/pdf")
def invoice_pdf(invoice_ref: str) -> Page:
    """The client's invoice as a PDF download: the bytes `invoice show --pdf` writes."""
    from bridge.documents.invoices import stored_pdf

    found = _own_invoice(invoice_ref)
    if found is None:
        return redirect("/signin", code=303)
    invoice, client = found
    pdf = stored_pdf(invoice, client, site().settings.billing.zone(), _configuration(client))
    name = "".join(char if char.isalnum() or char in "-_" else "-" for char in invoice.display_number)
    return Response(
        pdf,
        mimetype="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="invoice-{name}.pdf"'},
    )


# -- issue 15 point 10: post-pay for an existing client --------------------------------------------------


@blueprint.get("/activate")
@signed_in
def activate_form(client_id: int) -> Page:
    if site().service.status(str(client_id)).enrolled:
        return redirect("/welcome", code=303)
    return _activate_page(client_id, missing=set())


@blueprint.post("/activate")
@signed_in
def activate(client_id: int) -> Page:
    service = site().service
    accepted = {
        document.key for document in service.documents() if request.form.get(f"accept_{document.key}")
    }
    try:
        service.activate(client_id, accepted, _ip())
    except TermsNotAccepted as problem:
        return _activate_page(client_id, missing={document.key for document in problem.missing}), 400
    except InputError as problem:  # a sign-up of the same address is pending
        page = render_template("message.html", title="Post-pay not activated", message=str(problem))
        return page, 409
    return redirect("/welcome", code=303)


# -- helpers ---------------------------------------------------------------------------------------------


def _account_page(client_id: int, *, error: str | None, saved: bool, password_set: bool = False) -> str:
    try:
        page = pages().page(client_id)
    except NotFound:  # the client was removed since it signed in
        session.clear()
        abort(404)
    return render_template(
        "account.html",
        page=page,
        error=error,
        saved=saved,
        password_set=password_set,
        min_length=site().settings.enrollment.password_min_length,
    )


def _activate_page(client_id: int, missing: set[str]) -> str:
    status = site().service.status(str(client_id))
    return render_template(
        "activate.html", status=status, documents=site().service.documents(), missing=missing
    )


def _own_invoice(invoice_ref: str) -> tuple[StoredInvoice, Client] | None:
    """The signed-in client's invoice (None: nobody is signed in); 404 for any other invoice (another
    client's, a draft, no such one), so the answer does not tell which exist."""
    client_id = _client_id()
    if client_id is None:
        return None
    try:
        return pages().invoice(client_id, invoice_ref)
    except (InputError, NotFound):
        abort(404)


def _configuration(client: Client) -> ConfigurationSettings:
    return site().configurations.section(client.configuration)


def _choice() -> str:
    """The form's auto-invoicing choice as the CLI writes it: off, estimated or fixed:AMOUNT."""
    get = request.form.get
    if get("enabled") != "on":
        return "off"
    if get("mode") == "fixed":
        return f"fixed:{get('fixed_amount', '').strip()}"
    return "estimated"
