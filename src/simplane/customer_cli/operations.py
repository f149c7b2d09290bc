"""`simplane-cli sms|bulk|billing|events ...`"""

from __future__ import annotations

import json
import re
import sys
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)

from ..client import BulkAction
from .common import (
    EXIT_REFUSED,
    AllOpt,
    CursorOpt,
    JsonlOpt,
    JsonOpt,
    LimitOpt,
    client,
    emit_list,
    output,
)
from .output import Output, cell, console

sms = typer.Typer(help="SMS to and from Things (M2M only).", no_args_is_help=True)
bulk = typer.Typer(help="Bulk actions over many Things, with progress.", no_args_is_help=True)
billing = typer.Typer(help="Tariff and billing reports.", no_args_is_help=True)
events = typer.Typer(help="The account's event stream.", no_args_is_help=True)

SMS_COLUMNS = [
    ("ID", lambda m: m.id), ("THING", lambda m: m.thing_id), ("DIR", lambda m: m.direction),
    ("STATUS", lambda m: m.status), ("ENCODING", lambda m: m.encoding),
    ("SEGMENTS", lambda m: m.segments),
    ("CONTENT", lambda m: m.text if m.text is not None else f"<binary> {m.data_base64}"),
    ("CREATED", lambda m: m.created_at),
]
BULK_COLUMNS = [
    ("ID", lambda j: j.id), ("ACTION", lambda j: j.action), ("STATUS", lambda j: j.status),
    ("TOTAL", lambda j: j.total), ("PROCESSED", lambda j: j.processed),
    ("SUCCEEDED", lambda j: j.succeeded), ("FAILED", lambda j: j.failed),
    ("CREATED", lambda j: j.created_at),
]
ITEM_COLUMNS = [("THING", lambda i: i.thing_id), ("STATUS", lambda i: i.status),
                ("CODE", lambda i: i.code), ("DETAIL", lambda i: i.detail)]
LINE_COLUMNS = [
    ("THING", lambda x: x.thing_id), ("ICCID", lambda x: x.iccid),
    ("MONTHLY FEE", lambda x: x.monthly_fee), ("DATA MB", lambda x: f"{x.data_bytes / 2**20:.2f}"),
    ("DATA", lambda x: x.data_charge), ("SMS MT", lambda x: x.sms_mt),
    ("SMS MO", lambda x: x.sms_mo), ("SMS", lambda x: x.sms_charge), ("TOTAL", lambda x: x.total),
]
EVENT_COLUMNS = [("TIME", lambda e: e.occurred_at), ("TYPE", lambda e: e.type),
                 ("THING", lambda e: e.thing_id), ("DATA", lambda e: e.data), ("ID", lambda e: e.id)]


# sms ------------------------------------------------------------------------------------------

@sms.command("send")
def send_sms(
    ctx: typer.Context, thing_id: Annotated[str, typer.Argument(help="Thing id.")],
    text: Annotated[str | None, typer.Argument(help="The message text.")] = None,
    data_base64: Annotated[str | None, typer.Option(
        "--binary", help="Binary payload, base64 (instead of TEXT).")] = None,
    encoding: Annotated[str | None, typer.Option(
        "--encoding", help="AUTO (default), GSM7, UCS2 or BINARY.")] = None,
    validity: Annotated[int | None, typer.Option(
        "--validity", help="Seconds to keep trying (60-604800, default 86400).")] = None,
    json_output: JsonOpt = False, jsonl: JsonlOpt = False,
) -> None:
    """Queue an SMS to an ACTIVE Thing (delivered when it is reachable)."""
    if (text is None) == (data_base64 is None):
        raise typer.BadParameter("give either TEXT or --binary")
    message = client(ctx).sms.send(thing_id, text, data_base64=data_base64,
                                   encoding=encoding.upper() if encoding else None,
                                   validity_seconds=validity)
    output(json_output, jsonl).detail(message)


@sms.command("list")
def list_sms(
    ctx: typer.Context,
    thing: Annotated[str | None, typer.Option("--thing", help="Thing id.")] = None,
    direction: Annotated[str | None, typer.Option("--direction", help="MT or MO.")] = None,
    status: Annotated[str | None, typer.Option("--status")] = None,
    limit: LimitOpt = None, cursor: CursorOpt = None, every: AllOpt = False,
    json_output: JsonOpt = False, jsonl: JsonlOpt = False,
) -> None:
    """SMS messages, oldest first."""
    pager = client(ctx).sms.list(thing_id=thing, direction=direction, status=status,
                                 limit=limit, cursor=cursor)
    emit_list(output(json_output, jsonl), pager, SMS_COLUMNS, every, empty="no SMS")


