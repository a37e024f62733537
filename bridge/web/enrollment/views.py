"""The pages of the six steps, single sign-on, and the WHMCS panel's status endpoint.

No page tells whether an address has an account: a sign-up always ends on "check your mail", and the
mail says the rest. Rate limits answer 429 with the wait; a used or expired link explains itself.
"""

from __future__ import annotations

import hmac
import math
from datetime import timedelta
from typing import Any

from flask import Blueprint, jsonify, redirect, render_template, request, session
from werkzeug.wrappers import Response

from bridge.errors import NotFound
from bridge.services.enrollment import (
    Document,
    LinkProblem,
    LinkState,
    MailFailed,
    NotEnrolled,
    SolusVMUnavailable,
    TermsNotAccepted,
)
from bridge.store.enrollment import Enrollment
from bridge.web.enrollment.app import site, stored_instant
from bridge.web.enrollment.forms import read_sign_up

blueprint = Blueprint("enrollment", __name__)

Page = Response | str | tuple[str, int] | tuple[str, int, dict[str, str]]


# -- step 1: landing -----------------------------------------------------------------------------------------


@blueprint.get("/")
def landing() -> Page:
    """The start page; a signed-in client that is not enrolled (an existing WHMCS client, sent here by the
    panel) is offered post-pay for its account instead of a sign-up that would say it exists."""
    client_id = _client_id()
    enrolled = False
    if client_id is not None:
        try:
            enrolled = site().service.status(str(client_id)).enrolled
        except NotFound:
            session.clear()
            client_id = None
    return render_template("landing.html", signed_in=client_id is not None, enrolled=enrolled)


# -- step 2: the form ----------------------------------------------------------------------------------------


@blueprint.get("/signup")
def signup_form() -> Page:
    return render_template("signup.html", errors={}, values={}, min_length=_min_length())


@blueprint.post("/signup")
def signup() -> Page:
    config = site().settings.enrollment
    wait = site().limiter.allow([(f"ip:{_ip()}", config.signup_limit_per_ip)])
    if wait is not None:
        return _too_many(wait)
    form = read_sign_up(request.form, min_length=_min_length())
    if form.sign_up is None:
        return (
            render_template("signup.html", errors=form.errors, values=form.values, min_length=_min_length()),
            400,
        )
    wait = site().limiter.allow([(f"email:{form.sign_up.email}", config.signup_limit_per_email)])
    if wait is not None:
        return _too_many(wait)
    try:
        site().service.request(form.sign_up)
    except MailFailed:
        return _mail_failed()
    return redirect("/signup/sent", code=303)


# -- step 3: the mail ----------------------------------------------------------------------------------------


@blueprint.get("/signup/sent")
def sent() -> Page:
    return render_template("sent.html", ttl_hours=site().settings.enrollment.link_ttl_hours)


# -- steps 4 and 5: the link, the terms, the account ---------------------------------------------------------


@blueprint.get("/verify/<token>")
def verify(token: str) -> Page:
    wait = _link_limit()
    if wait is not None:
        return _too_many(wait)
    checked = site().service.check(token)
    if checked.state is LinkState.VALID and checked.enrollment is not None:
        return _terms_page(token, checked.enrollment, missing=[])
    if checked.state is LinkState.USED and _is_signed_in_as(checked.enrollment):
        return redirect("/welcome", code=303)
    return _link_problem(LinkProblem(checked.state, checked.enrollment), token)


@blueprint.post("/verify/<token>")
def accept(token: str) -> Page:
    wait = _link_limit()
    if wait is not None:
        return _too_many(wait)
    service = site().service
    accepted = {
        document.key for document in service.documents() if request.form.get(f"accept_{document.key}")
    }
    browser = session.get("csrf")  # the browser's own secret, checked against the form by the CSRF guard
    try:
        enrollment = service.accept(token, accepted, _ip(), browser if isinstance(browser, str) else None)
    except TermsNotAccepted as problem:
        checked = service.check(token)
        assert checked.enrollment is not None
        return _terms_page(token, checked.enrollment, missing=problem.missing), 400
    except LinkProblem as problem:
        return _link_problem(problem, token)
    assert enrollment.client_id is not None
    _sign_in(enrollment.client_id)
    return redirect("/welcome", code=303)


@blueprint.post("/verify/<token>/renew")
def renew(token: str) -> Page:
    config = site().settings.enrollment
    checked = site().service.check(token)
    limits = [(f"ip:{_ip()}", config.signup_limit_per_ip)]
    if checked.enrollment is not None:
        limits.append((f"email:{checked.enrollment.email}", config.signup_limit_per_email))
    wait = site().limiter.allow(limits)
    if wait is not None:
        return _too_many(wait)
    try:
        site().service.renew(token)
    except LinkProblem as problem:
        return _link_problem(problem, token)
    except MailFailed:
        return _mail_failed()
    return redirect("/signup/sent", code=303)


def _terms_page(token: str, enrollment: Enrollment, missing: list[Document]) -> str:
    return render_template(
        "accept.html",
        token=token,
        enrollment=enrollment,
        documents=site().service.documents(),
        missing={document.key for document in missing},
    )


def _link_problem(problem: LinkProblem, token: str) -> tuple[str, int]:
    status = {LinkState.UNKNOWN: 404, LinkState.EXPIRED: 410, LinkState.USED: 410}.get(problem.state, 400)
    return render_template("link.html", state=problem.state.value, token=token), status


