"""`simplane-cli things ...`"""

from __future__ import annotations

from typing import Annotated

import typer

from ..client import Thing
from .common import (
    AllOpt,
    CursorOpt,
    JsonlOpt,
    JsonOpt,
    LimitOpt,
    client,
    emit_list,
    output,
)

app = typer.Typer(help="SIMs/devices: list, inspect, activate, suspend, retire, tag.",
                  no_args_is_help=True)

COLUMNS = [
    ("ID", lambda t: t.id),
    ("ICCID", lambda t: t.iccid),
    ("NAME", lambda t: t.name),
    ("STATE", lambda t: t.state),
    ("GROUP", lambda t: t.things_group_id),
    ("IP", lambda t: (t.ip_address + (" (locked)" if t.ip_locked else ""))
     if t.ip_address else None),
    ("CONNECTION", lambda t: t.connection.status),
    ("TAGS", lambda t: t.tags),
]

DETAIL = [
    ("id", lambda t: t.id), ("iccid", lambda t: t.iccid), ("imsi", lambda t: t.imsi),
    ("name", lambda t: t.name), ("state", lambda t: t.state),
    ("group", lambda t: t.things_group_id), ("tags", lambda t: t.tags),
    ("services", lambda t: f"data={'on' if t.services.data else 'off'} "
                           f"sms={'on' if t.services.sms else 'off'}"),
    ("imei", lambda t: t.imei), ("imei lock", lambda t: t.imei_lock),
    ("ip address", lambda t: t.ip_address), ("ip locked", lambda t: t.ip_locked),
    ("connection", lambda t: t.connection.status),
    ("since", lambda t: t.connection.since), ("rat", lambda t: t.connection.rat),
    ("operator", lambda t: t.connection.operator),
    ("country", lambda t: t.connection.country),
    ("created", lambda t: t.created_at), ("activated", lambda t: t.activated_at),
]

Ids = Annotated[list[str], typer.Argument(help="Thing ids (thg_...).", show_default=False)]


def show(out, thing: Thing) -> None:  # type: ignore[no-untyped-def]
    out.detail(thing, DETAIL)


@app.command("list")
def list_things(
    ctx: typer.Context,
    state: Annotated[str | None, typer.Option(
        "--state", help="PROVISIONED, ACTIVE, SUSPENDED or RETIRED.")] = None,
    group: Annotated[str | None, typer.Option("--group", help="Things Group id.")] = None,
    tag: Annotated[list[str] | None, typer.Option(
        "--tag", metavar="TAG", help="Only Things with this tag (repeat: all of them).")] = None,
    iccid: Annotated[str | None, typer.Option("--iccid")] = None,
    imsi: Annotated[str | None, typer.Option("--imsi")] = None,
    imei: Annotated[str | None, typer.Option("--imei")] = None,
    ip_address: Annotated[str | None, typer.Option("--ip")] = None,
    connection: Annotated[str | None, typer.Option(
        "--connection", help="ATTACHED, DETACHED or NEVER.")] = None,
    limit: LimitOpt = None, cursor: CursorOpt = None, every: AllOpt = False,
    json_output: JsonOpt = False, jsonl: JsonlOpt = False,
) -> None:
    """Things matching every filter given."""
    pager = client(ctx).things.list(
        state=state, things_group_id=group, tag=tag, iccid=iccid, imsi=imsi, imei=imei,
        ip_address=ip_address, connection_status=connection, limit=limit, cursor=cursor)
    emit_list(output(json_output, jsonl), pager, COLUMNS, every, empty="no Things")


@app.command()
def get(ctx: typer.Context,
        thing: Annotated[str, typer.Argument(help="Thing id, or an ICCID.")],
        json_output: JsonOpt = False, jsonl: JsonlOpt = False) -> None:
    """One Thing (by id, or by ICCID: 19-20 digits)."""
    api = client(ctx)
    found = api.things.lookup(iccid=thing) if thing.isdigit() else api.things.get(thing)
    show(output(json_output, jsonl), found)


