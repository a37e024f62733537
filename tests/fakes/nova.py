"""A contract-faithful fake of Keystone v3 and Nova compute, served over real HTTP on 127.0.0.1.

What it reproduces, after ``openstack/nova`` (``nova/api/openstack/compute/simple_tenant_usage.py``,
``views/usages.py``, ``api/openstack/common.py``) and the research notes in
``/work/shared/research/openstack-usage.md``:

* version discovery for identity and compute (``self`` links, compute ``version`` 2.95 / ``min_version``
  2.1; without them openstacksdk sends no microversion header);
* ``POST /v3/auth/tokens`` (password or application credential) answering a token with a catalog; a
  project owner added with :meth:`FakeOpenStack.add_project` gets a token scoped to its project only while
  the project is enabled (Keystone answers 401 for a disabled project);
* ``GET`` and ``PATCH /v3/projects/{id}`` as Keystone's identity API v3 documents them ("Show project",
  "Update project": ``{"project": {"enabled": false}}`` in, the whole project out), and a fault that applies
  the next PATCH and then drops the connection (the caller never learns that it happened);
* ``GET /os-simple-tenant-usage`` (and ``/{project_id}``): ``start``/``end`` accepted only in Nova's three
  naive formats (else 400 "Datetime is in invalid format"), ``start < end`` checked, a future ``end`` clamped
  to now, ``detailed`` honoured only when ``"1"``, rows of instances launched before the end and not
  terminated before the start, ordered by ``(project_id, uuid)``, paged by ``limit``/``marker`` from 2.40 with
  a ``next`` link only when a page is full (``min(limit, max_limit)`` rows), per-page totals, and ``hours``
  computed as Nova does, in float: ``(min(terminated_at, end) - max(launched_at, start)) / 3600``;
* ``POST /servers/{id}/action`` for suspend, resume, shelve, shelveOffload, unshelve, os-stop, os-start,
  with Nova's state checks (409) and launch-time reset on unshelve;
* fault injection for the next N compute API answers: HTTP 500/401/403/429/503 (with Retry-After), an
  HTML page, a payload missing a field, a dropped connection, a page cut off mid-body, a field of every
  server usage replaced (``hours = 25.0`` in a one-hour window), an empty page that still has a next link,
  and token expiry (Keystone forgets every token it issued, so the request gets Keystone's 401);
* fault injection for the next N token requests (``POST /v3/auth/tokens``): any HTTP status;
* ``before_usage``: a hook called with each usage request before it is answered (to act mid-run, e.g.
  kill the bridge's database connections).

Payload field names follow Nova's api_samples ``os-simple-tenant-usage/v2.40`` (Apache-2.0, openstack/nova).
"""

from __future__ import annotations

import json
import threading
import uuid as uuid_module
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar, Literal
from urllib.parse import parse_qs, parse_qsl, urlencode, urlsplit

from keystoneauth1.fixture import V3Token

from bridge.clock import Clock
from bridge.domain.instants import as_utc

MAX_MICROVERSION = (2, 95)
MIN_MICROVERSION = (2, 1)
NOVA_FORMATS = ("%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M:%S.%f", "%Y-%m-%d %H:%M:%S.%f")
PERFECT_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%f"
IDENTITY = "/identity"
COMPUTE = "/compute"
COMPUTE_V21 = "/compute/v2.1"


@dataclass(frozen=True)
class Flavor:
    name: str
    vcpus: int
    memory_mb: int
    local_gb: int


FLAVORS: dict[str, Flavor] = {
    f.name: f
    for f in (
        Flavor("m1.tiny", 1, 512, 1),
        Flavor("m1.small", 1, 2048, 20),
        Flavor("m1.medium", 2, 4096, 40),
        Flavor("m1.large", 4, 8192, 80),
    )
}


@dataclass(frozen=True)
class Instance:
    """What Nova's instances table holds that usage reads; replaced (never mutated) on each event."""

    uuid: str
    name: str | None
    project_id: str
    flavor: Flavor
    launched_at: datetime | None
    terminated_at: datetime | None
    vm_state: str


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def header(self, name: str) -> str | None:
        """A request header by case-insensitive name."""
        wanted = name.lower()
        return next((value for key, value in self.headers.items() if key.lower() == wanted), None)


@dataclass(frozen=True)
class Project:
    """A Keystone project in the fake, with the one user allowed to scope a token to it."""

    id: str
    name: str
    enabled: bool
    owner: str
    password: str

    def body(self, origin: str) -> dict[str, Any]:
        """The project as Keystone's v3 API shows it."""
        return {
            "id": self.id,
            "name": self.name,
            "domain_id": "default",
            "description": "",
            "enabled": self.enabled,
            "is_domain": False,
            "parent_id": "default",
            "tags": [],
            "options": {},
            "links": {"self": f"{origin}{IDENTITY}/v3/projects/{self.id}"},
        }


@dataclass(frozen=True)
class ActionCall:
    server_id: str
    action: str
    body: dict[str, Any]
    microversion: str | None