# -- step 6: the login page ----------------------------------------------------------------------------------


@blueprint.get("/welcome")
def welcome() -> Page:
    client_id = _client_id()
    if client_id is None:
        return redirect("/", code=303)
    try:
        status = site().service.status(str(client_id))
    except NotFound:
        session.clear()
        return redirect("/", code=303)
    return render_template("welcome.html", status=status, solusvm_url=site().settings.solusvm.url)


# -- single sign-on ------------------------------------------------------------------------------------------


@blueprint.get("/sso")
def sso() -> Page:
    """To the SolusVM control panel with a one-time token; the landing page for anyone not enrolled."""
    client_id = _client_id()
    if client_id is None:
        return redirect("/", code=303)
    wait = _link_limit()
    if wait is not None:
        return _too_many(wait)
    try:
        url = site().service.sso_url(client_id)
    except (NotEnrolled, NotFound):
        return redirect("/", code=303)
    except SolusVMUnavailable as problem:
        message = f"We cannot log you in to SolusVM right now: {problem.reason}. Please try again later."
        return render_template("message.html", title="SolusVM is not available", message=message), 503
    return redirect(url, code=303)


@blueprint.get("/sso/<token>")
def sso_link(token: str) -> Page:
    """A one-time login link (from the WHMCS client area or support staff): sign in, then go to SolusVM."""
    wait = _link_limit()
    if wait is not None:
        return _too_many(wait)
    try:
        client_id = site().service.use_login_link(token)
    except LinkProblem as problem:
        return render_template("link.html", state=problem.state.value, token="", login=True), 410
    _sign_in(client_id)
    return redirect("/sso", code=303)


# -- the documents -------------------------------------------------------------------------------------------


@blueprint.get("/terms")
def terms() -> Page:
    return render_template("terms.html", version=site().settings.enrollment.terms_version)


@blueprint.get("/terms/postpay")
def postpay_terms() -> Page:
    version = site().settings.enrollment.postpay_terms_version
    if version is None:
        return render_template("message.html", title="Not Found", message=""), 404
    return render_template("postpay_terms.html", version=version)


# -- the WHMCS panel -----------------------------------------------------------------------------------------


@blueprint.get("/api/enrollment")
def panel() -> Response | tuple[Response, int]:
    """Enrollment status for the WHMCS client-area panel (docs/whmcs-panel.md); needs ``panel_token``."""
    expected = site().settings.enrollment.panel_token
    if expected is None:
        return jsonify(error="the panel endpoint is off; set enrollment.panel_token"), 404
    given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
    if not hmac.compare_digest(given.encode(), expected.get_secret_value().encode()):
        return jsonify(error="Bearer panel token required"), 401
    raw_id = request.args.get("whmcs_client_id", "").strip()
    if raw_id and not raw_id.isdigit():
        return jsonify(error="whmcs_client_id must be a number"), 400
    email = request.args.get("email") or None
    pages = site().self_service
    answer: dict[str, Any] = site().service.panel(
        email=email,
        whmcs_client=int(raw_id) if raw_id else None,
        account_link=pages.account_link if pages is not None else None,
    )
    return jsonify(answer)


# -- helpers -------------------------------------------------------------------------------------------------


def _ip() -> str:
    return request.remote_addr or "unknown"


def _link_limit() -> timedelta | None:
    """Count one use of a token URL (a sign-up or login link, single sign-on) against the address's limit,
    so links cannot be guessed or SolusVM login tokens minted without end; the wait when over it."""
    return site().limiter.allow([(f"link-ip:{_ip()}", site().settings.enrollment.link_limit_per_ip)])


def _min_length() -> int:
    return site().settings.enrollment.password_min_length


def _sign_in(client_id: int) -> None:
    """A fresh session for the client, valid for ``session_hours``; the CSRF token stays, so a form sent
    again from the back button answers like the first time rather than with an error."""
    until = site().clock.now() + timedelta(hours=site().settings.enrollment.session_hours)
    csrf = session.get("csrf")
    session.clear()
    if csrf is not None:
        session["csrf"] = csrf
    session["client_id"] = client_id
    session["until"] = until.isoformat()


def _client_id() -> int | None:
    client_id = session.get("client_id")
    until = stored_instant(session.get("until"))
    if not isinstance(client_id, int) or until is None or until <= site().clock.now():
        return None
    return client_id


def _is_signed_in_as(enrollment: Enrollment | None) -> bool:
    return (
        enrollment is not None and enrollment.client_id is not None and _client_id() == enrollment.client_id
    )


def _too_many(wait: timedelta) -> tuple[str, int, dict[str, str]]:
    seconds = max(1, math.ceil(wait.total_seconds()))
    minutes = math.ceil(seconds / 60)
    message = (
        f"There were too many requests from your network or for this address. "
        f"Please try again in {minutes} minute{'s' if minutes != 1 else ''}."
    )
    page = render_template("message.html", title="Too many requests", message=message)
    return page, 429, {"Retry-After": str(seconds)}


def _mail_failed() -> tuple[str, int]:
    message = "We could not send the email just now. Please try again in a few minutes."
    return render_template("message.html", title="Email not sent", message=message), 503
