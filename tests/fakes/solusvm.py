"""A contract-faithful fake of the SolusVM 2 REST API, served over real HTTP on 127.0.0.1.

It follows shared/research/solusvm2-api.md: base ``/api/v1/``, bearer token (401 ``Unauthenticated.``
otherwise), objects under ``data``, Laravel pages ``{data, links, meta}`` read with ``?page=N``,
``filter[user_id]`` / ``filter[status]`` on servers and ``filter[search]`` (substring of the e-mail) on
users, Laravel validation errors (422 ``{"message", "errors": {field: [..]}}``) and Tasks for server
actions. Where the real contract is unverified (the shape of a suspend answer, the token answer beyond
``access_token``) the fake picks the likeliest form and says so.

Use it as a context manager::

    with FakeSolusVM(per_page=100) as fake:
        user = fake.add_user("ann@example.com")
        client = SolusVMClient(fake.url, fake.token)

**Server lifecycle.** :meth:`FakeSolusVM.create_server`, :meth:`~FakeSolusVM.start_server`,
:meth:`~FakeSolusVM.stop_server`, :meth:`~FakeSolusVM.restart_server`,
:meth:`~FakeSolusVM.suspend_server`, :meth:`~FakeSolusVM.resume_server`,
:meth:`~FakeSolusVM.delete_server` (and the API's POST/DELETE on servers, which call them) change a
server at the instant of the fake's ``clock`` and record what SolusVM records: a Task (``vm-start``...,
status ``done``) in ``GET tasks`` and, for creation, deletion and additional IPs, an entry in
``GET activity_logs`` (docs/solusvm-runtime.md). Both lists are Laravel pages, newest first, with the
documented filters. Switches, read when a list is served: ``timestamps`` = ``"iso"`` (ISO 8601 strings),
``"php"`` (PHP date objects ``{date, timezone_type, timezone}``, as an early SDK read them) or ``"none"``
(no ``created_at``/``started_at``/``finished_at`` at all, as the current SDK's Task has none); and
``record_events = False`` makes the lifecycle record nothing, as a node whose logs were pruned.

Faults are queued and hit the next matching requests (optionally only one method and/or a path
substring): :meth:`FakeSolusVM.fail_next`, :meth:`~FakeSolusVM.rate_limit_next`,
:meth:`~FakeSolusVM.html_next`, :meth:`~FakeSolusVM.drop_field_next`,
:meth:`~FakeSolusVM.commit_then_drop_next`. Every request is recorded in :attr:`FakeSolusVM.requests`.
"""

from __future__ import annotations

import json
import math
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit

from bridge.clock import Clock, FixedClock

API = "/api/v1/"
DEFAULT_TOKEN = "fake-solusvm-api-token-7f3a9c"
DEFAULT_CREATED_AT = "2024-01-01T00:00:00.000000Z"
USER_STATUSES = ("active", "locked", "suspended")
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

Json = dict[str, Any]
Timestamps = Literal["iso", "php", "none"]
TASK_TIMESTAMPS = ("created_at", "started_at", "finished_at")


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the fake received it (headers lower-cased, body parsed from JSON when there was one)."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any


@dataclass
class _Fault:
    kind: str
    remaining: int
    method: str | None = None
    path: str | None = None
    status: int = 500
    retry_after: str | None = None
    field: str | None = None

    def matches(self, method: str, path: str) -> bool:
        if self.method is not None and self.method != method:
            return False
        return self.path is None or self.path in path


@dataclass
class _Reply:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    raw: bytes | None = None
    drop: bool = False


class _NotFound(Exception):
    pass