FaultKind = Literal[
    "status", "html", "missing_field", "disconnect", "cut_off", "server_field", "empty_with_next", "expire"
]


@dataclass(frozen=True)
class Fault:
    """One injected misbehaviour of the compute API; build with the class methods."""

    kind: FaultKind
    status: int = 200
    retry_after: str | None = None
    field: str | None = None
    value: Any = None

    @classmethod
    def http(cls, status: int) -> Fault:
        """An error answer with ``status`` in Nova's fault format."""
        return cls("status", status)

    @classmethod
    def server_error(cls) -> Fault:
        return cls("status", 500)

    @classmethod
    def unauthorized(cls) -> Fault:
        return cls("status", 401)

    @classmethod
    def forbidden(cls) -> Fault:
        return cls("status", 403)

    @classmethod
    def rate_limited(cls, retry_after: str | None = "30") -> Fault:
        return cls("status", 429, retry_after=retry_after)

    @classmethod
    def html(cls, status: int = 200) -> Fault:
        return cls("html", status)

    @classmethod
    def missing_field(cls, name: str) -> Fault:
        """Drop ``name`` wherever it occurs: top level, each tenant usage, each server usage."""
        return cls("missing_field", field=name)

    @classmethod
    def disconnect(cls) -> Fault:
        return cls("disconnect")

    @classmethod
    def cut_off(cls) -> Fault:
        """The answer's headers promise the whole body, but the connection closes halfway through it."""
        return cls("cut_off")

    @classmethod
    def server_field(cls, name: str, value: Any) -> Fault:
        """Every ``server_usages[]`` entry of the answer carries ``name = value`` (e.g. hours 25.0)."""
        return cls("server_field", field=name, value=value)

    @classmethod
    def empty_with_next(cls) -> Fault:
        """An empty page (no tenant usages) whose ``tenant_usages_links`` still has a next link."""
        return cls("empty_with_next")

    @classmethod
    def token_expired(cls) -> Fault:
        """Keystone forgets every token issued so far: this request (and any with an old token) gets 401."""
        return cls("expire")


class NovaError(Exception):
    """An API error answer in Nova's fault format."""

    KEYS: ClassVar[dict[int, str]] = {
        400: "badRequest",
        403: "forbidden",
        404: "itemNotFound",
        406: "notAcceptable",
        409: "conflictingRequest",
        429: "overLimit",
        500: "computeFault",
    }

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message

    def body(self) -> dict[str, Any]:
        key = self.KEYS.get(self.status, "computeFault")
        return {key: {"code": self.status, "message": self.message}}


UNAUTHORIZED_BODY = {
    "error": {
        "code": 401,
        "title": "Unauthorized",
        "message": "The request you have made requires authentication.",
    }
}
HTML_PAGE = (
    "<!DOCTYPE html>\n<html><head><title>502 Bad Gateway</title></head>\n"
    "<body><h1>Bad Gateway</h1><p>The proxy server received an invalid response.</p></body></html>\n"
)


# --- the model ------------------------------------------------------------------------------------------


