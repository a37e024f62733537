"""The Flask application of the sign-up pages: templates, cookies, CSRF, security headers.

Cookies: one session cookie (signed with a key derived from ``enrollment.secret_key``), HttpOnly,
SameSite=Lax, and Secure whenever ``public_url`` is https. It holds the CSRF token of the forms and,
after sign-up or a login link, the client id with an expiry read from the injected clock.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import jinja2
from flask import Flask, Response, abort, current_app, render_template, request, session

from bridge.clock import Clock
from bridge.logs import get_logger
from bridge.mail.templates import template_loader
from bridge.mail.transport import company_name
from bridge.services.enrollment import EnrollmentService
from bridge.services.self_service import SelfService
from bridge.settings import Configurations, Settings
from bridge.web.enrollment.proxy import TrustedProxies
from bridge.web.enrollment.ratelimit import RateLimiter
from bridge.web.enrollment.server import redact

SESSION_COOKIE = "bb_session"
EXTENSION = "bridge.enrollment"
CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' https: http: data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)

log = get_logger(__name__)


@dataclass(frozen=True)
class Site:
    """What the views need, hung on the Flask app."""

    service: EnrollmentService
    settings: Settings
    clock: Clock
    limiter: RateLimiter
    configurations: Configurations
    self_service: SelfService | None = None


def site() -> Site:
    found = current_app.extensions[EXTENSION]
    assert isinstance(found, Site)
    return found


def create_app(
    service: EnrollmentService,
    settings: Settings,
    clock: Clock,
    self_service: SelfService | None = None,
) -> Flask:
    """The WSGI application serving the sign-up pages, single sign-on, the WHMCS panel endpoint and, with
    ``self_service``, the clients' own pages (without it they are "not found")."""
    from bridge.web.enrollment.account import blueprint as account_pages
    from bridge.web.enrollment.views import blueprint

    config = settings.enrollment
    app = Flask(__name__, static_folder=None)
    app.jinja_loader = template_loader(settings)
    app.jinja_env.undefined = jinja2.StrictUndefined
    app.secret_key = service.session_key()
    app.config.update(
        SESSION_COOKIE_NAME=SESSION_COOKIE,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=config.base_url().startswith("https://"),
        MAX_CONTENT_LENGTH=64 * 1024,
    )
    limiter = RateLimiter(clock, timedelta(minutes=config.rate_limit_window_minutes))
    configurations = Configurations.from_settings(settings)
    app.extensions[EXTENSION] = Site(service, settings, clock, limiter, configurations, self_service)
    app.wsgi_app = TrustedProxies(app.wsgi_app, config.trusted_proxies)  # type: ignore[method-assign]
    app.register_blueprint(blueprint)
    app.register_blueprint(account_pages)
    app.before_request(_check_csrf)
    app.after_request(_security_headers)
    app.context_processor(lambda: _branding(settings))
    app.register_error_handler(Exception, _failed)
    return app


def csrf_token() -> str:
    """The session's CSRF token, made on first use; every form sends it back as ``csrf_token``."""
    token = session.get("csrf")
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        session["csrf"] = token
    return token


def _check_csrf() -> None:
    if request.method != "POST":
        return
    expected = session.get("csrf")
    given = request.form.get("csrf_token", "")
    if not isinstance(expected, str) or not hmac.compare_digest(expected.encode(), given.encode()):
        abort(400, description="csrf")


def _security_headers(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Cache-Control"] = "no-store"
    if request.scheme == "https":
        response.headers["Strict-Transport-Security"] = "max-age=31536000"
    return response


def _branding(settings: Settings) -> dict[str, Any]:
    return {
        "company": company_name(settings),
        "logo_url": settings.enrollment.logo_url,
        "csrf_token": csrf_token,
    }


def _failed(error: Exception) -> Any:
    """Every error as a page of the site; HTTP errors keep their status, anything else is logged as 500."""
    from werkzeug.exceptions import HTTPException

    if isinstance(error, HTTPException):
        code = error.code or 500
        if error.description == "csrf":
            message = (
                "This form has expired or was sent from another site. Go back, reload the page and try "
                "again (cookies must be allowed for this site)."
            )
            return render_template("message.html", title="Please try again", message=message), 400
        return render_template("message.html", title=error.name, message=""), code
    log.error("enrollment page failed", path=redact(request.path), error=error, exc_info=True)
    message = "Something went wrong on our side. Please try again in a few minutes."
    return render_template("message.html", title="Sorry", message=message), 500


def stored_instant(value: object) -> datetime | None:
    """A session's stored ISO instant back as a datetime (None when absent or malformed)."""
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None