class FakeSolusVM:
    """An in-memory SolusVM 2 management node holding users, plans, servers, tasks and login tokens.

    ``per_page`` is the node's page size (the ``per_page`` query parameter is ignored, as its support by
    SolusVM is unverified); lists named in ``unpaginated`` (``"servers"``, ``"plans"``, ``"users"``) are
    answered as a bare ``{"data": [...]}`` without ``links``/``meta``, as some SolusVM lists are.
    State can be edited directly (``fake.plans[1]["tokens_per_hour"] = 1.5``) to serve odd payloads.
    """

    def __init__(
        self,
        token: str = DEFAULT_TOKEN,
        *,
        per_page: int = 15,
        unpaginated: frozenset[str] = frozenset(),
        clock: Clock | None = None,
        timestamps: Timestamps = "iso",
        record_events: bool = True,
    ) -> None:
        self.token = token
        self.per_page = per_page
        self.unpaginated = set(unpaginated)
        self.clock: Clock = clock or FixedClock(datetime(2024, 1, 1, tzinfo=UTC))
        self.timestamps: Timestamps = timestamps
        self.record_events = record_events
        self.users: dict[int, Json] = {}
        self.plans: dict[int, Json] = {}
        self.servers: dict[int, Json] = {}
        self.tasks: dict[int, Json] = {}  # instants kept as datetimes, rendered per ``timestamps``
        self.activity_logs: dict[int, Json] = {}
        self.passwords: dict[int, str] = {}
        self.login_tokens: list[tuple[int, str]] = []
        self.requests: list[RecordedRequest] = []
        self._faults: list[_Fault] = []
        self._ids: dict[str, int] = {}
        self._lock = threading.RLock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle

    def __enter__(self) -> FakeSolusVM:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> None:
        handler = type("_BoundHandler", (_Handler,), {"fake": self})
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.01}, name="fake-solusvm", daemon=True
        )  # a short poll makes stop() quick
        self._thread.start()

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd = None
        self._thread = None

    @property
    def url(self) -> str:
        """The base URL of the node (``http://127.0.0.1:<port>``), without ``/api/v1``."""
        if self._httpd is None:
            raise RuntimeError("the fake is not running; use it as a context manager")
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    # ------------------------------------------------------------------ state

    def _next_id(self, kind: str) -> int:
        self._ids[kind] = self._ids.get(kind, 0) + 1
        return self._ids[kind]

    def add_user(
        self,
        email: str,
        *,
        status: str = "active",
        billing_user_id: int | str | None = None,
        created_at: str = DEFAULT_CREATED_AT,
        password: str = "initial-Passw0rd",
    ) -> Json:
        with self._lock:
            user_id = self._next_id("user")
            user = {
                "id": user_id,
                "email": email,
                "status": status,
                "billing_user_id": billing_user_id,
                "billing_token": None,
                "roles": [{"id": 2, "name": "Client"}],
                "language": {"id": 1, "locale": "en_US"},
                "limit_group": None,
                "created_at": created_at,
            }
            self.users[user_id] = user
            self.passwords[user_id] = password
            return user

    def add_plan(
        self,
        name: str,
        *,
        tokens_per_hour: int = 1,
        tokens_per_month: int = 700,
        ip_tokens_per_hour: int = 0,
        ip_tokens_per_month: int = 0,
        price_per_hour: str | None = "0.00100",
        price_per_month: str | None = "0.70000",
        currency_code: str = "USD",
    ) -> Json:
        with self._lock:
            plan_id = self._next_id("plan")
            plan = {
                "id": plan_id,
                "name": name,
                "params": {"disk": 20, "ram": 1073741824, "vcpu": 1},
                "tokens_per_hour": tokens_per_hour,
                "tokens_per_month": tokens_per_month,
                "ip_tokens_per_hour": ip_tokens_per_hour,
                "ip_tokens_per_month": ip_tokens_per_month,
                "price": {
                    "per_hour": price_per_hour,
                    "per_month": price_per_month,
                    "currency_code": currency_code,
                    "taxes_inclusive": False,
                    "taxes": [],
                    "total_price": price_per_month,
                },
                "is_default": False,
                "is_visible": True,
            }
            self.plans[plan_id] = plan
            return plan

    def add_server(
        self,
        name: str,
        *,
        user_id: int,
        plan_id: int,
        status: str = "started",
        is_suspended: bool = False,
        created_at: str = DEFAULT_CREATED_AT,
    ) -> Json:
        with self._lock:
            server_id = self._next_id("server")
            server = {
                "id": server_id,
                "uuid": f"00000000-0000-4000-8000-{server_id:012d}",
                "name": name,
                "description": "",
                "status": status,
                "is_suspended": is_suspended,
                "is_processing": False,
                "user_id": user_id,
                "plan_id": plan_id,
                "specifications": {"disk": 20, "ram": 1073741824, "vcpu": 1},
                "usage": {"network": {"incoming": {"value": 0}, "outgoing": {"value": 0}}},
                "ip_addresses": {"ipv4": [{"id": server_id, "ip": f"192.0.2.{server_id % 250 + 1}"}]},
                "project": {"id": 1, "name": "Default project"},
                "created_at": created_at,
            }
            self.servers[server_id] = server
            return server

    # ------------------------------------------------------------------ lifecycle

    def create_server(
        self, name: str, *, user_id: int, plan_id: int, additional_ips: int = 0, is_suspended: bool = False
    ) -> Json:
        """A server created now, running: a ``vm-create`` task, a ``compute_resource_vm_created`` entry."""
        with self._lock:
            now = self.clock.now()
            server = self.add_server(
                name, user_id=user_id, plan_id=plan_id, is_suspended=is_suspended, created_at=_iso(now)
            )
            for extra in range(additional_ips):
                server["ip_addresses"]["ipv4"].append(
                    {"id": 1000 * server["id"] + extra, "ip": "198.51.100.1"}
                )
            self._record(server, "vm-create", "compute_resource_vm_created")
            return server

    def start_server(self, server_id: int) -> Json:
        return self._act(server_id, "vm-start", status="started")

    def stop_server(self, server_id: int) -> Json:
        return self._act(server_id, "vm-stop", status="stopped")

    def restart_server(self, server_id: int) -> Json:
        return self._act(server_id, "vm-restart", status="started")

    def suspend_server(self, server_id: int) -> Json:
        return self._act(server_id, "vm-suspend", is_suspended=True)

    def resume_server(self, server_id: int) -> Json:
        return self._act(server_id, "vm-resume", is_suspended=False)

    def delete_server(self, server_id: int) -> Json:
        """The server leaves the list; a ``vm-delete`` task and a ``..._vm_delete_requested`` entry."""
        with self._lock:
            server = self._find(self.servers, str(server_id))
            task = self._record(server, "vm-delete", "compute_resource_vm_delete_requested")
            del self.servers[server["id"]]
            return task

    def add_additional_ip(self, server_id: int) -> None:
        with self._lock:
            server = self._find(self.servers, str(server_id))
            server["ip_addresses"]["ipv4"].append({"id": 1000 * server_id + 999, "ip": "198.51.100.2"})
            self._record(server, None, "additional_ip_created")

    def remove_additional_ip(self, server_id: int) -> None:
        with self._lock:
            server = self._find(self.servers, str(server_id))
            server["ip_addresses"]["ipv4"].pop()
            self._record(server, None, "additional_ip_deleted")

    def _act(self, server_id: int, action: str, **changes: Any) -> Json:
        with self._lock:
            server = self._find(self.servers, str(server_id))
            server.update(changes)
            return self._record(server, action, None)

    def _record(self, server: Json, action: str | None, event: str | None) -> Json:
        """The task (returned; empty when none) and the activity-log entry the change leaves, at now."""
        now = self.clock.now()
        task: Json = {}
        if action is not None:
            task = {
                "id": self._next_id("task"),
                "compute_resource_id": 1,
                "queue": "default",
                "action": action,
                "status": "done",
                "output": "",
                "progress": 100,
                "duration": 0,
                **dict.fromkeys(TASK_TIMESTAMPS, now),
                "_server_id": server["id"],
            }
            if self.record_events:
                self.tasks[task["id"]] = task
        if event is not None and self.record_events:
            owner = self.users.get(server["user_id"], {"email": None})
            entry_id = self._next_id("activity")
            self.activity_logs[entry_id] = {
                "id": entry_id,
                "event": event,
                "user_email": owner["email"],
                "created_at": now,
                "data": {"compute_resource_vm_id": server["id"], "name": server["name"]},
                "_user_id": server["user_id"],
            }
        return task

    # ------------------------------------------------------------------ faults

    def fail_next(
        self, n: int = 1, status: int = 500, *, method: str | None = None, path: str | None = None
    ) -> None:
        """The next ``n`` matching requests get ``status`` with a Laravel error body and change nothing."""
        self._add_fault(_Fault("status", n, method, path, status=status))

    def rate_limit_next(
        self, retry_after: str | None = "7", n: int = 1, *, method: str | None = None, path: str | None = None
    ) -> None:
        """The next ``n`` matching requests get 429 with this ``Retry-After`` (None: no header)."""
        self._add_fault(_Fault("rate_limit", n, method, path, status=429, retry_after=retry_after))

    def html_next(
        self, n: int = 1, status: int = 200, *, method: str | None = None, path: str | None = None
    ) -> None:
        """The next ``n`` matching requests get an HTML page (as a proxy or a login page would send)."""
        self._add_fault(_Fault("html", n, method, path, status=status))

    def drop_field_next(
        self, dotted: str, n: int = 1, *, method: str | None = None, path: str | None = None
    ) -> None:
        """The next ``n`` matching answers lack ``dotted`` (e.g. ``user.email``) in each object under data."""
        self._add_fault(_Fault("drop_field", n, method, path, field=dotted))

    def commit_then_drop_next(
        self, n: int = 1, *, method: str | None = None, path: str | None = None
    ) -> None:
        """The next ``n`` matching requests are applied, then the connection is closed without an answer."""
        self._add_fault(_Fault("commit_then_drop", n, method, path))

    def _add_fault(self, fault: _Fault) -> None:
        with self._lock:
            self._faults.append(fault)

    def _take_fault(self, method: str, path: str) -> _Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.remaining > 0 and fault.matches(method, path):
                    fault.remaining -= 1
                    return fault
            return None

    # ------------------------------------------------------------------ inspection

    def requests_to(self, method: str, path: str) -> list[RecordedRequest]:
        """The recorded requests with this method and exactly this path (e.g. ``/api/v1/users``)."""
        with self._lock:
            return [r for r in self.requests if r.method == method and r.path == path]

    # ------------------------------------------------------------------ dispatch

    def handle(self, method: str, target: str, headers: dict[str, str], raw_body: bytes) -> _Reply:
        parts = urlsplit(target)
        query = parse_qs(parts.query, keep_blank_values=True)
        body = _parse_body(raw_body)
        with self._lock:
            self.requests.append(RecordedRequest(method, parts.path, query, headers, body))
        fault = self._take_fault(method, parts.path)
        early = _early_fault_reply(fault)
        if early is not None:
            return early
        if headers.get("authorization") != f"Bearer {self.token}":
            return _Reply(401, {"message": "Unauthenticated."})
        if not parts.path.startswith(API):
            return _Reply(404, {"message": "Not Found"})
        if method in ("POST", "PUT", "PATCH") and body is _INVALID:
            return _Reply(400, {"message": "The request body is not valid JSON."})
        try:
            with self._lock:
                reply = self._route(method, parts.path[len(API) :].strip("/"), query, body, parts.path)
        except _NotFound:
            reply = _Reply(404, {"message": "Not Found"})
        reply.body = json.loads(json.dumps(reply.body))  # answer a copy: a fault must not touch the state
        return _late_fault(fault, reply)

    def _route(self, method: str, route: str, query: dict[str, list[str]], body: Any, path: str) -> _Reply:
        segments = route.split("/")
        handler = _ROUTES.get((method, _shape(segments)))
        if handler is None:
            raise _NotFound
        return handler(self, segments, query, body, path)

    # ------------------------------------------------------------------ resources

    def _server_json(self, server: Json) -> Json:
        user = self.users.get(server["user_id"], {"id": server["user_id"], "email": None})
        plan = self.plans.get(server["plan_id"], {"id": server["plan_id"], "name": None})
        out = {key: value for key, value in server.items() if key not in ("user_id", "plan_id")}
        out["user"] = {"id": user["id"], "email": user["email"], "status": user.get("status")}
        out["plan"] = {key: plan[key] for key in plan if key not in ("price",)}
        return out

    def list_servers(self, _: list[str], query: dict[str, list[str]], __: Any, path: str) -> _Reply:
        items = sorted(self.servers.values(), key=lambda s: s["id"])
        user_filter = _first(query, "filter[user_id]")
        status_filter = _first(query, "filter[status]")
        if user_filter:
            items = [s for s in items if str(s["user_id"]) == user_filter]
        if status_filter:
            items = [s for s in items if s["status"] == status_filter]
        return _Reply(200, self._page([self._server_json(s) for s in items], query, path))

    def get_server(self, segments: list[str], *_: Any) -> _Reply:
        return _Reply(200, {"data": self._server_json(self._find(self.servers, segments[1]))})

    def server_action(self, segments: list[str], *_: Any) -> _Reply:
        self._find(self.servers, segments[1])
        act = {
            "suspend": self.suspend_server,
            "resume": self.resume_server,
            "start": self.start_server,
            "stop": self.stop_server,
            "restart": self.restart_server,
        }[segments[2]]
        # Unverified: the real suspend/resume may answer with the server instead of a Task.
        return _Reply(200, {"data": self._accepted(act(int(segments[1])))})

    def delete_server_route(self, segments: list[str], *_: Any) -> _Reply:
        self._find(self.servers, segments[1])
        return _Reply(200, {"data": self._accepted(self.delete_server(int(segments[1])))})

    def _accepted(self, task: Json) -> Json:
        """The task as the action's answer shows it: just queued (the fake applies it at once)."""
        answer = self._task_json(task)
        answer.update(status="pending", progress=0, finished_at=None)
        return answer

    def _task_json(self, task: Json) -> Json:
        out = {key: value for key, value in task.items() if not key.startswith("_")}
        for key in TASK_TIMESTAMPS:
            self._render_instant(out, key)
        return out

    def _entry_json(self, entry: Json) -> Json:
        out = {key: value for key, value in entry.items() if not key.startswith("_")}
        self._render_instant(out, "created_at")
        return out

    def _render_instant(self, item: Json, key: str) -> None:
        instant = item.pop(key)
        if not isinstance(instant, datetime):
            item[key] = instant  # a value a test put there, served as it is
        elif self.timestamps == "iso":
            item[key] = _iso(instant)
        elif self.timestamps == "php":
            local = instant.astimezone(UTC).replace(tzinfo=None)
            item[key] = {
                "date": local.isoformat(sep=" ", timespec="microseconds"),
                "timezone_type": 3,
                "timezone": "UTC",
            }

    def get_task(self, segments: list[str], *_: Any) -> _Reply:
        return _Reply(200, {"data": self._task_json(self._find(self.tasks, segments[1]))})

    def list_tasks(self, _: list[str], query: dict[str, list[str]], __: Any, path: str) -> _Reply:
        items = sorted(self.tasks.values(), key=lambda t: -t["id"])
        filters = {
            "filter[compute_resource_vm_id]": "_server_id",
            "filter[compute_resource_id]": "compute_resource_id",
            "filter[action]": "action",
            "filter[status]": "status",
        }
        for parameter, key in filters.items():
            wanted = _first(query, parameter)
            if wanted:
                items = [t for t in items if str(t[key]) == wanted]
        return _Reply(200, self._page([self._task_json(t) for t in items], query, path))

    def list_activity_logs(self, _: list[str], query: dict[str, list[str]], __: Any, path: str) -> _Reply:
        items = sorted(self.activity_logs.values(), key=lambda e: -e["id"])
        user, event = _first(query, "filter[user_id]"), _first(query, "filter[event]")
        if user:
            items = [e for e in items if str(e["_user_id"]) == user]
        if event:
            items = [e for e in items if e["event"] == event]
        return _Reply(200, self._page([self._entry_json(e) for e in items], query, path))

    def list_plans(self, _: list[str], query: dict[str, list[str]], __: Any, path: str) -> _Reply:
        return _Reply(200, self._page(sorted(self.plans.values(), key=lambda p: p["id"]), query, path))

    def get_plan(self, segments: list[str], *_: Any) -> _Reply:
        return _Reply(200, {"data": self._find(self.plans, segments[1])})

    def list_users(self, _: list[str], query: dict[str, list[str]], __: Any, path: str) -> _Reply:
        items = sorted(self.users.values(), key=lambda u: u["id"])
        search = _first(query, "filter[search]")
        if search:
            items = [u for u in items if search.casefold() in u["email"].casefold()]
        return _Reply(200, self._page(items, query, path))

    def get_user(self, segments: list[str], *_: Any) -> _Reply:
        return _Reply(200, {"data": self._find(self.users, segments[1])})

    def create_user(self, _: list[str], __: dict[str, list[str]], body: Any, ___: str) -> _Reply:
        data = body if isinstance(body, dict) else {}
        errors = self._user_errors(data)
        if errors:
            first = next(iter(errors.values()))[0]
            more = sum(len(v) for v in errors.values()) - 1
            message = first if more == 0 else f"{first} (and {more} more error{'s' if more > 1 else ''})"
            return _Reply(422, {"message": message, "errors": errors})
        user = self.add_user(
            data["email"],
            status=data.get("status", "active"),
            billing_user_id=data.get("billing_user_id"),
            created_at="2024-06-01T12:00:00.000000Z",
            password=data["password"],
        )
        return _Reply(201, {"data": user})

    def _user_errors(self, data: Json) -> dict[str, list[str]]:
        errors: dict[str, list[str]] = {}
        email = data.get("email")
        if not isinstance(email, str) or not email:
            errors["email"] = ["The email field is required."]
        elif not EMAIL_RE.match(email):
            errors["email"] = ["The email must be a valid email address."]
        elif any(u["email"].casefold() == email.casefold() for u in self.users.values()):
            errors["email"] = ["The email has already been taken."]
        password = data.get("password")
        if not isinstance(password, str) or not password:
            errors["password"] = ["The password field is required."]
        status = data.get("status", "active")
        if status not in USER_STATUSES:
            errors["status"] = ["The selected status is invalid."]
        billing = data.get("billing_user_id")
        if billing is not None and not str(billing).isdigit():
            errors["billing_user_id"] = ["The billing user id must be an integer."]
        return errors

    def create_token(self, segments: list[str], __: dict[str, list[str]], body: Any, ___: str) -> _Reply:
        user = self._find(self.users, segments[1])
        counter = self._next_id("token")
        token = f"{counter}|one-time+token/{user['id']:04d}=="
        self.login_tokens.append((user["id"], token))
        one_time = bool(isinstance(body, dict) and body.get("is_one_time"))
        # Unverified beyond access_token: token_type and expires_at follow the SDK's Credentials shape.
        data = {"access_token": token, "token_type": "Bearer", "expires_at": None, "is_one_time": one_time}
        return _Reply(201, {"data": data})

    def _find(self, table: dict[int, Json], raw_id: str) -> Json:
        if not raw_id.isdigit() or int(raw_id) not in table:
            raise _NotFound
        return table[int(raw_id)]

    def _page(self, items: list[Json], query: dict[str, list[str]], path: str) -> Json:
        """A Laravel paginator answer for ``items`` at ``?page=`` (default 1)."""
        if path[len(API) :] in self.unpaginated:
            return {"data": items}
        total = len(items)
        last_page = max(1, math.ceil(total / self.per_page))
        raw_page = _first(query, "page") or "1"
        page = int(raw_page) if raw_page.isdigit() and int(raw_page) > 0 else 1
        start = (page - 1) * self.per_page
        chunk = items[start : start + self.per_page]
        base = f"{self.url}{path}"
        return {
            "data": chunk,
            "links": {
                "first": f"{base}?page=1",
                "last": f"{base}?page={last_page}",
                "prev": f"{base}?page={page - 1}" if page > 1 else None,
                "next": f"{base}?page={page + 1}" if page < last_page else None,
            },
            "meta": {
                "current_page": page,
                "from": start + 1 if chunk else None,
                "last_page": last_page,
                "path": base,
                "per_page": self.per_page,
                "to": start + len(chunk) if chunk else None,
                "total": total,
            },
        }


