"""`simplane demo`: a first look on embedded SQLite, with a ready account and SIMs, the API and
the RADIUS listeners, and the network emulator attaching the ACTIVE SIMs in the background."""

from __future__ import annotations

import json
import os
import secrets
import shlex
from pathlib import Path
from typing import Annotated, Any

import typer
from sqlalchemy import func, select

from ..accounts.service import create_account
from ..core.config import Settings
from ..core.db import Database
from ..core.security import verify_secret
from ..models import Credential, Thing
from ..things.service import OPERATOR, change_state, ship_sims
from ..users import repository as users
from .common import CliError, JsonFlag, out, print_json, state
from .emulate import BackgroundEmulator
from .server import (Host, Port, base_url, check_port_free, check_udp_port_free, migrate,
                     serve_api)
from .sims import fresh_rows

DEMO_FILE = "demo.json"
DEMO_SIMS = 20
DEMO_EMAIL = "demo-admin@example.com"
EMULATOR_RATE = 2.0  # events a second over all the ACTIVE SIMs: gentle enough to follow


def _read_saved(path: Path) -> dict[str, str] | None:
    try:
        saved = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    keys = ("account_id", "user_id", "client_id", "client_secret")
    if not isinstance(saved, dict) or not all(isinstance(saved.get(k), str) for k in keys):
        return None
    return saved


def _still_valid(database: Database, saved: dict[str, str]) -> bool:
    with database.transaction(read_only=True) as session:
        credential = session.scalar(
            select(Credential).where(Credential.client_id == saved["client_id"]))
        return (credential is not None and credential.account_id == saved["account_id"]
                and verify_secret(credential.secret_hash, saved["client_secret"]))


