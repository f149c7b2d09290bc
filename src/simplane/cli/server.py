"""`simplane serve` and `simplane db upgrade`."""

from __future__ import annotations

import os
import socket
from typing import Annotated

import typer
import uvicorn
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine

from ..core.config import Settings
from ..core.db import Database
from ..core.migrate import upgrade
from .common import CliError, JsonFlag, open_database, out, print_json, state

db_app = typer.Typer(help="Database schema management.", no_args_is_help=True)

FACTORY = "simplane.app:app_from_environment"

Host = Annotated[str, typer.Option("--host", help="Address to listen on.")]
Port = Annotated[int, typer.Option("--port", min=1, max=65535, help="TCP port of the API.")]


def _revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def migrate(database: Database) -> tuple[str | None, str | None]:
    """Apply pending migrations; the revisions before and after."""
    before = _revision(database.engine)
    upgrade(database.engine)
    return before, _revision(database.engine)


def safe_url(database: Database) -> str:
    return database.engine.url.render_as_string(hide_password=True)


def check_port_free(host: str, port: int) -> None:
    """Fail with one line before any work when the port is taken (uvicorn would log and exit
    only after the database work is done)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise CliError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None


def check_udp_port_free(host: str, port: int, what: str) -> None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise CliError(f"cannot listen for {what} on UDP {host}:{port}: "
                           f"{exc.strerror or exc}") from None


def base_url(host: str, port: int) -> str:
    """Where a client on this machine reaches the server (wildcard binds mean loopback)."""
    shown = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)
    return f"http://[{shown}]:{port}" if ":" in shown else f"http://{shown}:{port}"


def serve_api(settings: Settings, database: Database | None, *, host: str, port: int,
              workers: int) -> None:
    """Run uvicorn until it is told to stop. Several workers each build their app from the
    environment, so the settings that matter are exported as SIMPLANE_* first."""
    log_level = settings.log_level.lower()
    # The app logs every request itself (JSON, with its request id); no second access log.
    if workers == 1:
        from ..app import create_app
        from ..core.logging import trim_records_for_serving

        trim_records_for_serving()

        uvicorn.run(create_app(settings, database), host=host, port=port, log_level=log_level,
                    access_log=False)
        return
    os.environ["SIMPLANE_DATABASE_URL"] = settings.database_url
    os.environ["SIMPLANE_DATA_DIR"] = str(settings.data_dir.resolve())
    uvicorn.run(FACTORY, factory=True, host=host, port=port, workers=workers,
                log_level=log_level, access_log=False)


def register(app: typer.Typer) -> None:
    @app.command("serve")
    def serve(
        ctx: typer.Context,
        host: Host = "127.0.0.1",
        port: Port = 8080,
        workers: Annotated[int, typer.Option("--workers", min=1, max=64,
                                             help="API processes sharing the port.")] = 1,
        json_output: JsonFlag = False,
    ) -> None:
        """Apply pending migrations, then serve the API."""
        settings = state(ctx).settings()
        # Resolved once here: workers then all read the same key instead of racing to
        # generate one in the data folder.
        settings.resolved_secret_key()
        check_port_free(host, port)
        with open_database(settings) as database:
            before, after = migrate(database)
            url = safe_url(database)
        info = {"url": base_url(host, port), "docs": base_url(host, port) + "/docs",
                "workers": workers, "database": url, "revision": after,
                "migrated_from": before}
        if json_output:
            print_json(info)
        else:
            applied = "" if before == after else f" (migrated from {before or 'empty'})"
            out.print(f"simplane API on {info['url']} with {workers} worker(s); docs at "
                      f"{info['docs']}; database {url} at revision {after}{applied}")
        serve_api(settings, None, host=host, port=port, workers=workers)


@db_app.command("upgrade")
def db_upgrade(ctx: typer.Context, json_output: JsonFlag = False) -> None:
    """Apply pending migrations (Alembic) to the configured database."""
    settings = state(ctx).settings()
    with open_database(settings) as database:
        before, after = migrate(database)
        url = safe_url(database)
    if json_output:
        print_json({"database": url, "revision": after, "migrated_from": before,
                    "changed": before != after})
    elif before == after:
        out.print(f"{url} is already at revision {after}.")
    else:
        out.print(f"{url} upgraded from {before or 'empty'} to revision {after}.")
