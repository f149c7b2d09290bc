"""`simplane sims import|generate`: shipping SIM inventory into an account."""

from __future__ import annotations

import csv
import re
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..accounts.service import require_account
from ..core.db import Database
from ..models import Thing
from ..things import repository
from ..things.identifiers import random_iccid, random_imsi
from ..things.service import InventoryRejected, SimRow, check_inventory, ship_sims
from .common import CliError, JsonFlag, open_database, out, print_json, progress, state

app = typer.Typer(help="Ship SIM inventory (PROVISIONED, into the default group).",
                  no_args_is_help=True)

BATCH = 5000
GENERATE_ATTEMPTS = 5
HEADER = ["iccid", "imsi"]
MAX_PROBLEMS_SHOWN = 50

AccountOption = Annotated[str, typer.Option("--account", metavar="ID", help="The account id.")]


def read_inventory(path: Path) -> tuple[list[SimRow], list[str]]:
    """The rows of an `iccid,imsi` CSV and the problems of rows that are not two fields.

    Line numbers are the file's: the header is line 1, the first SIM line 2.
    """
    rows: list[SimRow] = []
    problems: list[str] = []
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle)
            header = next(reader, None)
            if header is None:
                raise CliError(f"{path} is empty; its first line must be the header iccid,imsi")
            if [field.strip().lower() for field in header] != HEADER:
                raise CliError(f"{path}: line 1 must be the header iccid,imsi "
                               f"(found {','.join(header)!r})")
            for row in reader:
                if not any(field.strip() for field in row):
                    continue
                if len(row) != 2:
                    problems.append(f"line {reader.line_num}: expected 2 fields (iccid,imsi), "
                                    f"found {len(row)}")
                    continue
                rows.append(SimRow(reader.line_num, row[0].strip(), row[1].strip()))
    except UnicodeDecodeError as exc:
        raise CliError(f"{path} is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except csv.Error as exc:
        raise CliError(f"{path} is not a valid CSV file: {exc}") from None
    if not rows and not problems:
        raise CliError(f"{path} has no SIM lines after the header")
    return rows, problems


def rejection(prefix: str, problems: list[str]) -> str:
    shown = "; ".join(problems[:MAX_PROBLEMS_SHOWN])
    if len(problems) > MAX_PROBLEMS_SHOWN:
        shown += f"; ... and {len(problems) - MAX_PROBLEMS_SHOWN} more (--json lists them all)"
    return f"{prefix}, nothing imported: {len(problems)} problem(s): {shown}"


def _line_of(problem: str) -> int:
    match = re.match(r"line (\d+)", problem)
    return int(match.group(1)) if match else 0


@app.command("import")
def import_(
    ctx: typer.Context,
    account_id: AccountOption,
    file: Annotated[Path, typer.Argument(metavar="FILE.csv", exists=True, dir_okay=False,
                                         readable=True, help="CSV with the header iccid,imsi.")],
    json_output: JsonFlag = False,
) -> None:
    """Import every SIM of FILE.csv, or none: each invalid or duplicate line is named."""
    settings = state(ctx).settings()
    rows, problems = read_inventory(file)
    with open_database(settings) as database, database.transaction() as session:
        require_account(session, account_id)
        problems = sorted(problems + check_inventory(session, rows), key=_line_of)
        if problems:
            raise CliError(rejection(f"{file} rejected", problems), details={"problems": problems})
        with progress(not json_output) as bar:
            task = bar.add_task(f"Importing {file.name}", total=len(rows))
            # One transaction: a failure part-way still leaves the database as it was.
            for start in range(0, len(rows), BATCH):
                chunk = rows[start:start + BATCH]
                ship_sims(session, account_id, chunk)
                bar.advance(task, len(chunk))
    if json_output:
        print_json({"account_id": account_id, "imported": len(rows)})
    else:
        out.print(f"Imported {len(rows)} SIM(s) from {file} into {account_id} (PROVISIONED).")


def fresh_rows(session: Session, count: int) -> list[SimRow]:
    """`count` random SIMs whose ICCID and IMSI no Thing has yet, and unique among themselves."""
    seen_iccids: set[str] = set()
    seen_imsis: set[str] = set()
    pairs: list[tuple[str, str]] = []
    while len(pairs) < count:
        candidates = []
        while len(candidates) < count - len(pairs):
            iccid, imsi = random_iccid(), random_imsi()
            if iccid in seen_iccids or imsi in seen_imsis:
                continue
            seen_iccids.add(iccid)
            seen_imsis.add(imsi)
            candidates.append((iccid, imsi))
        taken = repository.existing_identifiers(session, Thing.iccid, [c[0] for c in candidates])
        taken |= repository.existing_identifiers(session, Thing.imsi, [c[1] for c in candidates])
        pairs.extend(c for c in candidates if c[0] not in taken and c[1] not in taken)
    return [SimRow(line, iccid, imsi) for line, (iccid, imsi) in enumerate(pairs, start=1)]


def generate(database: Database, account_id: str, count: int,
             advance: Callable[[int], None] = lambda _: None) -> int:
    """Ship `count` random SIMs in batches; a batch that collides with a concurrent writer is
    drawn again."""
    with database.transaction(read_only=True) as session:
        require_account(session, account_id)
    shipped = 0
    while shipped < count:
        size = min(BATCH, count - shipped)
        for attempt in range(1, GENERATE_ATTEMPTS + 1):
            try:
                with database.transaction() as session:
                    ship_sims(session, account_id, fresh_rows(session, size))
                break
            except (InventoryRejected, IntegrityError):
                if attempt == GENERATE_ATTEMPTS:
                    raise
        shipped += size
        advance(size)
    return shipped


@app.command("generate")
def generate_command(
    ctx: typer.Context,
    account_id: AccountOption,
    count: Annotated[int, typer.Option("--count", min=1, max=1_000_000,
                                       help="How many SIMs to ship.")],
    json_output: JsonFlag = False,
) -> None:
    """Ship COUNT test SIMs with random Luhn-valid ICCIDs and IMSIs."""
    settings = state(ctx).settings()
    with open_database(settings) as database, progress(not json_output) as bar:
        task = bar.add_task("Generating SIMs", total=count)
        generate(database, account_id, count, lambda n: bar.advance(task, n))
    if json_output:
        print_json({"account_id": account_id, "generated": count})
    else:
        out.print(f"Shipped {count} test SIM(s) into {account_id} (PROVISIONED).")