def _write_private(path: Path, data: dict[str, Any]) -> None:
    """Written whole or not at all, readable by its owner only (it holds a client secret)."""
    temporary = path.with_name(path.name + ".tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        json.dump(data, handle, indent=2)
        handle.write("\n")
    os.chmod(temporary, 0o600)
    os.replace(temporary, path)


def _create_demo(database: Database, settings: Settings) -> dict[str, str]:
    with database.transaction() as session:
        email = DEMO_EMAIL
        if users.email_exists(session, email):  # an earlier demo whose demo.json was removed
            email = f"demo-admin-{secrets.token_hex(3)}@example.com"
        created = create_account(session, settings, name="Demo", admin_email=email)
        account_id = created.account.id
        ship_sims(session, account_id, fresh_rows(session, DEMO_SIMS))
        things = session.scalars(select(Thing).where(Thing.account_id == account_id)
                                 .order_by(Thing.id)).all()
        for thing in things[::2]:
            change_state(session, thing, "ACTIVE", OPERATOR)
    return {"account_id": account_id, "user_id": created.admin.id, "admin_email": email,
            "client_id": created.client_id, "client_secret": created.client_secret}


def _sim_states(database: Database, account_id: str) -> dict[str, int]:
    with database.transaction(read_only=True) as session:
        return {state: int(count) for state, count in session.execute(
            select(Thing.state, func.count()).where(Thing.account_id == account_id)
            .group_by(Thing.state).order_by(Thing.state))}


def _curl_lines(url: str, client_id: str, client_secret: str) -> tuple[str, str]:
    token_request = (f"curl -s -u {shlex.quote(client_id + ':' + client_secret)} "
                     f"-d grant_type=client_credentials {url}/v1/oauth2/token")
    extract = "python3 -c 'import json,sys; print(json.load(sys.stdin)[\"access_token\"])'"
    return (f"TOKEN=$({token_request} | {extract})",
            f'curl -s -H "Authorization: Bearer $TOKEN" {url}/v1/things')


def register(app: typer.Typer) -> None:
    @app.command("demo")
    def demo(
        ctx: typer.Context,
        host: Host = "127.0.0.1",
        port: Port = 8080,
        data_dir: Annotated[Path, typer.Option("--data-dir", file_okay=False,
                                               help="Holds the SQLite database, the secret key "
                                                    "and demo.json.")] = Path("./simplane-data"),
        emulate: Annotated[bool, typer.Option(
            "--emulate/--no-emulate",
            help="Run the network emulator against the demo's RADIUS listeners.")] = True,
        json_output: JsonFlag = False,
    ) -> None:
        """Serve a ready demo on SQLite: a "Demo" account with 20 SIMs, half ACTIVE, the API,
        the RADIUS listeners and a network emulator attaching the ACTIVE SIMs (sessions,
        usage, IMEI changes, MO SMS) until Ctrl-C.

        The data folder keeps the database, the secret key and demo.json (the admin
        credentials), so re-running reuses the same account.
        """
        data_dir.mkdir(parents=True, exist_ok=True)
        # The demo is embedded by definition: the data folder, not SIMPLANE_DATABASE_URL.
        settings = state(ctx).settings(
            database_url=f"sqlite:///{(data_dir / 'simplane.db').resolve()}", data_dir=data_dir)
        settings.resolved_secret_key()
        check_port_free(host, port)
        if settings.radius_enabled:
            check_udp_port_free(settings.radius_bind, settings.radius_auth_port,
                                "RADIUS authentication")
            check_udp_port_free(settings.radius_bind, settings.radius_acct_port,
                                "RADIUS accounting")
        emulate = emulate and settings.radius_enabled
        database = Database(settings.database_url, pool_size=4)
        migrate(database)
        demo_file = data_dir / DEMO_FILE
        saved = _read_saved(demo_file)
        reused = saved is not None and _still_valid(database, saved)
        if not reused:
            saved = _create_demo(database, settings)
            _write_private(demo_file, saved)
        assert saved is not None
        url = base_url(host, port)
        token_line, things_line = _curl_lines(url, saved["client_id"], saved["client_secret"])
        states = _sim_states(database, saved["account_id"])
        emulator, no_emulator = None, None
        if emulate:
            try:
                emulator = BackgroundEmulator(settings, database,
                                              account_id=saved["account_id"], api_url=url,
                                              rate=EMULATOR_RATE)
            except CliError as exc:  # e.g. loopback is not a RADIUS client: serve anyway
                no_emulator = exc.message
        radius = {"enabled": settings.radius_enabled, "bind": settings.radius_bind,
                  "auth_port": settings.radius_auth_port,
                  "acct_port": settings.radius_acct_port,
                  "clients": settings.radius_clients}
        info: dict[str, Any] = {
            **saved, "reused": reused, "url": url, "docs": url + "/docs", "sims": states,
            "curl_token": token_line, "curl_things": things_line, "data_dir": str(data_dir),
            "radius": radius, "emulator": None}
        if emulator:
            info["emulator"] = {"rate": EMULATOR_RATE, "things": states.get("ACTIVE", 0)}
        elif no_emulator:
            info["emulator_problem"] = no_emulator
        if json_output:
            print_json(info)
        else:
            summary = ", ".join(f"{count} {name}" for name, count in states.items())
            out.print(f"simplane demo ({'reused' if reused else 'created'} in {data_dir}, "
                      "SQLite)", style="bold")
            out.print(f"  account:       {saved['account_id']} \"Demo\" with "
                      f"{sum(states.values())} SIMs ({summary})")
            out.print(f"  client id:     {saved['client_id']}")
            out.print(f"  client secret: {saved['client_secret']}  (also in {demo_file})")
            out.print(f"  API docs:      {url}/docs")
            if settings.radius_enabled:
                out.print(f"  RADIUS:        {settings.radius_bind} auth "
                          f"{settings.radius_auth_port}, acct {settings.radius_acct_port} "
                          f"(clients {settings.radius_clients})", markup=False)
            if emulator:
                out.print(f"  emulator:      a packet gateway attaching the "
                          f"{states.get('ACTIVE', 0)} ACTIVE SIMs over RADIUS, about "
                          f"{EMULATOR_RATE:g} events/s: sessions, IPs, usage, IMEI changes, "
                          "MO SMS (--no-emulate turns it off)")
            elif no_emulator:
                out.print(f"  emulator:      not running: {no_emulator}", markup=False)
            out.print("Get a token, then list your Things:")
            out.print(f"  {token_line}", markup=False)
            out.print(f"  {things_line}", markup=False)
            out.file.flush()
        if emulator:
            emulator.start()
        try:
            serve_api(settings, database, host=host, port=port, workers=1)
        finally:
            if emulator:
                emulator.stop()