class FakeOpenStack:
    """Keystone v3 + Nova over HTTP on an ephemeral 127.0.0.1 port; use as a context manager.

    ``clock`` is "now" for Nova (end clamping, ``uptime``, action times). ``max_limit`` is Nova's
    ``[api] max_limit``. ``link_base`` replaces the origin+prefix of ``next`` links (a proxy that rewrites
    nothing, so links point at an internal host). ``unversioned_catalog`` registers the compute endpoint
    without ``/v2.1`` (clients must discover it). The accepted credentials are the constructor's.
    """

    def __init__(
        self,
        clock: Clock,
        *,
        max_limit: int = 1000,
        username: str = "billing-bridge",
        password: str = "fake-Passw0rd-5ecret",
        project_name: str = "admin",
        project_id: str = "5c8b6b2bd1fd4d4a9a5b0f6de0e2f7a1",
        application_credential_id: str = "ac-0f4b",
        application_credential_secret: str = "fake-AppCred-5ecret",
        region: str = "RegionOne",
        link_base: str | None = None,
        unversioned_catalog: bool = False,
    ) -> None:
        self.clock = clock
        self.max_limit = max_limit
        self.username = username
        self.password = password
        self.project_name = project_name
        self.project_id = project_id
        self.application_credential_id = application_credential_id
        self.application_credential_secret = application_credential_secret
        self.region = region
        self.link_base = link_base
        self.unversioned_catalog = unversioned_catalog
        self._instances: dict[str, Instance] = {}
        self._history: dict[str, list[tuple[str, datetime]]] = {}  # os-instance-actions, oldest first
        self._tokens: set[str] = set()
        self._faults: list[Fault] = []
        self._identity_faults: list[int] = []
        self.before_usage: Callable[[RecordedRequest], None] | None = None
        self._requests: list[RecordedRequest] = []
        self._actions: list[ActionCall] = []
        self._projects: dict[str, Project] = {}
        self._project_updates: list[tuple[str, dict[str, Any]]] = []
        self._drop_after_update = 0
        self._lock = threading.RLock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle of the HTTP server --

    def start(self) -> FakeOpenStack:
        server = _Server(("127.0.0.1", 0), _Handler)
        server.fake = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.01}, name="fake-openstack", daemon=True
        )
        self._thread.start()
        return self

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> FakeOpenStack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def origin(self) -> str:
        if self._server is None:
            raise RuntimeError("the fake is not started")
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def auth_url(self) -> str:
        return f"{self.origin}{IDENTITY}/v3"

    @property
    def compute_url(self) -> str:
        return f"{self.origin}{COMPUTE_V21}"

    def section(self, **overrides: Any) -> dict[str, Any]:
        """The ``[openstack]`` settings that reach this fake with its own credentials."""
        return {
            "enabled": True,
            "auth_url": self.auth_url,
            "username": self.username,
            "password": self.password,
            "project_name": self.project_name,
            "region_name": self.region,
            **overrides,
        }

    # -- what tests read --

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def usage_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path.startswith(f"{COMPUTE_V21}/os-simple-tenant-usage")]

    @property
    def actions(self) -> list[ActionCall]:
        with self._lock:
            return list(self._actions)

    def instance(self, server_id: str) -> Instance:
        with self._lock:
            return self._instances[server_id]

    def fail_next(self, fault: Fault, times: int = 1) -> None:
        """Make the next ``times`` compute API answers (not discovery, not Keystone) misbehave."""
        with self._lock:
            self._faults.extend([fault] * times)

    def fail_token_requests(self, status: int, times: int = 1) -> None:
        """Answer the next ``times`` token requests with ``status`` (401 refuses, 5xx is Keystone failing)."""
        with self._lock:
            self._identity_faults.extend([status] * times)

    def token_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path == f"{IDENTITY}/v3/auth/tokens"]

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()
            self._identity_faults.clear()

    # -- Keystone projects --

    def add_project(self, project_id: str, name: str, *, owner: str, password: str) -> None:
        """A client's project, enabled, with one user who may get a token scoped to it."""
        with self._lock:
            self._projects[project_id] = Project(project_id, name, True, owner, password)

    def project(self, project_id: str) -> Project:
        with self._lock:
            return self._projects[project_id]

    @property
    def project_updates(self) -> list[tuple[str, dict[str, Any]]]:
        """Every ``PATCH /v3/projects/{id}`` applied, as (project id, the ``project`` body)."""
        with self._lock:
            return list(self._project_updates)

    def drop_after_next_project_update(self) -> None:
        """Apply the next project PATCH, then drop the connection before answering."""
        with self._lock:
            self._drop_after_update += 1

    # -- instance lifecycle, as Nova records it --

    def create_server(
        self,
        project_id: str,
        *,
        at: datetime,
        flavor: str = "m1.small",
        name: str | None = None,
        server_id: str | None = None,
        launched: bool = True,
    ) -> str:
        """Boot a server; ``launched=False`` models one that never became active (no launched_at)."""
        instance = Instance(
            uuid=server_id or str(uuid_module.uuid4()),
            name=name if name is not None else f"server-{len(self._instances) + 1}",
            project_id=project_id,
            flavor=FLAVORS[flavor],
            launched_at=as_utc(at) if launched else None,
            terminated_at=None,
            vm_state="active" if launched else "error",
        )
        with self._lock:
            if instance.uuid in self._instances:
                raise ValueError(f"duplicate server id {instance.uuid}")
            self._instances[instance.uuid] = instance
            self._history[instance.uuid] = [("create", as_utc(at))]
        return instance.uuid

    def delete(self, server_id: str, at: datetime) -> None:
        self._change(server_id, "delete", None, at, terminated_at=as_utc(at), vm_state="deleted")

    def stop(self, server_id: str, at: datetime) -> None:
        """os-stop: vm_state only; Nova's hours do not change."""
        self._transition(server_id, "os-stop", at)

    def start_server(self, server_id: str, at: datetime) -> None:
        self._transition(server_id, "os-start", at)

    def suspend(self, server_id: str, at: datetime) -> None:
        self._transition(server_id, "suspend", at)

    def resume(self, server_id: str, at: datetime) -> None:
        self._transition(server_id, "resume", at)

    def shelve(self, server_id: str, at: datetime) -> None:
        """Shelve with Nova's default shelved_offload_time 0: straight to shelved_offloaded."""
        self._transition(server_id, "shelve", at)

    def unshelve(self, server_id: str, at: datetime) -> None:
        """Unshelve: active again, and launched_at reset to ``at``."""
        self._transition(server_id, "unshelve", at)

    def resize(self, server_id: str, new_flavor: str, at: datetime) -> None:
        """Resize (finished and confirmed at ``at``): new flavor, launched_at reset to ``at``."""
        flavor = FLAVORS[new_flavor]
        self._change(server_id, "resize", ("active", "stopped"), at, flavor=flavor, launched_at=as_utc(at))

    def rebuild(self, server_id: str, at: datetime) -> None:
        """Rebuild: same flavor, launched_at reset to ``at``."""
        self._change(server_id, "rebuild", ("active", "stopped", "error"), at, launched_at=as_utc(at))

    def _transition(self, server_id: str, action: str, at: datetime) -> None:
        allowed, vm_state, resets_launch = ACTIONS[action]
        changes: dict[str, Any] = {"vm_state": vm_state}
        if resets_launch:
            changes["launched_at"] = as_utc(at)
        self._change(server_id, action, allowed, at, **changes)

    def _change(
        self, server_id: str, action: str, allowed: tuple[str, ...] | None, at: datetime, **changes: Any
    ) -> None:
        with self._lock:
            instance = self._instances.get(server_id)
            if instance is None or instance.vm_state == "deleted":
                raise NovaError(404, f"Instance {server_id} could not be found.")
            if allowed is not None and instance.vm_state not in allowed:
                raise NovaError(
                    409, f"Cannot '{action}' instance {server_id} while it is in vm_state {instance.vm_state}"
                )
            self._instances[server_id] = replace(instance, **changes)
            self._history.setdefault(server_id, []).append((action, as_utc(at)))

    # -- HTTP plumbing used by the handler --

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(request)

    def _take_fault(self) -> Fault | None:
        with self._lock:
            return self._faults.pop(0) if self._faults else None

    def _take_identity_fault(self) -> int | None:
        with self._lock:
            return self._identity_faults.pop(0) if self._identity_faults else None

    def _expire_tokens(self) -> None:
        with self._lock:
            self._tokens.clear()

    def _issue_token(self) -> str:
        token = uuid_module.uuid4().hex
        with self._lock:
            self._tokens.add(token)
        return token

    def _token_valid(self, token: str | None) -> bool:
        with self._lock:
            return token is not None and token in self._tokens

    def _rows(self, start: datetime, stop: datetime, project_id: str | None) -> list[Instance]:
        """``instance_get_active_by_window_joined``: launched before stop, not terminated by start."""
        with self._lock:
            instances = list(self._instances.values())
        rows = [
            i
            for i in instances
            if i.launched_at is not None
            and i.launched_at < stop
            and (i.terminated_at is None or i.terminated_at > start)
            and (project_id is None or i.project_id == project_id)
        ]
        return sorted(rows, key=lambda i: (i.project_id, i.uuid))

    def _after_marker(self, rows: list[Instance], marker: str) -> list[Instance]:
        with self._lock:
            anchor = self._instances.get(marker)
        if anchor is None:
            raise NovaError(400, f"marker [{marker}] not found")
        key = (anchor.project_id, anchor.uuid)
        return [i for i in rows if (i.project_id, i.uuid) > key]

    def _record_action(self, call: ActionCall) -> None:
        with self._lock:
            self._actions.append(call)


