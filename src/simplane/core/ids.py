"""Opaque, unguessable, time-ordered resource ids such as `thg_01JD4...`.

48 bits of millisecond time then 96 random bits, in Crockford base32. The time prefix keeps
ids roughly in creation order (good B-tree locality and a natural paging key); the random
part makes them unguessable.
"""

from __future__ import annotations

import secrets
import threading
import time

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_BITS = 48 + 96
_CHARS = (_BITS + 4) // 5

PREFIXES = {
    "account": "acc",
    "user": "usr",
    "credential": "cred",
    "thing": "thg",
    "things_group": "grp",
    "network": "net",
    "ip_pool": "pool",
    "ip_profile": "ipp",
    "event": "evt",
    "audit": "aud",
    "state_change": "stc",
    "allocation": "alc",
    "lease": "lse",
    "route": "rte",
    "nat_rule": "nat",
    "vpn_tunnel": "vpn",
    "firewall_rule": "rule",
    "session": "ses",
    "usage": "use",
    "imei": "imei",
    "sms": "sms",
    "tariff": "trf",
    "bulk_action": "blk",
    "webhook": "whk",
    "delivery": "dlv",
    "billing_cycle": "cyc",
    "billing_line": "bln",
    "network_credential": "ncr",
}


_last_value = 0
_last_lock = threading.Lock()


def new_id(kind: str) -> str:
    global _last_value
    with _last_lock:
        value = (time.time_ns() // 1_000_000) << 96 | secrets.randbits(96)
        if value <= _last_value:
            # Same millisecond as the previous id (or the clock stepped back): stay after it so
            # creation order is id order within a process (a batch of Things, the events of one
            # request), by a random stride so neighbouring ids stay unguessable.
            value = _last_value + 1 + secrets.randbits(80)
        _last_value = value
    chars = []
    for _ in range(_CHARS):
        chars.append(_ALPHABET[value & 31])
        value >>= 5
    return f"{PREFIXES[kind]}_{''.join(reversed(chars))}"
