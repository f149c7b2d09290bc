"""Keyset paging over time-ordered ids: stable order, no repeats or skips while rows arrive."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from operator import attrgetter
from typing import Any, Generic, TypeVar

from sqlalchemy import ColumnElement, Select
from sqlalchemy.orm import InstrumentedAttribute, Session

from .errors import bad_field

T = TypeVar("T")

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000


@dataclass
class Page(Generic[T]):
    items: Sequence[T]
    next_cursor: str | None


def encode_cursor(last_id: str) -> str:
    return base64.urlsafe_b64encode(json.dumps({"after": last_id}).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        after = json.loads(raw)["after"]
        if not isinstance(after, str) or not after:
            raise ValueError
        return after
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        raise bad_field("cursor", f"{cursor!r} is not a cursor this API handed out") from None


def paginate(
    session: Session,
    statement: Select[Any],
    key: InstrumentedAttribute[str] | ColumnElement[str],
    *,
    limit: int,
    cursor: str | None,
) -> Page[Any]:
    """One page of `statement` (of ORM entities) in `key` order."""
    if cursor:
        statement = statement.where(key > decode_cursor(cursor))
    statement = statement.order_by(key).limit(limit + 1)
    found = session.scalars(statement).all()
    return page_of(found, limit, attrgetter(key.key))


def page_of(found: Sequence[T], limit: int, key: Callable[[T], str]) -> Page[T]:
    """The page of a keyset read that fetched up to `limit + 1` items in `key` order (after
    the cursor's key): an item past the limit only says that more follow."""
    if len(found) > limit:
        return Page(found[:limit], encode_cursor(key(found[limit - 1])))
    return Page(found, None)