@sms.command("get")
def get_sms(ctx: typer.Context, sms_id: Annotated[str, typer.Argument(help="SMS id.")],
            json_output: JsonOpt = False, jsonl: JsonlOpt = False) -> None:
    """One SMS and its delivery status."""
    output(json_output, jsonl).detail(client(ctx).sms.get(sms_id))


# bulk -----------------------------------------------------------------------------------------

ACTIONS = ("ACTIVATE", "SUSPEND", "RETIRE", "MOVE_TO_GROUP", "ADD_TAGS", "REMOVE_TAGS",
           "SET_SERVICES", "SEND_SMS")


@bulk.command("run")
def run_bulk(
    ctx: typer.Context,
    action: Annotated[str, typer.Argument(help=", ".join(ACTIONS) + ".")],
    tag: Annotated[list[str] | None, typer.Option(
        "--tag", metavar="TAG", help="Target Things with all of these tags (repeatable).")] = None,
    any_tag: Annotated[list[str] | None, typer.Option(
        "--any-tag", metavar="TAG", help="Target Things with any of these tags (repeatable).")] = None,
    group: Annotated[list[str] | None, typer.Option(
        "--group", metavar="GROUP_ID", help="Target the Things of these groups (repeatable).")] = None,
    thing: Annotated[list[str] | None, typer.Option(
        "--thing", metavar="THING_ID", help="Target these Thing ids (repeatable).")] = None,
    state: Annotated[str | None, typer.Option(
        "--state", help="Target Things in this state.")] = None,
    to_group: Annotated[str | None, typer.Option(
        "--to-group", help="MOVE_TO_GROUP: the destination group id.")] = None,
    tags_param: Annotated[list[str] | None, typer.Option(
        "--tags", metavar="TAG", help="ADD_TAGS/REMOVE_TAGS: the tags (repeatable).")] = None,
    data: Annotated[bool | None, typer.Option(
        "--data/--no-data", help="SET_SERVICES: data on or off.")] = None,
    sms_service: Annotated[bool | None, typer.Option(
        "--sms/--no-sms", help="SET_SERVICES: SMS on or off.")] = None,
    text: Annotated[str | None, typer.Option("--text", help="SEND_SMS: the text.")] = None,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Only count the Things it would touch.")] = False,
    wait: Annotated[bool, typer.Option(
        "--wait", help="Show progress until the job finishes.")] = False,
    interval: Annotated[float, typer.Option(
        "--interval", min=0.01, help="Seconds between progress polls.")] = 0.5,
    json_output: JsonOpt = False, jsonl: JsonlOpt = False,
) -> None:
    """Run ACTION over the targeted Things. With --wait the exit code is 1 if any Thing failed."""
    action = action.upper().replace("-", "_")
    if action not in ACTIONS:
        raise typer.BadParameter(f"{action!r} is not one of {', '.join(ACTIONS)}")
    kinds = [k for k, v in (("--tag/--any-tag", tag or any_tag), ("--group", group),
                            ("--thing", thing), ("--state", state)) if v]
    if len(kinds) != 1:
        raise typer.BadParameter("give exactly one target: --tag/--any-tag, --group, "
                                 "--thing or --state")
    params: dict[str, Any] = {}
    if to_group:
        params["things_group_id"] = to_group
    if tags_param:
        params["tags"] = tags_param
    if data is not None:
        params["data"] = data
    if sms_service is not None:
        params["sms"] = sms_service
    if text is not None:
        params["text"] = text
    api = client(ctx)
    job = api.bulk_actions.create(
        action, tags_all=tag or None, tags_any=any_tag or None, things_group_ids=group or None,
        thing_ids=thing or None, filter={"state": state.upper()} if state else None,
        params=params or None, dry_run=dry_run)
    out = output(json_output, jsonl)
    if wait and not job.done:
        job = _wait_with_progress(api, job, interval)
    out.detail(job, [(label.lower(), get) for label, get in BULK_COLUMNS])
    if job.done and job.failed:
        out.note(f"{job.failed} Thing(s) failed: simplane-cli bulk items {job.id} --failed")
    if wait and (job.failed or job.status != "COMPLETED"):
        raise typer.Exit(EXIT_REFUSED)


