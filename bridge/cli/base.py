"""The ``billing-bridge`` group, its shared context and output helpers, and the entry point.

Exit codes: 0 ok, 1 runtime failure, 2 bad input. Errors are one line on stderr; ``--debug`` adds the
traceback.

Light on purpose: the settings, the app and a command's module are imported when a command needs them
(:mod:`bridge.cli.commands`), so ``--help`` and ``version`` cost little more than starting Python.
"""

from __future__ import annotations

import json
import re
import sys
import tempfile
import traceback
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn
from zoneinfo import ZoneInfo

import click

from bridge import __version__
from bridge.cli.commands import COMMANDS, LazyGroup
from bridge.domain.bounds import (
    COUNT_MAX,
    ID_MAX,
    check_day,
    check_instant,
    check_text,
    parse_amount,
    shown,
)
from bridge.errors import EXIT_BAD_INPUT, EXIT_FAILURE, BridgeError, InputError, VendorError, checked
from bridge.logs import SecretMasker

if TYPE_CHECKING:
    from bridge.bootstrap import App
    from bridge.settings import Settings

AppFactory = Callable[..., "App"]
"""Builds the app from the loaded settings and the masker (``factory(settings, masker=...)``):
:func:`~bridge.bootstrap.build_app`, or a test's wrapper of it that injects a clock or a vendor fake."""


@dataclass
class Context:
    """Settings and the app, built on first use so ``--help`` and ``version`` need no settings file."""

    config: str | None = None
    debug: bool = False
    needs_schema: bool = False
    app_factory: AppFactory | None = None
    _app: App | None = field(default=None, init=False)
    _masker: SecretMasker = field(default_factory=SecretMasker, init=False)

    @property
    def masker(self) -> SecretMasker:
        """Masks the secrets of the loaded settings (none are known, so none can show, before that)."""
        return self._masker

    @property
    def settings(self) -> Settings:
        return self.app.settings

    @property
    def app(self) -> App:
        if self._app is None:
            from bridge.bootstrap import build_app, secret_masker
            from bridge.logs import configure as configure_logging
            from bridge.settings import config_path, load_settings

            settings = load_settings(config_path(self.config))
            self._masker = secret_masker(settings)
            level = "debug" if self.debug else settings.logging.level
            configure_logging(level, settings.logging.format, masker=self._masker)
            factory = self.app_factory or build_app
            self._app = factory(settings, masker=self._masker)
            if self.needs_schema:
                self._app.require_schema()
        return self._app


pass_context = click.make_pass_decorator(Context)

SCHEMA_FREE = {"migrate", "status", "check-config", "version", "run"}
"""Commands that work (or say what to do) with a schema behind the code; all others refuse first."""