#: action -> (vm_states that allow it, vm_state after it, whether it resets launched_at)
ACTIONS: dict[str, tuple[tuple[str, ...], str, bool]] = {
    "suspend": (("active",), "suspended", False),
    "resume": (("suspended",), "active", False),
    "shelve": (("active", "stopped", "paused", "suspended"), "shelved_offloaded", False),
    "shelveOffload": (("shelved",), "shelved_offloaded", False),
    "unshelve": (("shelved", "shelved_offloaded"), "active", True),
    "os-stop": (("active", "rescued", "error"), "stopped", False),
    "os-start": (("stopped",), "active", False),
}


# --- Nova's usage computation ---------------------------------------------------------------------------


def parse_nova_time(value: str | None, now: datetime) -> datetime:
    """``SimpleTenantUsageController._parse_datetime``: empty is now; three naive formats, else 400."""
    if not value:
        return now
    for fmt in NOVA_FORMATS:
        try:
            return datetime.strptime(value, fmt).replace(tzinfo=UTC)
        except ValueError:
            continue
    raise NovaError(400, "Datetime is in invalid format")


def hours_for(instance: Instance, start: datetime, stop: datetime) -> float:
    """``SimpleTenantUsageController._hours_for``, float and all."""
    launched, terminated = instance.launched_at, instance.terminated_at
    if terminated is not None and terminated < start:
        return 0
    if launched is None or launched > stop:
        return 0
    begin = max(launched, start)
    end = min(stop, terminated) if terminated is not None else stop
    return (end - begin).total_seconds() / 3600.0


def nova_time_str(value: datetime) -> str:
    return value.astimezone(UTC).replace(tzinfo=None).strftime(PERFECT_TIME_FORMAT)


