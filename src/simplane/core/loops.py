"""One value per asyncio event loop: what a serving process (one loop) keeps for its requests,
and what an app served on several loops at once (tests, the TestClient) keeps apart."""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class PerLoop(Generic[T]):
    """`factory()`'s value for the running loop, made at its first use there; forgotten with
    the loop."""

    def __init__(self, factory: Callable[[], T]) -> None:
        self._factory = factory
        self._values: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, T] = (
            weakref.WeakKeyDictionary())

    def get(self) -> T:
        loop = asyncio.get_running_loop()
        value = self._values.get(loop)
        if value is None:
            value = self._values[loop] = self._factory()
        return value

    def pop(self) -> T | None:
        """The running loop's value, if it made one, no longer kept."""
        return self._values.pop(asyncio.get_running_loop(), None)
