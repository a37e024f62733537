"""Support staff and operators at the command line: a client's login link, the sign-ups, the retry; and
`billing-bridge run` serving the sign-up pages beside the operator endpoint."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import requests

from bridge.bootstrap import App
from bridge.daemon import Daemon
from bridge.sync.systemd import SystemdNotifier
from tests.fakes.solusvm import FakeSolusVM
from tests.support.cli import run_cli
from tests.web.enrollment_site import Site, accept_terms, free_port, running_site, sign_up, solusvm_section

EMAIL = "ada@example.com"


@pytest.fixture
def solus() -> Iterator[FakeSolusVM]:
    with FakeSolusVM() as fake:
        yield fake


def config_of(site: Site, solus: FakeSolusVM, tmp_path: Path) -> Path:
    """A settings file for the CLI naming the same database, state directory (key) and site as ``site``."""
    settings = site.app.settings
    path = tmp_path / "cli.toml"
    path.write_text(
        f'[daemon]\nstate_dir = "{settings.daemon.state_dir}"\n'
        f'[database]\nurl = "{settings.database.url}"\n'
        '[logging]\nformat = "json"\n'
        f'[enrollment]\nlisten = "{settings.enrollment.listen}"\n'
        f'[solusvm]\nenabled = true\nurl = "{solus.url}"\ntoken = "{solus.token}"\nmax_attempts = 1\n'
    )
    return path


@pytest.mark.parametrize("backend", ["sqlite"])
def test_sso_link_prints_a_single_use_link_into_solusvm_for_an_enrolled_client(
    make_app: Callable[..., App], solus: FakeSolusVM, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with running_site(make_app, solusvm=solusvm_section(solus)) as site:
        config = config_of(site, solus, tmp_path)
        site.app.clients.add(email="grace@example.com", name="Grace Hopper")
        code, _, err = run_cli(capsys, "--config", str(config), "client", "sso-link", "grace@example.com")
        assert code == 2
        assert "is not enrolled in SolusVM; they can sign up at" in err

        browser = requests.Session()
        sign_up(site, browser)
        accept_terms(site, browser, site.last_link(EMAIL))
        code, out, err = run_cli(capsys, "--config", str(config), "client", "sso-link", EMAIL)
        assert code == 0
        link = out.strip()
        assert link.startswith(f"{site.base}/sso/")
        assert "single use; valid until " in err

        staff = requests.Session()
        into = staff.get(link, allow_redirects=False, timeout=10)
        assert into.headers["Location"] == "/sso"
        sso = staff.get(site.url("/sso"), allow_redirects=False, timeout=10)
        assert sso.headers["Location"].startswith(f"{solus.url}/auth/by_token?token=")
        assert requests.get(link, timeout=10).status_code == 410

        code, out, _ = run_cli(capsys, "--config", str(config), "enrollment", "list")
        assert code == 0
        assert EMAIL in out
        assert "active" in out
        assert "solusvm created 1" in out


@pytest.mark.parametrize("backend", ["sqlite"])
def test_signin_link_prints_a_single_use_link_to_any_clients_own_page(
    make_app: Callable[..., App], solus: FakeSolusVM, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with running_site(make_app, solusvm=solusvm_section(solus)) as site:
        config = config_of(site, solus, tmp_path)
        site.app.clients.add(email="grace@example.com", name="Grace Hopper")  # not enrolled: still a link
        cli = ("--config", str(config), "client", "signin-link")
        code, out, err = run_cli(capsys, *cli, "grace@example.com")
        assert code == 0 and out.strip().startswith(f"{site.base}/signin/")
        assert "single use; valid until " in err
        staff = requests.Session()
        into = staff.get(out.strip(), allow_redirects=False, timeout=10)
        assert (into.status_code, into.headers["Location"]) == (303, "/account")
        assert "Grace Hopper" in staff.get(site.url("/account"), timeout=10).text
        assert requests.get(out.strip(), timeout=10).status_code == 410
        code, _, err = run_cli(capsys, *cli, "nobody@example.com")
        assert code == 2 and "no client 'nobody@example.com'" in err


@pytest.mark.parametrize("backend", ["sqlite"])
def test_a_login_link_expires(make_app: Callable[..., App], solus: FakeSolusVM) -> None:
    with running_site(make_app, solusvm=solusvm_section(solus)) as site:
        browser = requests.Session()
        sign_up(site, browser)
        accept_terms(site, browser, site.last_link(EMAIL))
        link, _ = site.service.login_link(EMAIL)
        site.app.clock.advance(timedelta(minutes=30))
        expired = requests.get(link, timeout=10)
        assert expired.status_code == 410
        assert "This link has expired" in expired.text


@pytest.mark.parametrize("backend", ["sqlite"])
def test_the_daemon_serves_the_sign_up_pages_on_their_own_address(make_app: Callable[..., App]) -> None:
    port = free_port()
    app = make_app(health={"listen": "127.0.0.1:0"}, enrollment={"listen": f"127.0.0.1:{port}"})
    daemon = Daemon(app, notifier=SystemdNotifier({}))
    daemon.start()
    try:
        assert daemon.health is not None and daemon.health.port != port
        landing = requests.get(f"http://127.0.0.1:{port}/", timeout=10)
        assert landing.status_code == 200
        assert "Create your account" in landing.text
        assert "enrollment" in {job.id for job in daemon.scheduler.get_jobs()}
    finally:
        daemon.shutdown()
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://127.0.0.1:{port}/", timeout=10)


@pytest.mark.parametrize("backend", ["sqlite"])
def test_a_taken_address_leaves_billing_running_and_says_so(
    make_app: Callable[..., App], capsys: pytest.CaptureFixture[str]
) -> None:
    port = free_port()
    with running_site(make_app, enrollment={"listen": f"127.0.0.1:{port}"}):
        app = make_app(health={"listen": "127.0.0.1:0"}, enrollment={"listen": f"127.0.0.1:{port}"})
        daemon = Daemon(app, notifier=SystemdNotifier({}))
        daemon.start()
        try:
            assert daemon.scheduler.running
            assert daemon.enrollment is not None and daemon.enrollment.server is None
        finally:
            daemon.shutdown()
    output = "".join(capsys.readouterr())
    assert "sign-up pages not served: cannot listen; set enrollment.listen to a free address" in output
