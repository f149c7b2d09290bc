"""`simplane`: the operator command line (operations.md §2)."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from typing import Annotated, Any

import typer
from sqlalchemy.exc import SQLAlchemyError
from typer._click.exceptions import NoArgsIsHelpError, UsageError
from typer.core import TyperGroup
from typer.exceptions import Abort, Exit, TyperException

from ..core.config import ConfigError
from ..core.errors import AppError
from ..things.service import InventoryRejected
from . import accounts, demo, emulate, network, server, sims, usage
from .common import EXIT_FAILURE, EXIT_USAGE, CliError, State, one_line


def _database_error(exc: SQLAlchemyError) -> str:
    cause = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    message = cause[0] if cause else type(exc).__name__
    if "no such table" in message or ("relation" in message and "does not exist" in message):
        message += " (has `simplane db upgrade` run against this database?)"
    return f"database error: {message}"


def _failure(exc: BaseException) -> tuple[str, int, dict[str, Any]]:
    """The one line, exit code and JSON details for anything a command can raise."""
    if isinstance(exc, CliError):
        return exc.message, exc.exit_code, exc.details
    if isinstance(exc, TyperException):  # Typer's (vendored Click's) usage and file errors
        message = exc.format_message()
        ctx = getattr(exc, "ctx", None)
        if isinstance(exc, UsageError) and ctx is not None:
            message += f" (see `{ctx.command_path} --help`)"
        return message, exc.exit_code, {}
    if isinstance(exc, ConfigError):
        return str(exc), EXIT_USAGE, {}
    if isinstance(exc, InventoryRejected):
        return sims.rejection("rejected", exc.problems), EXIT_FAILURE, {"problems": exc.problems}
    if isinstance(exc, AppError):
        # 400s are bad input the operator typed; everything else is a refused operation.
        exit_code = EXIT_USAGE if exc.status == 400 else EXIT_FAILURE
        return exc.detail, exit_code, {"code": exc.code}
    if isinstance(exc, SQLAlchemyError):
        return _database_error(exc), EXIT_FAILURE, {}
    if isinstance(exc, Abort | KeyboardInterrupt):
        return "aborted", 130, {}
    if isinstance(exc, OSError):
        return f"{exc.strerror or exc}: {exc.filename}" if exc.filename else str(exc), \
            EXIT_FAILURE, {}
    return f"unexpected {type(exc).__name__}: {exc} (SIMPLANE_CLI_TRACEBACK=1 shows where)", \
        EXIT_FAILURE, {}


class OneLineGroup(TyperGroup):
    """The root group: runs Click without its standalone error printing and reports every
    failure as one line (usage errors included), so scripts and humans get the same contract."""

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None,
             complete_var: str | None = None, standalone_mode: bool = True,
             windows_expand_args: bool = True, **extra: Any) -> Any:
        argv = list(sys.argv[1:] if args is None else args)
        try:
            result = super().main(argv, prog_name, complete_var, standalone_mode=False,
                                  windows_expand_args=windows_expand_args, **extra)
        except Exit as exc:
            result = exc.exit_code
        except NoArgsIsHelpError as exc:
            exc.show()  # the help text itself, as a bare `simplane` or `simplane accounts` asks
            result = exc.exit_code
        except BaseException as exc:  # noqa: BLE001 - every failure becomes one line
            if isinstance(exc, SystemExit):
                raise
            if os.environ.get("SIMPLANE_CLI_TRACEBACK") == "1":
                raise
            message, exit_code, details = _failure(exc)
            message = one_line(message)
            if "--json" in argv:
                line = json.dumps({"error": message, **details})
            else:
                line = f"error: {message}"
            sys.stderr.write(line + "\n")
            sys.stderr.flush()
            result = exit_code
        code = result if isinstance(result, int) else 0
        if standalone_mode:
            sys.exit(code)
        return code


app = typer.Typer(
    cls=OneLineGroup,
    name="simplane",
    help="simplane operator command line: serve the API and RADIUS, manage accounts, SIM "
         "inventory and network credentials, emulate a packet gateway.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@app.callback()
def _root(
    ctx: typer.Context,
    database_url: Annotated[str | None, typer.Option(
        "--database-url", metavar="URL",
        help="Overrides SIMPLANE_DATABASE_URL (sqlite:///path or postgresql://...).")] = None,
) -> None:
    ctx.obj = State(database_url=database_url)


server.register(app)
app.add_typer(server.db_app, name="db")
app.add_typer(accounts.app, name="accounts")
app.add_typer(sims.app, name="sims")
app.add_typer(network.app, name="network-credentials")
emulate.register(app)
demo.register(app)
usage.register(app)


if __name__ == "__main__":  # pragma: no cover
    app()
