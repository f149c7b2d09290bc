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
    return f"{PREFIXES[kind]}_{_encode(value)}"


def _encode(value: int) -> str:
    chars = []
    for _ in range(_CHARS):
        chars.append(_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(chars))


# Any byte to a digit: 256 is a multiple of 32, so uniform random bytes give uniform digits.
_DIGIT = bytes(_ALPHABET[b & 31].encode()[0] for b in range(256))


def new_ids(kind: str, count: int) -> list[str]:
    """`count` ids as `count` calls of `new_id` would make them (increasing, after every id
    this process made before), without a Python loop per character: a bulk action makes
    hundreds of thousands.

    The 96 random bits are drawn as random digits (19 whole digits and the low bit of the
    digit they share with the time), and ids of one millisecond sort by those digits because
    the alphabet is in ASCII order."""
    global _last_value
    if count <= 0:
        return []
    prefix = f"{PREFIXES[kind]}_"
    with _last_lock:
        ms = time.time_ns() // 1_000_000
        last_ms = _last_value >> 96
        if ms <= last_ms < ms + 5:
            # The last id is from this millisecond: start the batch cleanly after it.
            time.sleep((last_ms + 1 - ms) / 1000)
            ms = time.time_ns() // 1_000_000
        if ms <= last_ms:  # the clock stepped back: random strides after the last id
            made = []
            for _ in range(count):
                _last_value += 1 + secrets.randbits(80)
                made.append(prefix + _encode(_last_value))
            return made
        head = _encode(ms << 96)[:9]
        shared = ms & 15  # the time's low 4 bits and the top random bit make digit 10
        table = bytes(_ALPHABET[shared << 1 | (b & 1)].encode()[0] for b in range(256))
        tenth = secrets.token_bytes(count).translate(table).decode("ascii")
        rest = secrets.token_bytes(19 * count).translate(_DIGIT).decode("ascii")
        made = sorted(f"{prefix}{head}{tenth[i]}{rest[19 * i:19 * i + 19]}" for i in range(count))
        _last_value = _decode(made[-1][len(prefix):])
    return made


def _decode(encoded: str) -> int:
    value = 0
    for char in encoded:
        value = value << 5 | _ALPHABET.index(char)
    return value