def server_usage(instance: Instance, start: datetime, stop: datetime, now: datetime) -> dict[str, Any]:
    """One ``server_usages[]`` entry, field for field as Nova builds ``info``."""
    assert instance.launched_at is not None
    ended = instance.terminated_at
    state = "terminated" if ended is not None else instance.vm_state
    delta = (ended if ended is not None else now) - instance.launched_at
    return {
        "hours": hours_for(instance, start, stop),
        "flavor": instance.flavor.name,
        "instance_id": instance.uuid,
        "name": instance.name,
        "tenant_id": instance.project_id,
        "memory_mb": instance.flavor.memory_mb,
        "local_gb": instance.flavor.local_gb,
        "vcpus": instance.flavor.vcpus,
        "started_at": nova_time_str(instance.launched_at),
        "ended_at": nova_time_str(ended) if ended is not None else None,
        "state": state,
        "uptime": int(delta.total_seconds()),
    }


def tenant_usages(
    rows: list[Instance], start: datetime, stop: datetime, now: datetime, detailed: bool
) -> list[dict[str, Any]]:
    """``_tenant_usages_for_period``: one summary per project, totals over this page's rows only."""
    summaries: dict[str, dict[str, Any]] = {}
    for instance in rows:
        info = server_usage(instance, start, stop, now)
        summary = summaries.get(instance.project_id)
        if summary is None:
            summary = {
                "tenant_id": instance.project_id,
                "total_local_gb_usage": 0,
                "total_vcpus_usage": 0,
                "total_memory_mb_usage": 0,
                "total_hours": 0,
                "start": nova_time_str(start),
                "stop": nova_time_str(stop),
            }
            if detailed:
                summary["server_usages"] = []
            summaries[instance.project_id] = summary
        summary["total_local_gb_usage"] += info["local_gb"] * info["hours"]
        summary["total_memory_mb_usage"] += info["memory_mb"] * info["hours"]
        summary["total_vcpus_usage"] += info["vcpus"] * info["hours"]
        summary["total_hours"] += info["hours"]
        if detailed:
            summary["server_usages"].append(info)
    return list(summaries.values())


def drop_field(payload: Any, name: str) -> Any:
    """``payload`` with key ``name`` removed from every object in it (the missing-field fault)."""
    if isinstance(payload, dict):
        return {k: drop_field(v, name) for k, v in payload.items() if k != name}
    if isinstance(payload, list):
        return [drop_field(v, name) for v in payload]
    return payload


def parse_microversion(headers: Mapping[str, str]) -> tuple[int, int]:
    """The requested compute microversion (2.1 when absent; ``latest`` is the maximum)."""
    value: str | None = None
    for key, raw in headers.items():
        if key.lower() == "openstack-api-version":
            for part in raw.split(","):
                service, _, version = part.strip().partition(" ")
                if service == "compute":
                    value = version.strip()
        elif key.lower() == "x-openstack-nova-api-version" and value is None:
            value = raw.strip()
    if value is None:
        return MIN_MICROVERSION
    if value == "latest":
        return MAX_MICROVERSION
    try:
        major, minor = (int(x) for x in value.split("."))
    except ValueError:
        raise NovaError(400, f"Invalid API version request string {value}") from None
    if not MIN_MICROVERSION <= (major, minor) <= MAX_MICROVERSION:
        raise NovaError(
            406, f"Version {value} is not supported by the API. Minimum is 2.1 and maximum is 2.95."
        )
    return major, minor


# --- the HTTP layer -------------------------------------------------------------------------------------


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeOpenStack


