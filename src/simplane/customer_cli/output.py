"""Rendering: Rich tables for people, JSON / JSON Lines for scripts.

Results go to stdout; notes, progress and errors to stderr, so `--json` output stays clean.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel
from rich.console import Console
from rich.table import Table
from rich.text import Text

Column = tuple[str, Callable[[Any], Any]]


def console(stderr: bool = False) -> Console:
    stream = sys.stderr if stderr else sys.stdout
    tty = stream.isatty()
    # Piped output is not cut to 80 columns: ids and ICCIDs must survive `| grep`.
    return Console(file=stream, width=None if tty else 240, highlight=False,
                   soft_wrap=not tty, emoji=False)


def plain(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", by_alias=True)
    return value


def cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, datetime):
        if value.utcoffset() == timedelta(0):
            return value.strftime("%Y-%m-%dT%H:%M:%SZ")
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return ", ".join(cell(v) for v in value) if value else "-"
    if isinstance(value, dict):
        return json.dumps(value, separators=(",", ":"), default=str)
    if isinstance(value, BaseModel):
        return json.dumps(plain(value), separators=(",", ":"))
    return str(value)


class Output:
    def __init__(self, json_output: bool = False, jsonl: bool = False) -> None:
        self.mode = "jsonl" if jsonl else "json" if json_output else "table"
        self.out = console()
        self.err = console(stderr=True)

    @property
    def structured(self) -> bool:
        return self.mode != "table"

    def _line(self, text: str) -> None:
        sys.stdout.write(text + "\n")
        sys.stdout.flush()

    def note(self, text: str) -> None:
        """A remark for people (stderr), never mixed into the results."""
        self.err.print(Text(text, style="dim"))

    def items(self, rows: Iterable[Any], columns: Sequence[Column], *,
              title: str | None = None, empty: str = "nothing found") -> int:
        count = 0
        if self.mode == "jsonl":
            for row in rows:
                self._line(json.dumps(plain(row), separators=(",", ":")))
                count += 1
            return count
        if self.mode == "json":
            # Streamed, so `--all` over a large fleet does not build one huge string first.
            sys.stdout.write("[")
            for row in rows:
                sys.stdout.write(("," if count else "") + "\n  " + json.dumps(plain(row)))
                count += 1
            sys.stdout.write("\n]\n" if count else "]\n")
            sys.stdout.flush()
            return count
        table = Table(title=title, header_style="bold", box=None, pad_edge=False)
        for header, _ in columns:
            table.add_column(header, overflow="fold")
        for row in rows:
            table.add_row(*(Text(cell(get(row))) for _, get in columns))
            count += 1
        if count:
            self.out.print(table)
        else:
            self.note(empty)
        return count

    def detail(self, obj: Any, fields: Sequence[Column] | None = None, *,
               title: str | None = None) -> None:
        if self.structured:
            self._line(json.dumps(plain(obj), separators=(",", ":") if self.mode == "jsonl"
                                  else None, indent=None if self.mode == "jsonl" else 2))
            return
        pairs = [(label, get(obj)) for label, get in fields] if fields else flatten(plain(obj))
        table = Table(title=title, show_header=False, box=None, pad_edge=False)
        table.add_column(style="bold")
        table.add_column(overflow="fold")
        for label, value in pairs:
            table.add_row(Text(label), Text(cell(value)))
        self.out.print(table)

    def text(self, value: str) -> None:
        sys.stdout.write(value if value.endswith("\n") else value + "\n")
        sys.stdout.flush()


def flatten(value: Any, prefix: str = "") -> list[tuple[str, Any]]:
    if isinstance(value, dict) and value:
        pairs: list[tuple[str, Any]] = []
        for key, inner in value.items():
            pairs.extend(flatten(inner, f"{prefix}.{key}" if prefix else str(key)))
        return pairs
    return [(prefix, value)]