_INVALID = object()

Route = Callable[[FakeSolusVM, list[str], dict[str, list[str]], Any, str], _Reply]

_ROUTES: dict[tuple[str, tuple[str, ...]], Route] = {
    ("GET", ("servers",)): FakeSolusVM.list_servers,
    ("GET", ("servers", "#")): FakeSolusVM.get_server,
    ("POST", ("servers", "#", "suspend")): FakeSolusVM.server_action,
    ("POST", ("servers", "#", "resume")): FakeSolusVM.server_action,
    ("POST", ("servers", "#", "start")): FakeSolusVM.server_action,
    ("POST", ("servers", "#", "stop")): FakeSolusVM.server_action,
    ("POST", ("servers", "#", "restart")): FakeSolusVM.server_action,
    ("DELETE", ("servers", "#")): FakeSolusVM.delete_server_route,
    ("GET", ("tasks",)): FakeSolusVM.list_tasks,
    ("GET", ("tasks", "#")): FakeSolusVM.get_task,
    ("GET", ("activity_logs",)): FakeSolusVM.list_activity_logs,
    ("GET", ("plans",)): FakeSolusVM.list_plans,
    ("GET", ("plans", "#")): FakeSolusVM.get_plan,
    ("GET", ("users",)): FakeSolusVM.list_users,
    ("GET", ("users", "#")): FakeSolusVM.get_user,
    ("POST", ("users",)): FakeSolusVM.create_user,
    ("POST", ("users", "#", "tokens")): FakeSolusVM.create_token,
}


