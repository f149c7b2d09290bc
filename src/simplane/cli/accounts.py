"""`simplane accounts create|list|set-tariff|extend-ip`."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text
from sqlalchemy import func, select

from ..accounts import repository
from ..accounts import service as accounts
from ..models import Account, Thing
from .common import CliError, JsonFlag, format_amount, open_database, out, \
    amount_parser, print_json, state

app = typer.Typer(help="Create, inspect, re-price and extend customer accounts.",
                  no_args_is_help=True)

TARIFF_FIELDS = ("currency", "monthly_fee", "price_per_mb", "price_per_sms_mt", "price_per_sms_mo")


def _amount(flag: str, help_text: str) -> Any:
    return typer.Option(flag, parser=amount_parser(flag), metavar="AMOUNT", help=help_text,
                        show_default=False)


MonthlyFee = Annotated[Decimal | None, _amount("--monthly-fee", "Per active SIM per month.")]
PricePerMb = Annotated[Decimal | None, _amount("--price-per-mb", "Per MB of data.")]
PricePerSmsMt = Annotated[Decimal | None, _amount("--price-per-sms-mt", "Per SMS sent to a SIM.")]
PricePerSmsMo = Annotated[Decimal | None, _amount("--price-per-sms-mo", "Per SMS sent by a SIM.")]
Currency = Annotated[str | None, typer.Option("--currency", help="ISO 4217 code, e.g. EUR.",
                                              show_default=False)]


def _tariff_json(account: Account) -> dict[str, str]:
    return {name: (value if isinstance(value := getattr(account, name), str)
                   else format_amount(value)) for name in TARIFF_FIELDS}


@app.command("create")
def create(
    ctx: typer.Context,
    name: Annotated[str, typer.Option("--name", help="The customer's name.")],
    admin_email: Annotated[str, typer.Option("--admin-email", help="The first admin user.")],
    ip_allocation: Annotated[str | None, typer.Option(
        "--ip-allocation", metavar="CIDR",
        help="The account's IP space; default: the next free block of SIMPLANE_ACCOUNT_IP_SPACE.")
    ] = None,
    currency: Annotated[str, typer.Option("--currency", help="ISO 4217 code.")] = "EUR",
    monthly_fee: MonthlyFee = None,
    price_per_mb: PricePerMb = None,
    price_per_sms_mt: PricePerSmsMt = None,
    price_per_sms_mo: PricePerSmsMo = None,
    json_output: JsonFlag = False,
) -> None:
    """Create an account: default Network and pool, IP Profile, Things Group, tariff, and an
    admin user with one credential (its secret is shown once)."""
    settings = state(ctx).settings()
    zero = Decimal("0")
    tariff = accounts.Tariff(currency=currency, monthly_fee=monthly_fee or zero,
                             price_per_mb=price_per_mb or zero,
                             price_per_sms_mt=price_per_sms_mt or zero,
                             price_per_sms_mo=price_per_sms_mo or zero)
    with open_database(settings) as database, database.transaction() as session:
        created = accounts.create_account(session, settings, name=name, admin_email=admin_email,
                                          ip_allocation=ip_allocation, tariff=tariff)
        allocation = repository.allocations(session, created.account.id)[0].cidr
    result = {"account_id": created.account.id, "user_id": created.admin.id,
              "client_id": created.client_id, "client_secret": created.client_secret}
    if json_output:
        print_json(result)
        return
    out.print(f"Created account {created.account.id} ({created.account.name}) with IP "
              f"allocation {allocation}.")
    out.print(f"Admin user:    {created.admin.id} <{created.admin.email}>")
    out.print(f"Client id:     {created.client_id}")
    out.print(f"Client secret: {created.client_secret}")
    out.print("The secret is shown only this once; store it now.", style="yellow")


@app.command("list")
def list_(ctx: typer.Context, json_output: JsonFlag = False) -> None:
    """List every account with its tariff, IP allocations and number of SIMs."""
    settings = state(ctx).settings()
    with open_database(settings) as database, database.transaction(read_only=True) as session:
        things = dict(session.execute(
            select(Thing.account_id, func.count()).group_by(Thing.account_id)).all())
        rows = [{
            "id": account.id, "name": account.name, "created_at": account.created_at,
            **_tariff_json(account),
            "ip_allocations": [a.cidr for a in repository.allocations(session, account.id)],
            "things": int(things.get(account.id, 0)),
        } for account in accounts.list_accounts(session)]
    if json_output:
        print_json(rows)
        return
    if not rows:
        out.print("No accounts yet; create one with `simplane accounts create`.")
        return
    table = Table(title=f"{len(rows)} account(s)")
    table.add_column("id", no_wrap=True, min_width=max(len(row["id"]) for row in rows))
    table.add_column("name")
    table.add_column("currency")
    for column in ("monthly fee", "per MB", "per SMS MT", "per SMS MO"):
        table.add_column(column, justify="right")
    table.add_column("IP allocations", overflow="fold")
    table.add_column("SIMs", justify="right")
    for row in rows:
        table.add_row(*(Text(str(v)) for v in (
            row["id"], row["name"], row["currency"], row["monthly_fee"], row["price_per_mb"],
            row["price_per_sms_mt"], row["price_per_sms_mo"], ", ".join(row["ip_allocations"]),
            row["things"])))
    # Piped output is not cut to 80 columns: ids must stay whole for scripts and logs.
    (out if out.is_terminal else Console(highlight=False, width=200)).print(table)


@app.command("set-tariff")
def set_tariff(
    ctx: typer.Context,
    account_id: Annotated[str, typer.Argument(metavar="ID", help="The account id.")],
    currency: Currency = None,
    monthly_fee: MonthlyFee = None,
    price_per_mb: PricePerMb = None,
    price_per_sms_mt: PricePerSmsMt = None,
    price_per_sms_mo: PricePerSmsMo = None,
    json_output: JsonFlag = False,
) -> None:
    """Re-price an account; prices not given stay as they are."""
    changes = {"currency": currency, "monthly_fee": monthly_fee, "price_per_mb": price_per_mb,
               "price_per_sms_mt": price_per_sms_mt, "price_per_sms_mo": price_per_sms_mo}
    if all(value is None for value in changes.values()):
        raise CliError("nothing to change: give at least one of --currency, --monthly-fee, "
                       "--price-per-mb, --price-per-sms-mt, --price-per-sms-mo", 2)
    settings = state(ctx).settings()
    with open_database(settings) as database, database.transaction() as session:
        account = accounts.set_tariff(session, account_id, **changes)
        result = {"account_id": account.id, **_tariff_json(account)}
    if json_output:
        print_json(result)
        return
    out.print(f"Tariff of {account_id}: " + ", ".join(
        f"{name.replace('_', ' ')} {value}" for name, value in result.items()
        if name != "account_id"))


@app.command("extend-ip")
def extend_ip(
    ctx: typer.Context,
    account_id: Annotated[str, typer.Argument(metavar="ID", help="The account id.")],
    cidr: Annotated[str, typer.Option("--cidr", help="The extra IPv4 block, e.g. 10.200.0.0/16.")],
    json_output: JsonFlag = False,
) -> None:
    """Grant an account an extra block of IP space (it must not overlap any granted block)."""
    settings = state(ctx).settings()
    with open_database(settings) as database, database.transaction() as session:
        allocation = accounts.extend_ip(session, settings, account_id, cidr)
        result = {"account_id": account_id, "allocation_id": allocation.id,
                  "cidr": allocation.cidr,
                  "ip_allocations": [a.cidr for a in repository.allocations(session, account_id)]}
    if json_output:
        print_json(result)
        return
    out.print(f"Granted {result['cidr']} to {account_id}; its allocations are now "
              f"{', '.join(result['ip_allocations'])}.")