@dataclass
class _Answer:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    raw: bytes | None = None
    content_type: str = "application/json"
    cut_off: bool = False


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in separate writes: avoid 40 ms delayed ACKs
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the per-request stderr line."""

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_PATCH(self) -> None:
        self._serve("PATCH")

    def _serve(self, method: str) -> None:
        split = urlsplit(self.path)
        path = split.path.rstrip("/") or "/"
        body = self._read_body()
        headers = dict(self.headers.items())
        request = RecordedRequest(method, path, parse_qs(split.query, keep_blank_values=True), headers, body)
        self.server.fake._record(request)
        answer = _Router(self.server.fake, request, split.query, self._host()).route()
        if answer is None:
            self.close_connection = True
            return
        self._write(answer)

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _host(self) -> str:
        return self.headers.get("Host") or f"127.0.0.1:{self.server.server_address[1]}"

    def _write(self, answer: _Answer) -> None:
        if answer.raw is not None:
            payload = answer.raw
        elif answer.body is None:
            payload = b""
        else:
            payload = json.dumps(answer.body).encode()
        self.send_response(answer.status)
        if payload:
            self.send_header("Content-Type", answer.content_type)
        self.send_header("Content-Length", str(len(payload)))
        for key, value in answer.headers.items():
            self.send_header(key, value)
        self.end_headers()
        if answer.cut_off:
            self.wfile.write(payload[: len(payload) // 2])
            self.close_connection = True
            return
        self.wfile.write(payload)


class _Router:
    """Turns one recorded request into an answer (None: drop the connection)."""

    def __init__(self, fake: FakeOpenStack, request: RecordedRequest, query: str, host: str) -> None:
        self.fake = fake
        self.request = request
        self.query = query
        self.origin = f"http://{host}"

    def route(self) -> _Answer | None:
        path, method = self.request.path, self.request.method
        discovery = {
            (IDENTITY, "GET"): self._identity_versions,
            (f"{IDENTITY}/v3", "GET"): self._identity_version,
            (f"{IDENTITY}/v3/auth/tokens", "POST"): self._issue_token,
            (COMPUTE, "GET"): self._compute_versions,
            (COMPUTE_V21, "GET"): self._compute_version,
        }
        handler = discovery.get((path, method))
        if handler is not None:
            return handler()
        if path.startswith(COMPUTE_V21 + "/"):
            return self._compute_api(path[len(COMPUTE_V21) :], method)
        if path.startswith(f"{IDENTITY}/v3/projects/"):
            return self._project_api(path[len(f"{IDENTITY}/v3/projects/") :], method)
        return _Answer(404, NovaError(404, "The resource could not be found.").body())

    def _project_api(self, project_id: str, method: str) -> _Answer | None:
        """Keystone's "Show project" and "Update project" (only ``enabled`` is changed here)."""
        if not self.fake._token_valid(self.request.header("X-Auth-Token")):
            return _Answer(401, UNAUTHORIZED_BODY)
        with self.fake._lock:
            project = self.fake._projects.get(project_id)
            if project is None:
                message = f"Could not find project: {project_id}."
                return _Answer(404, {"error": {"code": 404, "title": "Not Found", "message": message}})
            if method == "GET":
                return _Answer(200, {"project": project.body(self.origin)})
            if method != "PATCH":
                return _Answer(405, {"error": {"code": 405, "title": "Method Not Allowed", "message": ""}})
            try:
                changes = json.loads(self.request.body)["project"]
                enabled = changes["enabled"]
            except (ValueError, KeyError, TypeError):
                error = {"code": 400, "title": "Bad Request", "message": "Invalid input for field 'project'"}
                return _Answer(400, {"error": error})
            if not isinstance(enabled, bool):
                error = {
                    "code": 400,
                    "title": "Bad Request",
                    "message": f"{enabled!r} is not of type 'boolean'",
                }
                return _Answer(400, {"error": error})
            project = replace(project, enabled=enabled)
            self.fake._projects[project_id] = project
            self.fake._project_updates.append((project_id, changes))
            if self.fake._drop_after_update:
                self.fake._drop_after_update -= 1
                return None
        return _Answer(200, {"project": project.body(self.origin)})

    # -- Keystone --

    def _identity_version_doc(self) -> dict[str, Any]:
        return {
            "id": "v3.14",
            "status": "stable",
            "updated": "2020-04-07T00:00:00Z",
            "links": [{"rel": "self", "href": f"{self.origin}{IDENTITY}/v3/"}],
            "media-types": [
                {"base": "application/json", "type": "application/vnd.openstack.identity-v3+json"}
            ],
        }

    def _identity_versions(self) -> _Answer:
        return _Answer(300, {"versions": {"values": [self._identity_version_doc()]}})

    def _identity_version(self) -> _Answer:
        return _Answer(200, {"version": self._identity_version_doc()})

    def _issue_token(self) -> _Answer:
        status = self.fake._take_identity_fault()
        if status == 401:
            return _Answer(401, UNAUTHORIZED_BODY)
        if status is not None:
            title = "Service Unavailable" if status == 503 else "Internal Server Error"
            error = {"code": status, "title": title, "message": "An unexpected error prevented the request."}
            return _Answer(status, {"error": error})
        try:
            identity = json.loads(self.request.body)["auth"]["identity"]
        except (ValueError, KeyError, TypeError):
            return _Answer(400, {"error": {"code": 400, "title": "Bad Request", "message": "Malformed auth"}})
        owned = self._owned_project(identity)
        if owned is None and not self._credentials_ok(identity):
            return _Answer(401, UNAUTHORIZED_BODY)
        if owned is not None and not owned.enabled:
            return _Answer(401, UNAUTHORIZED_BODY)  # Keystone issues no token for a disabled project
        token = V3Token(
            user_id="b1e1b2a0c0d04b5e8f9a0b1c2d3e4f50" if owned is None else f"u-{owned.owner}",
            user_name=self.fake.username if owned is None else owned.owner,
            user_domain_id="default",
            project_id=self.fake.project_id if owned is None else owned.id,
            project_name=self.fake.project_name if owned is None else owned.name,
            project_domain_id="default",
            methods=list(identity.get("methods", [])),
        )
        token.add_role(name="admin" if owned is None else "member")
        compute_url = self.origin + (COMPUTE if self.fake.unversioned_catalog else COMPUTE_V21)
        compute = token.add_service("compute", name="nova")
        compute.add_standard_endpoints(
            public=compute_url, internal=compute_url, admin=compute_url, region=self.fake.region
        )
        keystone = token.add_service("identity", name="keystone")
        keystone.add_standard_endpoints(public=f"{self.origin}{IDENTITY}/v3", region=self.fake.region)
        return _Answer(201, dict(token), headers={"X-Subject-Token": self.fake._issue_token()})

    def _owned_project(self, identity: dict[str, Any]) -> Project | None:
        """The project whose owner these password credentials are, if any."""
        user = (
            identity.get("password", {}).get("user", {}) if "password" in identity.get("methods", []) else {}
        )
        with self.fake._lock:
            projects = list(self.fake._projects.values())
        return next(
            (p for p in projects if user.get("name") == p.owner and user.get("password") == p.password), None
        )

    def _credentials_ok(self, identity: dict[str, Any]) -> bool:
        methods = identity.get("methods") or []
        if "password" in methods:
            user = identity.get("password", {}).get("user", {})
            return bool(user.get("name") == self.fake.username and user.get("password") == self.fake.password)
        if "application_credential" in methods:
            cred = identity.get("application_credential", {})
            return bool(
                cred.get("id") == self.fake.application_credential_id
                and cred.get("secret") == self.fake.application_credential_secret
            )
        return False

    # -- Nova discovery --

    def _compute_version_doc(self) -> dict[str, Any]:
        return {
            "id": "v2.1",
            "status": "CURRENT",
            "version": "{}.{}".format(*MAX_MICROVERSION),
            "min_version": "{}.{}".format(*MIN_MICROVERSION),
            "updated": "2013-07-23T11:33:21Z",
            "links": [{"rel": "self", "href": f"{self.origin}{COMPUTE_V21}/"}],
            "media-types": [
                {"base": "application/json", "type": "application/vnd.openstack.compute+json;version=2.1"}
            ],
        }

    def _compute_versions(self) -> _Answer:
        return _Answer(200, {"versions": [self._compute_version_doc()]})

    def _compute_version(self) -> _Answer:
        return _Answer(200, {"version": self._compute_version_doc()})

    # -- Nova API --

    def _compute_api(self, subpath: str, method: str) -> _Answer | None:
        if self.fake.before_usage is not None and subpath.startswith("/os-simple-tenant-usage"):
            self.fake.before_usage(self.request)
        fault = self.fake._take_fault()
        if fault is not None and fault.kind == "expire":
            self.fake._expire_tokens()
        elif fault is not None and fault.kind in ("status", "html", "disconnect"):
            return _fault_answer(fault)
        if not self.fake._token_valid(self.request.header("X-Auth-Token")):
            return _Answer(401, UNAUTHORIZED_BODY, headers={"WWW-Authenticate": "Keystone uri='unset'"})
        try:
            version = parse_microversion(self.request.headers)
            answer = self._nova(subpath, method, version)
        except NovaError as error:
            return _Answer(error.status, error.body())
        version_text = "{}.{}".format(*version)
        answer.headers.update(
            {
                "OpenStack-API-Version": f"compute {version_text}",
                "X-OpenStack-Nova-API-Version": version_text,
                "Vary": "OpenStack-API-Version, X-OpenStack-Nova-API-Version",
            }
        )
        return _late_fault(fault, answer)

    def _nova(self, subpath: str, method: str, version: tuple[int, int]) -> _Answer:
        parts = subpath.strip("/").split("/")
        if method == "GET" and parts[0] == "os-simple-tenant-usage" and len(parts) <= 2:
            project_id = parts[1] if len(parts) == 2 else None
            return _Answer(200, _UsageQuery(self, version, project_id).answer())
        if (
            method == "GET"
            and len(parts) == 3
            and parts[0] == "servers"
            and parts[2] == "os-instance-actions"
        ):
            return _Answer(200, {"instanceActions": self._instance_actions(parts[1])})
        if method == "POST" and len(parts) == 3 and parts[0] == "servers" and parts[2] == "action":
            return self._server_action(parts[1], version)
        raise NovaError(404, "The resource could not be found.")

    def _instance_actions(self, server_id: str) -> list[dict[str, Any]]:
        """A server's actions, newest first, as Nova lists them (deleted servers too, as admin)."""
        with self.fake._lock:
            history = list(self.fake._history.get(server_id, ()))
            instance = self.fake._instances.get(server_id)
        if instance is None:
            raise NovaError(404, f"Instance {server_id} could not be found.")
        return [
            {
                "action": action,
                "instance_uuid": server_id,
                "request_id": f"req-{server_id[:8]}-{number}",
                "user_id": "u-admin",
                "project_id": instance.project_id,
                "start_time": nova_time_str(at),
                "message": None,
            }
            for number, (action, at) in reversed(list(enumerate(history)))
        ]

    def _server_action(self, server_id: str, version: tuple[int, int]) -> _Answer:
        try:
            body = json.loads(self.request.body)
        except ValueError:
            raise NovaError(400, "Malformed request body") from None
        if not isinstance(body, dict) or len(body) != 1 or next(iter(body)) not in ACTIONS:
            raise NovaError(400, "There is no such action: {}".format(",".join(body) if body else ""))
        action = next(iter(body))
        self.fake._transition(server_id, action, self.fake.clock.now())
        self.fake._record_action(ActionCall(server_id, action, body, "{}.{}".format(*version)))
        return _Answer(202)