def _wait_with_progress(api: Any, job: BulkAction, interval: float) -> BulkAction:
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[counts]}"), TimeElapsedColumn())
    with Progress(*columns, console=console(stderr=True)) as progress:
        task = progress.add_task(f"{job.action} {job.id}", total=job.total or None,
                                 counts="")

        def update(current: BulkAction) -> None:
            progress.update(task, total=max(current.total, 1), completed=current.processed,
                            counts=f"{current.status} ok {current.succeeded} "
                                   f"failed {current.failed}")

        return api.bulk_actions.wait(job.id, poll_interval=interval, progress=update)


@bulk.command("get")
def get_bulk(ctx: typer.Context, job_id: Annotated[str, typer.Argument(help="Job id.")],
             json_output: JsonOpt = False, jsonl: JsonlOpt = False) -> None:
    """One bulk action and its counts."""
    output(json_output, jsonl).detail(client(ctx).bulk_actions.get(job_id),
                                      [(label.lower(), get) for label, get in BULK_COLUMNS])


@bulk.command("list")
def list_bulk(ctx: typer.Context, limit: LimitOpt = None, cursor: CursorOpt = None,
              every: AllOpt = False, json_output: JsonOpt = False,
              jsonl: JsonlOpt = False) -> None:
    """Bulk actions, oldest first."""
    emit_list(output(json_output, jsonl),
              client(ctx).bulk_actions.list(limit=limit, cursor=cursor), BULK_COLUMNS, every,
              empty="no bulk actions")


@bulk.command("items")
def bulk_items(ctx: typer.Context, job_id: Annotated[str, typer.Argument(help="Job id.")],
               failed: Annotated[bool, typer.Option("--failed", help="Only failures.")] = False,
               limit: LimitOpt = None, cursor: CursorOpt = None, every: AllOpt = False,
               json_output: JsonOpt = False, jsonl: JsonlOpt = False) -> None:
    """Per-Thing outcomes of a bulk action."""
    pager = client(ctx).bulk_actions.items(job_id, status="FAILED" if failed else None,
                                           limit=limit, cursor=cursor)
    emit_list(output(json_output, jsonl), pager, ITEM_COLUMNS, every, empty="no items")


@bulk.command("cancel")
def cancel_bulk(ctx: typer.Context, job_id: Annotated[str, typer.Argument(help="Job id.")],
                json_output: JsonOpt = False, jsonl: JsonlOpt = False) -> None:
    """Stop a queued or running bulk action (Things already done stay done)."""
    output(json_output, jsonl).detail(client(ctx).bulk_actions.cancel(job_id),
                                      [(label.lower(), get) for label, get in BULK_COLUMNS])


# billing --------------------------------------------------------------------------------------

