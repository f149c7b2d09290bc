"""Verifying the `Simplane-Signature` header of a webhook delivery.

The server signs each delivery body with the webhook's secret:
`Simplane-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`.
Verify the raw body bytes exactly as received (before any JSON parsing), and de-duplicate
deliveries by the event `id`: delivery is at-least-once.
"""

from __future__ import annotations

import hashlib
import hmac
import time


def compute_signature(secret: str, body: bytes | str, timestamp: int) -> str:
    raw = body.encode() if isinstance(body, str) else body
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + raw, hashlib.sha256)
    return f"t={timestamp},v1={digest.hexdigest()}"


def verify_webhook_signature(secret: str, body: bytes | str, header: str | None,
                             tolerance: float = 300, *, now: float | None = None) -> bool:
    """True when `header` is a valid signature of `body` made within `tolerance` seconds.

    Several `v1=` values are accepted (any may match), so a receiver keeps working while a
    secret is rotated.
    """
    if not header:
        return False
    timestamp: int | None = None
    candidates: list[str] = []
    for part in header.split(","):
        key, sep, value = part.strip().partition("=")
        if not sep:
            continue
        if key == "t":
            try:
                timestamp = int(value)
            except ValueError:
                return False
        elif key == "v1":
            candidates.append(value.strip().lower())
    if timestamp is None or not candidates:
        return False
    current = time.time() if now is None else now
    if tolerance is not None and abs(current - timestamp) > tolerance:
        return False
    expected = compute_signature(secret, body, timestamp).split("v1=", 1)[1]
    return any(hmac.compare_digest(expected, candidate) for candidate in candidates)