def _fault_answer(fault: Fault) -> _Answer | None:
    if fault.kind == "disconnect":
        return None
    if fault.kind == "html":
        return _Answer(fault.status, raw=HTML_PAGE.encode(), content_type="text/html; charset=UTF-8")
    if fault.status == 401:
        return _Answer(401, UNAUTHORIZED_BODY, headers={"WWW-Authenticate": "Keystone uri='unset'"})
    messages = {
        403: "Policy doesn't allow os_compute_api:os-simple-tenant-usage:list to be performed.",
        429: "This request was rate-limited.",
    }
    message = messages.get(
        fault.status, "Unexpected API Error. Please report this at http://bugs.launchpad.net/nova/"
    )
    headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
    return _Answer(fault.status, NovaError(fault.status, message).body(), headers=headers)


def _late_fault(fault: Fault | None, answer: _Answer) -> _Answer:
    """A fault that alters an answer already computed (Nova did the work; the reply is what goes wrong)."""
    if fault is None:
        return answer
    if fault.kind == "missing_field" and fault.field is not None:
        answer.body = drop_field(answer.body, fault.field)
    elif fault.kind == "server_field" and fault.field is not None and isinstance(answer.body, dict):
        for usage in answer.body.get("tenant_usages", []):
            for server in usage.get("server_usages", []):
                server[fault.field] = fault.value
    elif fault.kind == "empty_with_next" and isinstance(answer.body, dict):
        href = f"{COMPUTE_V21}/os-simple-tenant-usage?detailed=1&marker={uuid_module.uuid4()}"
        answer.body = {"tenant_usages": [], "tenant_usages_links": [{"rel": "next", "href": href}]}
    elif fault.kind == "cut_off":
        answer.cut_off = True
    return answer


