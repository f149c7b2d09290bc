"""What every command shares: settings, the database, output (Rich or JSON) and errors.

Errors never show a traceback: the root group (`main.OneLineGroup`) turns every failure into
one line on stderr (a JSON object with `--json`) and a non-zero exit code.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ..core.config import Settings, load_settings
from ..core.db import Database

EXIT_FAILURE = 1
EXIT_USAGE = 2  # bad flags, bad values, bad configuration: nothing was changed


class CliError(Exception):
    """A failure the operator can act on; `details` go into the JSON form only."""

    def __init__(self, message: str, exit_code: int = EXIT_FAILURE,
                 details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code
        self.details = details or {}


@dataclass
class State:
    """Global options, kept on the root context's `obj`."""

    database_url: str | None = None

    def settings(self, **overrides: object) -> Settings:
        if self.database_url is not None and "database_url" not in overrides:
            overrides["database_url"] = self.database_url
        return load_settings(**overrides)


def state(ctx: typer.Context) -> State:
    root = ctx.find_root()
    if not isinstance(root.obj, State):
        root.obj = State()
    return root.obj


@contextmanager
def open_database(settings: Settings) -> Iterator[Database]:
    database = Database(settings.database_url, pool_size=2)
    try:
        yield database
    finally:
        database.dispose()


JsonFlag = Annotated[bool, typer.Option("--json", help="Machine-readable output on stdout.")]

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False)


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, default=_json_default) + "\n")
    sys.stdout.flush()


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return format_amount(value)
    if hasattr(value, "isoformat"):
        return value.isoformat().replace("+00:00", "Z")
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def format_amount(value: Decimal) -> str:
    """A money column as the operator typed it: no trailing zeros, never exponent notation."""
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text or "0"


def progress(enabled: bool) -> Progress:
    """A progress bar on stderr, only for humans at a terminal (never mixed into --json)."""
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), console=err, transient=True,
                    disable=not enabled or not err.is_terminal)


def amount_parser(flag: str) -> Callable[[Any], Decimal]:
    return lambda value: parse_amount(value, flag)


def parse_amount(value: Any, flag: str) -> Decimal:
    """A non-negative money amount that fits the database column (18 digits, 6 decimals).

    Raises BadParameter (not ValueError, which Typer would report without the reason).
    """
    if isinstance(value, Decimal):
        return value
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        raise typer.BadParameter(f"{value!r} is not a decimal amount such as 0.25",
                                  param_hint=f"'{flag}'") from None
    problem = None
    exponent = amount.normalize().as_tuple().exponent if amount.is_finite() else 0
    if not amount.is_finite():
        problem = "is not a finite amount"
    elif amount < 0:
        problem = "must not be negative"
    elif isinstance(exponent, int) and exponent < -6:
        problem = "has more than 6 decimal places"
    elif amount.adjusted() >= 12:
        problem = "is too large (at most 12 digits before the point)"
    if problem:
        raise typer.BadParameter(f"{value!r} {problem}", param_hint=f"'{flag}'")
    return amount if amount else Decimal(0)  # "-0" and "0.00" are plain 0


def one_line(text: str) -> str:
    return " ".join(str(text).split())