def _iso(instant: datetime) -> str:
    """An instant as Laravel serialises dates: ``2022-10-10T08:30:00.000000Z``."""
    return instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _shape(segments: list[str]) -> tuple[str, ...]:
    """The route key of a path: numeric segments become ``#``."""
    return tuple("#" if segment.isdigit() else segment for segment in segments)


def _first(query: dict[str, list[str]], key: str) -> str | None:
    values = query.get(key)
    return values[0] if values else None


def _parse_body(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return _INVALID


def _early_fault_reply(fault: _Fault | None) -> _Reply | None:
    """The answer of a fault that replaces the request entirely (nothing is applied)."""
    if fault is None:
        return None
    if fault.kind == "status":
        return _Reply(fault.status, {"message": "Server Error"})
    if fault.kind == "rate_limit":
        headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
        return _Reply(429, {"message": "Too Many Attempts."}, headers=headers)
    if fault.kind == "html":
        page = b"<!DOCTYPE html><html><head><title>Login</title></head><body><h1>Log in</h1></body></html>"
        return _Reply(fault.status, raw=page, headers={"Content-Type": "text/html; charset=UTF-8"})
    return None


def _late_fault(fault: _Fault | None, reply: _Reply) -> _Reply:
    """Apply a fault that acts on a processed request (the change already happened)."""
    if fault is None:
        return reply
    if fault.kind == "commit_then_drop":
        return _Reply(reply.status, drop=True)
    if fault.kind == "drop_field" and fault.field and isinstance(reply.body, dict):
        data = reply.body.get("data")
        for item in data if isinstance(data, list) else [data]:
            _remove(item, fault.field.split("."))
    return reply


def _remove(obj: Any, parts: list[str]) -> None:
    for part in parts[:-1]:
        if not isinstance(obj, dict):
            return
        obj = obj.get(part)
    if isinstance(obj, dict):
        obj.pop(parts[-1], None)


class _Handler(BaseHTTPRequestHandler):
    """Feeds each HTTP request to the bound fake and writes its reply (or drops the connection)."""

    fake: FakeSolusVM
    server_version = "nginx"
    sys_version = ""

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        headers = {key.lower(): value for key, value in self.headers.items()}
        reply = self.fake.handle(self.command, self.path, headers, raw)
        if reply.drop:
            self.close_connection = True
            return
        payload = reply.raw if reply.raw is not None else json.dumps(reply.body).encode()
        self.send_response(reply.status)
        if reply.raw is None:
            self.send_header("Content-Type", "application/json")
        for key, value in reply.headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the fake records requests instead of printing them."""