@click.group(
    cls=LazyGroup,
    lazy=COMMANDS,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.option(
    "--config",
    metavar="PATH",
    help="Settings file (default: $BRIDGE_CONFIG, else ./settings.toml).",
)
@click.option("--debug", is_flag=True, help="Debug logs, and a traceback with any error.")
@click.pass_context
def cli(ctx: click.Context, config: str | None, debug: bool) -> None:
    """billing-bridge: bills OpenStack and SolusVM 2 usage, exactly once, into WHMCS or its own invoices."""
    context = ctx.ensure_object(Context)  # made by main(), which masks its errors with it
    context.config, context.debug = config, debug
    context.needs_schema = ctx.invoked_subcommand not in SCHEMA_FREE
    ctx.call_on_close(lambda: ctx.obj._app.close() if ctx.obj._app else None)


@cli.command()
def version() -> None:
    """Print the version."""
    click.echo(f"billing-bridge {__version__}")


def print_json(document: Any) -> None:
    click.echo(json.dumps(document, indent=2, sort_keys=True, default=json_default))


class StreamedJson:
    """A JSON document printed exactly as :func:`print_json` prints it, whose top-level lists are written
    item by item as they come, each into a temporary file: a month end's report of any size keeps no list
    of its items in memory. :meth:`print` writes it out once complete; leaving the ``with`` block drops
    the files."""

    def __init__(self, document: dict[str, Any], lists: Sequence[str]) -> None:
        self._document = document
        self._files = ExitStack()
        self._spools = {
            name: self._files.enter_context(tempfile.TemporaryFile("w+", encoding="utf-8"))  # noqa: SIM115 closed in __exit__
            for name in lists
        }
        self._counts = dict.fromkeys(lists, 0)

    def __enter__(self) -> StreamedJson:
        return self

    def update(self, **values: Any) -> None:
        """Set the document's other (top-level) values."""
        self._document.update(values)

    def __exit__(self, *exc: object) -> None:
        self._files.close()

    def add(self, name: str, item: Any) -> None:
        """Append ``item`` to the list ``name``."""
        spool = self._spools[name]
        if self._counts[name]:
            spool.write(",\n")
        spool.write("    " + indented_json(item, level=2))
        self._counts[name] += 1

    def print(self) -> None:
        """Echo the document, the lists in place as print_json would indent them."""
        marks = {f'"{_LIST_MARK}{name}"': name for name in self._spools}
        skeleton = {**self._document, **{name: f"{_LIST_MARK}{name}" for name in self._spools}}
        text = json.dumps(skeleton, indent=2, sort_keys=True, default=json_default)
        for part in re.split("(" + "|".join(re.escape(mark) for mark in marks) + ")", text):
            name = marks.get(part)
            if name is None:
                click.echo(part, nl=False)
            elif self._counts[name] == 0:
                click.echo("[]", nl=False)
            else:
                click.echo("[\n", nl=False)
                spool = self._spools[name]
                spool.seek(0)
                while block := spool.read(1 << 16):
                    click.echo(block, nl=False)
                click.echo("\n  ]", nl=False)
        click.echo("")


def indented_json(value: Any, *, level: int = 0) -> str:
    """``json.dumps(value, indent=2, sort_keys=True, default=json_default)`` with every line after the
    first ``level`` steps further in, byte for byte, a few times faster: the standard library encodes in
    Python whenever it indents, and a month end's ``--json`` writes an item per invoice (issue 17)."""
    parts: list[str] = []
    _encode(value, "\n" + "  " * level, parts)
    return "".join(parts)


_QUOTED = json.encoder.encode_basestring_ascii  # the C escaper json.dumps uses


def _encode(value: Any, newline: str, parts: list[str]) -> None:
    """Append ``value`` encoded as :func:`indented_json` says, its nested lines starting ``newline``."""
    if isinstance(value, str):
        parts.append(_QUOTED(value))
    elif value is None or isinstance(value, bool):
        parts.append("null" if value is None else "true" if value else "false")
    elif isinstance(value, int):
        parts.append(int.__repr__(value))
    elif isinstance(value, float):
        parts.append(_float(value))
    elif isinstance(value, dict):
        _container(sorted(value.items()), "{}", newline, parts)
    elif isinstance(value, list | tuple):
        _container(value, "[]", newline, parts)
    else:
        _encode(json_default(value), newline, parts)


def _container(items: Sequence[Any], brackets: str, newline: str, parts: list[str]) -> None:
    """A JSON object (``items`` its sorted (key, value) pairs) or array, one member per line."""
    if not items:
        parts.append(brackets)
        return
    inner = newline + "  "
    parts.append(brackets[0])
    for position, item in enumerate(items):
        parts.append(inner if position == 0 else "," + inner)
        if brackets == "{}":
            key, item = item
            parts.append(_QUOTED(_key(key)) + ": ")
        _encode(item, inner, parts)
    parts.append(newline + brackets[1])


def _key(key: Any) -> str:
    """An object key as json.dumps writes it."""
    if isinstance(key, str):
        return key
    if key is None or isinstance(key, bool):
        return "null" if key is None else "true" if key else "false"
    if isinstance(key, int):
        return int.__repr__(key)
    if isinstance(key, float):
        return _float(key)
    raise TypeError(f"keys must be str, int, float, bool or None, not {type(key).__name__}")


def _float(value: float) -> str:
    if value != value:
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "Infinity" if value > 0 else "-Infinity"
    return float.__repr__(value)


_LIST_MARK = "@@streamed-list:"  # where a list goes in the skeleton; no document value begins with it


def json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    return str(value)


def plain(value: Decimal) -> str:
    """A Decimal as an operator reads it: no trailing zeros and never exponent form (10, not 1E+1)."""
    text = format(value, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def parse_instant(value: str, option: str, zone: ZoneInfo) -> datetime:
    """An ISO date or date-time from the command line; a date or naive time is read in ``zone``.

    Empty text is refused (it never means "now"), and so is a date outside the bounds.
    """
    from dateutil.parser import isoparse

    try:
        parsed = isoparse(value.strip())
    except (ValueError, OverflowError):
        raise InputError(
            f"{option} {shown(value)} is not a date or date-time; use e.g. 2022-11-01 or 2022-11-01T00:00:00Z"
        ) from None
    checked(check_instant, parsed, option)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=zone)
    return parsed.astimezone(UTC)


def parse_day(value: str, option: str) -> date:
    """A calendar date (YYYY-MM-DD) from the command line, within the bounds; empty text is refused."""
    try:
        day = date.fromisoformat(value.strip())
    except ValueError:
        raise InputError(
            f"{option} {shown(value)} is not a date; use YYYY-MM-DD, e.g. {option} 2022-11-01"
        ) from None
    return checked(check_day, day, option)


def amount_argument(value: str, option: str) -> Decimal:
    """An amount from the command line (plain digits, within the bounds)."""
    return checked(parse_amount, value, option)


def text_argument(value: str, option: str, max_length: int) -> str:
    """Text from the command line: stripped, not empty, at most ``max_length``, no control characters."""
    return checked(check_text, value, option, max_length=max_length)


ID = click.IntRange(1, ID_MAX)
"""The click type of a store id argument (outbox row, billing period, subscription)."""
COUNT = click.IntRange(1, COUNT_MAX)
"""The click type of a count (a term in periods, a list's length)."""


def main(argv: list[str] | None = None, *, app_factory: AppFactory | None = None) -> NoReturn:
    """Console entry point: maps errors to exit codes and one clean line on stderr. ``app_factory``
    builds the app from the settings (default :func:`~bridge.bootstrap.build_app`; tests inject edges)."""
    debug = "--debug" in (argv if argv is not None else sys.argv[1:])
    context = Context(app_factory=app_factory)
    try:
        # Outside standalone mode click returns (not raises) the code of a command's Exit.
        returned = cli.main(args=argv, prog_name="billing-bridge", standalone_mode=False, obj=context)
        if isinstance(returned, int) and returned:
            sys.exit(returned)
    except click.exceptions.Exit as done:
        sys.exit(done.exit_code)
    except click.Abort:
        click.echo("aborted", err=True)
        sys.exit(EXIT_FAILURE)
    except click.ClickException as error:  # a usage error: one line naming the argument
        click.echo(f"error: {context.masker.mask_text(error.format_message())}", err=True)
        sys.exit(EXIT_BAD_INPUT)
    except VendorError as error:  # a reply we refuse names its field: bad input from the vendor
        _fail(error, EXIT_BAD_INPUT if error.field else error.exit_code, debug, context.masker)
    except BridgeError as error:
        _fail(error, error.exit_code, debug, context.masker)
    except Exception as error:  # a bug or an unexpected failure: one line, traceback with --debug
        _fail(error, EXIT_FAILURE, debug, context.masker, prefix=f"unexpected {type(error).__name__}: ")
    sys.exit(0)


def _fail(error: BaseException, code: int, debug: bool, masker: SecretMasker, prefix: str = "") -> NoReturn:
    if debug:
        traceback.print_exc()
    click.echo(f"error: {prefix}{masker.mask_text(str(error))}", err=True)
    sys.exit(code)


def writable_path(value: str | None, option: str) -> Path | None:
    """The file an option names: its directory must exist (checked before any work is done)."""
    if value is None:
        return None
    path = Path(text_argument(value, option, 4096))
    if not path.parent.is_dir():
        raise InputError(f"{option} {value}: the directory {path.parent} does not exist; create it first")
    if path.is_dir():
        raise InputError(f"{option} {value} is a directory; name a file, e.g. {option} report.{option[2:]}")
    return path
