"""IPv4 arithmetic for allocations and pools, on integers so that nothing is materialised."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable


def bounds(cidr: str) -> tuple[int, int]:
    network = ipaddress.IPv4Network(cidr, strict=True)
    return int(network.network_address), int(network.broadcast_address)


def overlaps(a: tuple[int, int], b: tuple[int, int]) -> bool:
    return a[0] <= b[1] and b[0] <= a[1]


def first_free_block(
    within: Iterable[tuple[int, int]], taken: Iterable[tuple[int, int]], prefix_length: int
) -> str | None:
    """The lowest aligned /prefix_length block inside one of `within` that overlaps no `taken`."""
    size = 1 << (32 - prefix_length)
    busy = sorted(taken)
    for low, high in sorted(within):
        candidate = (low + size - 1) // size * size
        while candidate + size - 1 <= high:
            block = (candidate, candidate + size - 1)
            clash = next((t for t in busy if overlaps(t, block)), None)
            if clash is None:
                return str(ipaddress.IPv4Network((candidate, prefix_length)))
            candidate = (clash[1] + 1 + size - 1) // size * size
    return None
