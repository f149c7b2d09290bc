"""`simplane network-credentials create`: platform-level credentials for `/v1/network/*`."""

from __future__ import annotations

from typing import Annotated

import typer

from .common import EXIT_USAGE, CliError, JsonFlag, open_database, out, print_json, state

app = typer.Typer(help="Credentials of the network side (SMSC links, mediation), which reach "
                       "only /v1/network/*.", no_args_is_help=True)


@app.command("create")
def create(
    ctx: typer.Context,
    name: Annotated[str, typer.Option("--name", help="Who uses it, e.g. \"smsc-link-1\".")],
    json_output: JsonFlag = False,
) -> None:
    """Create a network credential; its secret is shown only this once."""
    from ..users.service import create_network_credential

    name = name.strip()
    if not name or len(name) > 200:
        raise CliError("--name must be 1 to 200 characters", EXIT_USAGE)
    settings = state(ctx).settings()
    with open_database(settings) as database, database.transaction() as session:
        client_id, client_secret = create_network_credential(session, name)
    if json_output:
        print_json({"client_id": client_id, "client_secret": client_secret})
        return
    out.print(f"Created network credential \"{name}\" (reaches only /v1/network/*).",
              markup=False)
    out.print(f"Client id:     {client_id}")
    out.print(f"Client secret: {client_secret}")
    out.print("The secret is shown only this once; store it now.", style="yellow")
