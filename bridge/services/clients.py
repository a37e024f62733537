"""Adding, linking and looking up clients, with every check an operator's typo deserves."""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass

from email_validator import EmailNotValidError, validate_email

from bridge.clock import Clock
from bridge.domain.bounds import EMAIL_MAX, IDENTIFIER_MAX, NAME_MAX, check_text, parse_id, shown
from bridge.domain.clients import Client, LinkKind
from bridge.errors import InputError, NotFound, checked
from bridge.services.cycles import record_switch
from bridge.services.outbox import enqueue_add_client, enqueue_tax_identity, enqueue_update_client
from bridge.settings import iso_country
from bridge.store import clients as store
from bridge.store.unit_of_work import Conflict, Tx, UnitOfWork
from bridge.store.whmcs import whmcs_link_owner
from bridge.vies.vatid import VatId, parse_vat_id


class ClientService:
    """Clients and their links. ``currency`` is a new client's default (``billing.currency``),
    ``configurations`` the names a client may be given, and with ``whmcs_enabled`` every change of a
    client also writes its WHMCS outbox row. ``calendar_months`` says which configurations bill calendar
    months: moving a client between two that differ records the switch (bridge/services/cycles.py)."""

    def __init__(
        self,
        uow: UnitOfWork,
        clock: Clock,
        *,
        currency: str,
        configurations: Collection[str],
        whmcs_enabled: bool,
        calendar_months: Mapping[str, bool] | None = None,
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._currency = currency
        self._configurations = frozenset(configurations)
        self._whmcs_enabled = whmcs_enabled
        self._calendar_months = calendar_months or {}

    def add(
        self,
        *,
        email: str,
        name: str,
        currency: str | None = None,
        configuration: str | None = None,
        country: str | None = None,
        vat_id: str | None = None,
    ) -> Client:
        """Create a client; a duplicate email, an unknown configuration, a bad currency, country or VAT ID
        (checked offline: format and check digits) changes nothing. The VIES flow that may exempt the
        client is :meth:`bridge.services.taxes.TaxService.validate`, run after this, outside the
        transaction."""
        email = normalise_email(email)
        name = client_name(name)
        country = checked_country(country) if country else None
        vat_id = str(checked_vat_id(vat_id, country)) if vat_id else None
        currency = (currency or self._currency).upper()
        if len(currency) != 3 or not currency.isascii() or not currency.isalpha():
            raise InputError(f"--currency {shown(currency)} is not an ISO 4217 code; use e.g. USD or EUR")
        configuration = configuration or "default"
        self._require_configuration(configuration)
        try:
            with self._uow.writing() as connection:
                client_id = store.insert_client(
                    connection,
                    email=email,
                    name=name,
                    currency=currency,
                    configuration=configuration,
                    created_at=self._clock.now(),
                    country=country,
                    vat_id=vat_id,
                )
                if self._whmcs_enabled:
                    enqueue_add_client(
                        connection,
                        client_id=client_id,
                        email=email,
                        name=name,
                        currency=currency,
                        now=self._clock.now(),
                    )
        except Conflict:
            raise InputError(
                f"a client with email {email} already exists; see `billing-bridge client show {email}`"
            ) from None
        return self.get(str(client_id))

    def update(self, reference: str, *, email: str | None = None, name: str | None = None) -> Client:
        """Change the client's email and/or name; with WHMCS on, the change goes out with UpdateClient
        (its outbox row is written in the same transaction)."""
        client = self.get(reference)
        changes: dict[str, str] = {}
        if email is not None and normalise_email(email) != client.email:
            changes["email"] = normalise_email(email)
        if name is not None and client_name(name) != client.name:
            changes["name"] = client_name(name)
        if not changes:
            return client
        try:
            with self._uow.writing() as connection:
                store.update_client(connection, client.id, **changes)
                if self._whmcs_enabled:
                    enqueue_update_client(
                        connection,
                        client_id=client.id,
                        email=changes.get("email"),
                        name=changes.get("name"),
                        now=self._clock.now(),
                    )
        except Conflict:
            if "email" in changes:
                raise InputError(f"a client with email {changes['email']} already exists") from None
            raise InputError(f"client {client.id} was changed by someone else meanwhile; try again") from None
        return self.get(str(client.id))

    def tax_identity_changed(self, connection: Tx, client_id: int) -> None:
        """With WHMCS on, write the row that tells WHMCS the client's country, VAT ID and tax exemption as
        they stand in ``connection``'s transaction: the caller's, which changed them, so the change and
        its row commit together (bridge/services/taxes.py calls this after every such write)."""
        if self._whmcs_enabled:
            enqueue_tax_identity(connection, client_id=client_id, now=self._clock.now())

    def link(self, reference: str, kind: LinkKind, external_id: str) -> Client:
        """Tie an external account to the client; an id owned by another client is refused."""
        if not external_id.strip():
            raise InputError(f"the {kind.value} id is empty; give the id from the external system")
        external_id = checked(check_text, external_id, f"the {kind.value} id", max_length=IDENTIFIER_MAX)
        client = self.get(reference)
        if external_id in client.external_ids(kind):
            return client
        if kind is LinkKind.WHMCS_CLIENT and client.external_ids(kind):
            raise InputError(
                f"client {client.id} is already linked to WHMCS client {client.external_ids(kind)[0]}; "
                "a client has one WHMCS account"
            )
        try:
            with self._uow.writing() as connection:
                owner = store.find_link_owner(connection, kind, external_id)
                if owner is not None:
                    raise InputError(f"{kind.value} {external_id} is already linked to client {owner}")
                store.insert_link(
                    connection,
                    client_id=client.id,
                    kind=kind,
                    external_id=external_id,
                    created_at=self._clock.now(),
                )
        except Conflict:
            raise InputError(f"{kind.value} {external_id} is already linked to another client") from None
        return self.get(str(client.id))

    def get(self, reference: str) -> Client:
        """A client by its bridge id or its email."""
        reference = checked(check_text, reference, "CLIENT", max_length=EMAIL_MAX)
        with self._uow.reading() as connection:
            if reference.isascii() and reference.isdigit():
                client = store.client_by_id(connection, checked(parse_id, reference, "CLIENT"))
            else:
                client = store.client_by_email(connection, reference.lower())
        if client is None:
            raise NotFound(f"no client {reference!r}; `billing-bridge client list` shows the clients")
        return client

    def by_whmcs_id(self, whmcs_id: str) -> Client:
        """The client linked to this WHMCS client id (what a WHMCS hook knows of it)."""
        number = checked(parse_id, whmcs_id, "WHMCS client id")
        with self._uow.reading() as connection:
            client_id = whmcs_link_owner(connection, number)
        if client_id is None:
            raise NotFound(
                f"no client is linked to WHMCS client {number}; `billing-bridge client link` links one"
            )
        return self.get(str(client_id))

    def set_configuration(self, reference: str, configuration: str) -> Client:
        """Move the client to another named configuration (its credit rules and invoicing change with it)."""
        self._require_configuration(configuration)
        client = self.get(reference)
        with self._uow.writing() as connection:
            store.set_configuration(connection, client.id, configuration)
            if client.configuration in self._calendar_months and configuration in self._calendar_months:
                old, new = self._calendar_months[client.configuration], self._calendar_months[configuration]
                record_switch(connection, client, old, new, now=self._clock.now())
        return self.get(str(client.id))

    def chunks(self, size: int) -> Iterator[list[Client]]:
        """Every client, ``size`` at a time in id order, so a run over 100,000 clients holds few in memory."""
        after = 0
        while True:
            with self._uow.reading() as connection:
                chunk = store.clients_after(connection, after, size)
            if not chunk:
                return
            yield chunk
            after = chunk[-1].id

    def count(self) -> int:
        """How many clients there are (a run's total, for its progress)."""
        with self._uow.reading() as connection:
            return store.count_clients(connection)

    def all(self) -> list[Client]:
        with self._uow.reading() as connection:
            return store.all_clients(connection)

    def _require_configuration(self, name: str) -> None:
        if name not in self._configurations:
            known = ", ".join(sorted(self._configurations))
            raise InputError(f"--configuration {shown(name)} is not defined; use one of: {known}")


def normalise_email(email: str) -> str:
    """The address in the form the store keeps (lower case), within the bounds of an email."""
    address = checked(check_text, email, "--email", max_length=EMAIL_MAX)
    try:
        normalised = validate_email(address, check_deliverability=False).normalized.lower()
    except EmailNotValidError as error:
        raise InputError(f"--email {shown(email)} is not a valid address ({error})") from None
    return checked(check_text, normalised, "--email", max_length=EMAIL_MAX)


def client_name(name: str) -> str:
    """A client's name as it is kept: stripped, not empty, within the bounds of a name."""
    if not name.strip():
        raise InputError("--name is empty; give the client's name, e.g. --name 'Acme Ltd'")
    return checked(check_text, name, "--name", max_length=NAME_MAX)


def checked_country(text: str) -> str:
    """``--country`` as an ISO 3166-1 alpha-2 code, or InputError naming the option and the fix."""
    try:
        return iso_country(text)
    except ValueError as error:
        raise InputError(f"--country: {error}") from None


def checked_vat_id(text: str, country: str | None) -> VatId:
    """``--vat-id`` checked offline against the client's ``country`` (InvalidVatId: exit 2)."""
    if country is None:
        raise InputError("--vat-id needs the client's country; give --country too, e.g. --country FR")
    return parse_vat_id(text, country=country, field="--vat-id")


@dataclass(frozen=True)
class ImportResult:
    created: list[Client]
    linked: list[Client]
    already_linked: int


def import_accounts(
    service: ClientService, kind: LinkKind, accounts: list[tuple[str, str, str]]
) -> ImportResult:
    """Give every external account (id, email, name) a client: link one with the same email, else add one.

    Idempotent: an account already linked is left alone, so the import can run again at any time. Every
    new account is checked against the bounds first, so one bad account changes nothing at all.
    """
    created: list[Client] = []
    linked: list[Client] = []
    already = 0
    known = {link.external_id for client in service.all() for link in client.links if link.kind == kind}
    for external_id, email, name in accounts:
        if external_id not in known:
            _check_account(kind, external_id, email, name)
    for external_id, email, name in accounts:
        if external_id in known:
            already += 1
            continue
        try:
            existing = service.get(normalise_email(email))
        except NotFound:
            client = service.add(email=email, name=name or email)
            created.append(service.link(str(client.id), kind, external_id))
        else:
            linked.append(service.link(str(existing.id), kind, external_id))
    return ImportResult(created, linked, already)


def _check_account(kind: LinkKind, external_id: str, email: str, name: str) -> None:
    """Raise InputError naming the account and its field when it is outside the bounds of a client."""
    account = f"{kind.value} {shown(external_id)}"
    try:
        checked(check_text, external_id, "id", max_length=IDENTIFIER_MAX)
        normalise_email(email)
        client_name(name or email)
    except InputError as error:
        raise InputError(f"{account}: {error}") from None