@app.command()
def lookup(
    ctx: typer.Context,
    iccid: Annotated[str | None, typer.Option("--iccid")] = None,
    imsi: Annotated[str | None, typer.Option("--imsi")] = None,
    imei: Annotated[str | None, typer.Option("--imei")] = None,
    ip_address: Annotated[str | None, typer.Option("--ip")] = None,
    json_output: JsonOpt = False, jsonl: JsonlOpt = False,
) -> None:
    """The Thing with an identifier (exit code 4 when there is none)."""
    if sum(v is not None for v in (iccid, imsi, imei, ip_address)) != 1:
        raise typer.BadParameter("give exactly one of --iccid, --imsi, --imei, --ip")
    show(output(json_output, jsonl), client(ctx).things.lookup(
        iccid=iccid, imsi=imsi, imei=imei, ip_address=ip_address))


def _transition(ctx: typer.Context, ids: list[str], state: str, json_output: bool,
                jsonl: bool) -> None:
    api = client(ctx)
    out = output(json_output, jsonl)
    done = [api.things.update(thing_id, state=state) for thing_id in ids]
    out.items(done, COLUMNS)


@app.command()
def activate(ctx: typer.Context, ids: Ids, json_output: JsonOpt = False,
             jsonl: JsonlOpt = False) -> None:
    """Make Things ACTIVE (from PROVISIONED or SUSPENDED)."""
    _transition(ctx, ids, "ACTIVE", json_output, jsonl)


@app.command()
def suspend(ctx: typer.Context, ids: Ids, json_output: JsonOpt = False,
            jsonl: JsonlOpt = False) -> None:
    """Suspend ACTIVE Things (their data session ends)."""
    _transition(ctx, ids, "SUSPENDED", json_output, jsonl)


@app.command()
def retire(ctx: typer.Context, ids: Ids,
           yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask.")] = False,
           json_output: JsonOpt = False, jsonl: JsonlOpt = False) -> None:
    """Retire Things for good (terminal: IP lock and NAT rules are released)."""
    if not yes:
        typer.confirm(f"Retire {len(ids)} Thing(s)? This cannot be undone", abort=True)
    _transition(ctx, ids, "RETIRED", json_output, jsonl)


@app.command()
def tag(
    ctx: typer.Context,
    thing_id: Annotated[str, typer.Argument(help="Thing id.")],
    tags: Annotated[list[str], typer.Argument(help="Tags.", show_default=False)],
    remove: Annotated[bool, typer.Option("--remove", help="Remove these tags.")] = False,
    replace: Annotated[bool, typer.Option(
        "--replace", help="Set exactly these tags.")] = False,
    json_output: JsonOpt = False, jsonl: JsonlOpt = False,
) -> None:
    """Add tags to a Thing (or --remove them, or --replace all its tags)."""
    if remove and replace:
        raise typer.BadParameter("--remove and --replace exclude each other")
    things = client(ctx).things
    if replace:
        result = things.set_tags(thing_id, tags)
    elif remove:
        result = things.remove_tags(thing_id, tags)
    else:
        result = things.add_tags(thing_id, tags)
    show(output(json_output, jsonl), result)


@app.command("lock-ip")
def lock_ip(ctx: typer.Context, thing_id: Annotated[str, typer.Argument(help="Thing id.")],
            ip_address: Annotated[str | None, typer.Option(
                "--ip", help="The address to lock (default: its current or a free one).")] = None,
            json_output: JsonOpt = False, jsonl: JsonlOpt = False) -> None:
    """Pin a Thing's IP address (needed for NAT port forwarding)."""
    show(output(json_output, jsonl), client(ctx).things.lock_ip(thing_id, ip_address))


@app.command("unlock-ip")
def unlock_ip(ctx: typer.Context, thing_id: Annotated[str, typer.Argument(help="Thing id.")],
              json_output: JsonOpt = False, jsonl: JsonlOpt = False) -> None:
    """Release a Thing's locked IP address."""
    show(output(json_output, jsonl), client(ctx).things.unlock_ip(thing_id))


@app.command()
def move(ctx: typer.Context, thing_id: Annotated[str, typer.Argument(help="Thing id.")],
         group: Annotated[str, typer.Option("--group", help="Things Group id.")],
         json_output: JsonOpt = False, jsonl: JsonlOpt = False) -> None:
    """Move a Thing to another Things Group (its Network and IP Profile come with it)."""
    show(output(json_output, jsonl), client(ctx).things.move(thing_id, group))