@billing.command("report")
def report(
    ctx: typer.Context,
    period: Annotated[str | None, typer.Option(
        "--period", help="YYYY-MM (default: the open cycle).")] = None,
    thing: Annotated[str | None, typer.Option("--thing", help="Only this Thing.")] = None,
    group: Annotated[str | None, typer.Option("--group", help="Only this group.")] = None,
    tag: Annotated[str | None, typer.Option("--tag", help="Only Things with this tag.")] = None,
    csv: Annotated[bool, typer.Option("--csv", help="Every line as CSV.")] = False,
    limit: LimitOpt = None, cursor: CursorOpt = None, every: AllOpt = False,
    json_output: JsonOpt = False, jsonl: JsonlOpt = False,
) -> None:
    """A billing report: totals and a line per Thing."""
    if period is not None and not re.fullmatch(r"\d{4}-\d{2}", period):
        raise typer.BadParameter(f"{period!r} is not YYYY-MM", param_hint="--period")
    api = client(ctx)
    if csv:
        output(False, False).text(api.billing.report_csv(
            period, thing_id=thing, things_group_id=group, tag=tag))
        return
    found = api.billing.report(period, thing_id=thing, things_group_id=group, tag=tag,
                               limit=limit, cursor=cursor)
    out = output(json_output, jsonl)
    lines: Any = found.lines.items
    if every and found.lines.next_cursor:
        lines = list(api.billing.lines(found.period, thing_id=thing, things_group_id=group,
                                       tag=tag, limit=limit, cursor=cursor))
    if out.structured:
        whole = found.model_dump(mode="json")
        if every:
            whole["lines"] = {"items": [x.model_dump(mode="json") for x in lines],
                              "next_cursor": None}
        out.detail(whole)
        return
    totals = found.totals
    out.detail(found, [
        ("period", lambda r: f"{r.period} ({r.status})"),
        ("currency", lambda r: r.currency),
        ("things charged", lambda r: totals.things_charged),
        ("monthly fees", lambda r: totals.monthly_fees),
        ("data", lambda r: f"{totals.data_bytes / 2**20:.2f} MB: {totals.data_charges}"),
        ("sms", lambda r: f"{totals.sms_mt} MT, {totals.sms_mo} MO: {totals.sms_charges}"),
        ("total", lambda r: f"{totals.total} {r.currency}"),
    ])
    out.items(lines, LINE_COLUMNS, empty="no lines")
    if not every and found.lines.next_cursor:
        out.note(f"more lines: --cursor {found.lines.next_cursor} (or --all, or --csv)")


@billing.command("tariff")
def tariff(ctx: typer.Context, json_output: JsonOpt = False, jsonl: JsonlOpt = False) -> None:
    """The account's tariff (and the next one, if set)."""
    output(json_output, jsonl).detail(client(ctx).billing.tariff())


# events ---------------------------------------------------------------------------------------

def _since(value: str | None) -> datetime | str | None:
    if value is None:
        return None
    relative = re.fullmatch(r"(\d+)([smhd])", value.strip())
    if relative:
        seconds = int(relative[1]) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[relative[2]]
        return datetime.now(UTC) - timedelta(seconds=seconds)
    try:
        datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is neither RFC 3339 nor like 15m, 2h, 7d",
                                 param_hint="--since") from None
    return value


def _event_line(out: Output, event: Any) -> None:
    if out.structured:
        sys.stdout.write(json.dumps(event.model_dump(mode="json"), separators=(",", ":")) + "\n")
    else:
        sys.stdout.write("  ".join([cell(event.occurred_at), event.type,
                                    event.thing_id or "-", cell(event.data)]) + "\n")
    sys.stdout.flush()


@events.command("tail")
def tail(
    ctx: typer.Context,
    follow: Annotated[bool, typer.Option(
        "--follow", "-f", help="Keep waiting for new events (Ctrl-C ends).")] = False,
    event_type: Annotated[str | None, typer.Option("--type", help="e.g. thing.attached.")] = None,
    thing: Annotated[str | None, typer.Option("--thing", help="Thing id.")] = None,
    since: Annotated[str | None, typer.Option(
        "--since", help="RFC 3339 time or an age like 15m, 2h, 7d (default 1h).")] = "1h",
    count: Annotated[int | None, typer.Option(
        "--count", "-n", min=1, help="Stop after this many events.")] = None,
    interval: Annotated[float, typer.Option(
        "--interval", min=0.05, help="Seconds between polls when following.")] = 2.0,
    json_output: JsonOpt = False, jsonl: JsonlOpt = False,
) -> None:
    """Recent events, oldest first; with --follow, new ones as they happen (as JSON Lines
    when --json/--jsonl)."""
    api = client(ctx)
    out = output(json_output, jsonl)
    start = _since(since)
    if not follow:
        stream: Any = api.events.list(type=event_type, thing_id=thing, since=start, limit=200)
        if count is not None:
            stream = (e for _, e in zip(range(count), stream, strict=False))
        out.items(stream, EVENT_COLUMNS, empty="no events")
        return
    seen = 0
    try:
        for event in api.events.follow(type=event_type, thing_id=thing, since=start,
                                       poll_interval=interval):
            _event_line(out, event)
            seen += 1
            if count is not None and seen >= count:
                return
    except KeyboardInterrupt:
        return


def register(app: typer.Typer) -> None:
    app.add_typer(sms, name="sms")
    app.add_typer(bulk, name="bulk")
    app.add_typer(billing, name="billing")
    app.add_typer(events, name="events")
