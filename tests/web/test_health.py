"""The operator endpoint answers what an on-call operator needs, and nothing secret."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from ipaddress import ip_address
from pathlib import Path
from typing import Any

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from bridge.bootstrap import App, build_app
from bridge.daemon import Daemon
from bridge.web.health import HealthApp
from tests.support.operator import HEALTH, TOKEN, get, running


@pytest.fixture
def daemon(make_app: Callable[..., App]) -> Iterator[Daemon]:
    with running(make_app(health=HEALTH)) as started:
        yield started


def test_healthz_and_readyz_answer_200_while_running(daemon: Daemon) -> None:
    assert get(daemon, "/healthz", token=None).status_code == 200
    ready = get(daemon, "/readyz", token=None)
    assert ready.status_code == 200
    assert ready.json()["status"] == "ready"


def test_status_and_metrics_need_the_admin_token(daemon: Daemon) -> None:
    assert get(daemon, "/status", token=None).status_code == 401
    assert get(daemon, "/metrics", token="wrong").status_code == 401
    assert get(daemon, "/status").status_code == 200


def test_status_lists_each_job_with_last_run_and_next_run_and_no_secret(daemon: Daemon) -> None:
    daemon.app.runner.run("housekeeping")
    response = get(daemon, "/status")
    report = response.json()
    assert report["scheduler_running"] is True
    assert report["uptime_seconds"] >= 0
    job = next(job for job in report["jobs"] if job["name"] == "housekeeping")
    assert job["last_run"]["status"] == "succeeded"
    assert job["next_run"] is not None
    assert TOKEN not in response.text


def test_metrics_have_the_job_series(daemon: Daemon) -> None:
    daemon.app.runner.run("housekeeping")
    text = get(daemon, "/metrics").text
    assert 'billing_bridge_job_runs_total{job="housekeeping",status="succeeded"} 1.0' in text
    assert 'billing_bridge_job_runs_total{job="housekeeping",status="failed"} 0.0' in text
    assert 'billing_bridge_job_last_success_timestamp_seconds{job="housekeeping"}' in text
    assert 'billing_bridge_job_last_duration_seconds{job="housekeeping"}' in text
    assert TOKEN not in text


def call(app: HealthApp, path: str) -> tuple[str, Any]:
    status: list[str] = []
    body = b"".join(
        app({"PATH_INFO": path, "REQUEST_METHOD": "GET"}, lambda code, _headers: status.append(code))
    )
    return status[0], body


def test_readyz_is_503_with_the_reason_when_the_schema_is_behind(
    make_settings: Callable[..., Any], empty_database_url: str
) -> None:
    app = build_app(make_settings(empty_database_url))
    health = HealthApp(app.engine, app.metrics, is_alive=lambda: True, status=dict)
    try:
        status, body = call(health, "/readyz")
    finally:
        app.close()
    assert status.startswith("503")
    assert b"run `billing-bridge migrate`" in body


def test_readyz_is_503_when_the_database_does_not_answer(make_settings: Callable[..., Any]) -> None:
    settings = make_settings(
        "postgresql+psycopg://nobody@127.0.0.1:1/none", database={"connect_timeout_seconds": 1}
    )
    app = build_app(settings)
    health = HealthApp(app.engine, app.metrics, is_alive=lambda: True, status=dict)
    try:
        status, body = call(health, "/readyz")
    finally:
        app.close()
    assert status.startswith("503")
    assert b"database does not answer" in body


def test_healthz_is_503_when_the_scheduler_has_stopped(app: App) -> None:
    health = HealthApp(app.engine, app.metrics, is_alive=lambda: False, status=dict)
    assert call(health, "/healthz")[0].startswith("503")


def test_status_and_metrics_show_each_usage_source_watermark_lag_and_error(daemon: Daemon) -> None:
    from datetime import timedelta

    from bridge.store import usage as usage_store

    app = daemon.app
    now = app.clock.now()
    with app.engine.begin() as connection:
        usage_store.advance_watermark(connection, "openstack", now - timedelta(hours=2), 1488, now)
        usage_store.record_error(connection, "solusvm", "solusvm /api/v1/servers: HTTP 401", now)
    usage = get(daemon, "/status").json()["usage"]
    assert usage["openstack"]["lag_seconds"] == 7200
    assert usage["openstack"]["records_collected"] == 1488
    assert usage["solusvm"]["last_error"] == "solusvm /api/v1/servers: HTTP 401"
    metrics = get(daemon, "/metrics").text
    assert 'billing_bridge_usage_lag_seconds{source="openstack"} 7200.0' in metrics
    assert 'billing_bridge_usage_records_collected{source="openstack"} 1488.0' in metrics
    assert 'billing_bridge_usage_last_collection_failed{source="solusvm"} 1.0' in metrics


def _self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, as PEM files (as an operator's CA would hand them out)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bridge health")])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(datetime(2020, 1, 1, tzinfo=UTC))
        .not_valid_after(datetime(2999, 1, 1, tzinfo=UTC))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ip_address("127.0.0.1"))]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "health.crt", directory / "health.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


def test_with_a_certificate_the_endpoint_speaks_https_only(
    make_app: Callable[..., App], tmp_path: Path
) -> None:
    cert, key = _self_signed(tmp_path)
    with running(make_app(health={**HEALTH, "tls_cert_file": str(cert), "tls_key_file": str(key)})) as daemon:
        assert daemon.health is not None
        url = f"127.0.0.1:{daemon.health.port}/status"
        answer = requests.get(
            f"https://{url}", headers={"Authorization": f"Bearer {TOKEN}"}, verify=cert, timeout=10
        )
        assert answer.status_code == 200 and answer.json()["scheduler_running"] is True
        with pytest.raises(requests.ConnectionError):
            requests.get(f"http://{url}", timeout=10)