class _UsageQuery:
    """One ``GET /os-simple-tenant-usage[/{project_id}]``, validated and answered as Nova does."""

    def __init__(self, router: _Router, version: tuple[int, int], project_id: str | None) -> None:
        self.router = router
        self.fake = router.fake
        self.version = version
        self.project_id = project_id
        self.params = parse_qs(router.query)  # Nova's own parse: blank values dropped, first one wins

    def answer(self) -> dict[str, Any]:
        now = self.fake.clock.now()
        self._check_known_params()
        start = parse_nova_time(self._first("start"), now)
        stop = parse_nova_time(self._first("end"), now)
        if not start < stop:
            raise NovaError(400, "Invalid start time. The start time cannot occur after the end time.")
        stop = min(stop, now)
        detailed = self.project_id is not None or self._first("detailed") == "1"
        paged = self.version >= (2, 40)
        limit, marker = self._limit_and_marker() if paged else (self.fake.max_limit, None)
        rows = self.fake._rows(start, stop, self.project_id)
        if marker is not None:
            rows = self.fake._after_marker(rows, marker)
        if limit:
            rows = rows[:limit]
        usages = tenant_usages(rows, start, stop, now, detailed)
        return self._body(usages, rows, paged)

    def _body(self, usages: list[dict[str, Any]], rows: list[Instance], paged: bool) -> dict[str, Any]:
        links = self._links(rows) if paged else []
        if self.project_id is None:
            body: dict[str, Any] = {"tenant_usages": usages}
            if links:
                body["tenant_usages_links"] = links
            return body
        body = {"tenant_usage": usages[0] if usages else {}}
        if links:
            body["tenant_usage_links"] = links
        return body

    def _first(self, name: str) -> str | None:
        values = self.params.get(name)
        return values[0] if values else None

    def _check_known_params(self) -> None:
        if self.version < (2, 75):
            return
        known = {"start", "end", "detailed", "limit", "marker"}
        extra = sorted(set(parse_qs(self.router.query, keep_blank_values=True)) - known)
        if extra:
            raise NovaError(400, f"Additional properties are not allowed ({extra[0]!r} was unexpected)")

    def _limit_and_marker(self) -> tuple[int, str | None]:
        """``common.get_limit_and_marker``: limit capped at max_limit, a non-negative integer."""
        limit = self.fake.max_limit
        raw = self._first("limit")
        if raw is not None:
            if not raw.isdigit():
                raise NovaError(400, f"Invalid input for query parameters limit. Value: {raw}.")
            limit = min(limit, int(raw))
        return limit, self._first("marker")

    def _links(self, rows: list[Instance]) -> list[dict[str, str]]:
        """``ViewBuilder._get_collection_links``: a next link only when the page is full."""
        raw_limit = self._first("limit")
        max_items = min(int(raw_limit) if raw_limit else self.fake.max_limit, self.fake.max_limit)
        if not max_items or len(rows) != max_items:
            return []
        params = dict(parse_qsl(self.router.query, keep_blank_values=True))
        params["marker"] = rows[-1].uuid
        base = self.fake.link_base or f"{self.router.origin}{COMPUTE_V21}"
        collection = "os-simple-tenant-usage" + (f"/{self.project_id}" if self.project_id else "")
        return [{"rel": "next", "href": f"{base}/{collection}?{urlencode(params)}"}]
