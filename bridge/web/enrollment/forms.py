"""The sign-up form: what each field must be, and messages a person can act on.

The password is checked for length, a mix of letters and digits, and the obvious guesses (the email's
name, the person's name, well-known passwords). It is never echoed back into the form or a message.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from email_validator import EmailNotValidError, validate_email
from pydantic import SecretStr

from bridge.domain.bounds import EMAIL_MAX, NAME_MAX
from bridge.services.enrollment import SignUp
from bridge.settings import iso_country
from bridge.vies.vatid import InvalidVatId, parse_vat_id

MAX_NAME = NAME_MAX
MAX_EMAIL = EMAIL_MAX
MAX_PASSWORD = 128
COMMON_PASSWORDS = frozenset(
    {
        "password",
        "password1",
        "password12",
        "password123",
        "passw0rd",
        "p@ssw0rd",
        "qwerty123",
        "qwertyuiop",
        "1q2w3e4r5t",
        "123456789a",
        "a123456789",
        "abc1234567",
        "iloveyou1",
        "letmein123",
        "welcome123",
        "changeme123",
        "admin12345",
        "solusvm123",
    }
)


@dataclass(frozen=True)
class SignUpForm:
    """The outcome of reading the form: a :class:`SignUp`, or the errors per field and the values to show
    again (never the password)."""

    sign_up: SignUp | None
    errors: dict[str, str] = field(default_factory=dict)
    values: dict[str, str] = field(default_factory=dict)


def read_sign_up(form: Mapping[str, str], *, min_length: int) -> SignUpForm:
    name = " ".join(form.get("name", "").split())
    company = " ".join(form.get("company", "").split())
    raw_email = form.get("email", "").strip()
    password = form.get("password", "")
    confirm = form.get("password_confirm", "")
    values = {"name": name, "company": company, "email": raw_email}
    errors: dict[str, str] = {}

    if not name:
        errors["name"] = "Enter your name."
    elif len(name) > MAX_NAME or not name.isprintable():
        errors["name"] = f"Enter your name in at most {MAX_NAME} ordinary characters."
    if len(company) > MAX_NAME or not company.isprintable():
        errors["company"] = f"Enter the company name in at most {MAX_NAME} ordinary characters."

    email = ""
    if not raw_email:
        errors["email"] = "Enter your email address."
    else:
        try:
            email = validate_email(raw_email, check_deliverability=False).normalized.lower()
        except EmailNotValidError:
            errors["email"] = "Enter a valid email address, like name@example.com."
        else:
            if len(email) > MAX_EMAIL:
                errors["email"] = f"Enter an email address of at most {MAX_EMAIL} characters."

    problem = password_problem(password, min_length=min_length, email=email or raw_email, name=name)
    if problem:
        errors["password"] = problem
    elif password != confirm:
        errors["password_confirm"] = "The two passwords differ; type the same password twice."

    country, vat_id = read_tax_identity(form, values, errors)
    if errors:
        return SignUpForm(None, errors, values)
    sign_up = SignUp(name, company, email, SecretStr(password), country=country, vat_id=vat_id)
    return SignUpForm(sign_up, {}, values)


def read_tax_identity(
    form: Mapping[str, str], values: dict[str, str], errors: dict[str, str]
) -> tuple[str | None, str | None]:
    """The optional country and VAT ID fields (issue 16): the VAT ID is checked offline (format and check
    digits) against the country, so a mistyped number is shown back and never reaches VIES."""
    raw_country = form.get("country", "").strip()
    raw_vat_id = form.get("vat_id", "").strip()
    values.update(country=raw_country, vat_id=raw_vat_id)
    country = None
    if raw_country:
        try:
            country = iso_country(raw_country)
        except ValueError:
            errors["country"] = "Enter your country as its two-letter code, like DE or FR."
    if not raw_vat_id:
        return country, None
    if country is None:
        errors.setdefault("country", "Enter your country to go with the VAT ID.")
        return None, None
    try:
        return country, str(parse_vat_id(raw_vat_id[:64], country=country))
    except InvalidVatId as error:
        errors["vat_id"] = f"This VAT ID {error.problem.split(';')[0]}."
        return country, None


def password_problem(password: str, *, min_length: int, email: str, name: str) -> str | None:
    """Why the password is too weak, or None."""
    if not password:
        return "Choose a password."
    if len(password) < min_length:
        return f"Use at least {min_length} characters for the password."
    if len(password) > MAX_PASSWORD:
        return f"Use at most {MAX_PASSWORD} characters for the password."
    if not any(char.isalpha() for char in password) or not any(char.isdigit() for char in password):
        return "Use both letters and digits in the password."
    lowered = password.casefold()
    if lowered in COMMON_PASSWORDS or len(set(lowered)) < 4:
        return "This password is too easy to guess; choose another."
    local_part = email.split("@", 1)[0].casefold()
    guesses = [local_part, *name.casefold().split()]
    if any(len(guess) >= 4 and guess in lowered for guess in guesses):
        return "Do not use your name or email address in the password."
    return None
