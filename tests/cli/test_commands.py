"""Commands load when first asked for: ``--help`` and ``version`` import no database, vendor or web library,
and the lazy listing says exactly what the commands say of themselves."""

from __future__ import annotations

import json
import subprocess
import sys

import click
import pytest

from bridge.cli import main
from bridge.cli.base import cli
from bridge.cli.commands import COMMANDS, load_all

HEAVY = (
    "sqlalchemy",
    "alembic",
    "pydantic",
    "openstack",
    "weasyprint",
    "matplotlib",
    "flask",
    "prometheus_client",
)
"""Libraries only some commands need; the listing and the version need none of them."""


def callback_modules(command: click.Command) -> set[str]:
    found = {command.callback.__module__} if command.callback else set()
    for sub in getattr(command, "commands", {}).values():
        found |= callback_modules(sub)
    return found


def in_fresh_python(*argv: str) -> tuple[str, list[str]]:
    """Run ``billing-bridge argv`` in a new interpreter: its output, and the heavy libraries it imported."""
    script = (
        "import json, sys\n"
        "from bridge.cli import main\n"
        "try:\n"
        f"    main({list(argv)!r})\n"
        "except SystemExit:\n"
        "    pass\n"
        f"print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    output, _, imported = done.stdout.rstrip("\n").rpartition("\n")
    return output + "\n", json.loads(imported)


def test_every_command_is_in_the_table_with_every_module_that_adds_to_it() -> None:
    load_all()
    assert set(cli.commands) == {*COMMANDS, "version"}
    for name, lazy in COMMANDS.items():
        assert callback_modules(cli.commands[name]) <= set(lazy.modules), name


@pytest.mark.parametrize("width", [45, 300])
def test_the_listing_shows_each_commands_own_summary(width: int) -> None:
    load_all()
    for name, lazy in COMMANDS.items():
        shown = click.Command(name, help=lazy.summary).get_short_help_str(width)
        assert shown == cli.commands[name].get_short_help_str(width), name


def test_help_and_version_import_no_heavy_library_and_help_lists_what_the_commands_say(
    capsys: pytest.CaptureFixture[str],
) -> None:
    listing, imported = in_fresh_python("--help")
    assert imported == []
    load_all()
    with pytest.raises(SystemExit):
        main(["--help"])
    assert listing == capsys.readouterr().out, "the lazy listing is the one the loaded commands give"

    version, imported = in_fresh_python("version")
    assert (version.startswith("billing-bridge "), imported) == (True, [])


def test_a_subcommand_added_by_another_module_is_there_when_its_group_loads() -> None:
    listing, _ = in_fresh_python("client", "--help")
    assert {"add", "set", "can-create", "sso-link"} <= {
        line.split()[0] for line in listing.split("Commands:")[1].splitlines() if line.strip()
    }
