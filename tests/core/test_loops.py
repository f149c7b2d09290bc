"""`core.loops.PerLoop`: one value per event loop."""

from __future__ import annotations

import asyncio

from simplane.core.loops import PerLoop


def test_a_loop_keeps_its_own_value_until_it_is_popped():
    made: list[object] = []
    per_loop = PerLoop(lambda: made.append(object()) or made[-1])

    async def twice_then_pop() -> tuple[object, object, object | None, object]:
        first, again = per_loop.get(), per_loop.get()
        popped = per_loop.pop()
        return first, again, popped, per_loop.get()

    first, again, popped, after = asyncio.run(twice_then_pop())
    assert first is again is popped and after is not first
    other_loop_value, *_ = asyncio.run(twice_then_pop())
    assert other_loop_value not in (first, after)
    assert len(made) == 4
