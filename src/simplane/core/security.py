"""Client secrets (argon2 hashes) and signed bearer tokens.

A token is `base64url(payload).base64url(HMAC-SHA256)`; it names the credential, so every
request re-checks that the credential still exists and its user is active: deleting a
credential or disabling a user invalidates its tokens at once.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

# OWASP's argon2id floor: client secrets carry 256 random bits, so a heavier hash buys nothing
# and would slow the token endpoint.
_hasher = PasswordHasher(time_cost=2, memory_cost=19_456, parallelism=1)
_DUMMY_HASH = _hasher.hash("not-a-real-secret")


def new_client_id() -> str:
    return "cli_" + secrets.token_hex(12)


def new_client_secret() -> str:
    return "sk_" + secrets.token_urlsafe(32)


def hash_secret(secret: str) -> str:
    return _hasher.hash(secret)


def verify_secret(secret_hash: str | None, secret: str) -> bool:
    # An unknown client id still costs one verification, so timing does not reveal which exist.
    try:
        return _hasher.verify(secret_hash or _DUMMY_HASH, secret) and secret_hash is not None
    except (VerificationError, InvalidHashError):
        return False


@dataclass(frozen=True)
class TokenClaims:
    client_id: str
    account_id: str
    issued_at: float  # seconds, to the millisecond: revocation compares it with an instant
    expires_at: int
    kind: str = "user"  # "network": a platform-level credential for /v1/network/* only


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


# Tokens whose signature checked out, remembered with their claims: a client sends the same
# token with every request until it expires, and checking it (base64, HMAC, JSON) was ~5 % of
# a served single-Thing read. What a token proves depends only on its text, the key and the
# clock, so a remembered one answers the same; its expiry is checked on every use.
_REMEMBERED_TOKENS = 4096


class TokenSigner:
    def __init__(self, secret_key: str) -> None:
        self._key = hashlib.sha256(b"simplane-token:" + secret_key.encode()).digest()
        self._verified: dict[str, TokenClaims] = {}

    def issue(self, client_id: str, account_id: str, ttl_seconds: int, kind: str = "user") -> str:
        now = int(time.time())
        payload = {"c": client_id, "a": account_id, "iat": round(time.time(), 3),
                   "exp": now + ttl_seconds, "n": secrets.token_hex(8), "k": kind}
        body = _b64(json.dumps(payload, separators=(",", ":")).encode())
        return f"{body}.{self._sign(body)}"

    def verify(self, token: str) -> TokenClaims | None:
        """The claims of a well-formed, correctly signed, unexpired token; otherwise None."""
        remembered = self._verified.get(token)
        if remembered is not None:
            return remembered if remembered.expires_at > time.time() else None
        claims = self._check(token)
        if claims is not None:
            if len(self._verified) >= _REMEMBERED_TOKENS:
                self._verified.clear()  # a dict swap, safe between threads; refilled in use
            self._verified[token] = claims
        return claims

    def _check(self, token: str) -> TokenClaims | None:
        body, _, signature = token.partition(".")
        if not body or not signature or not hmac.compare_digest(self._sign(body), signature):
            return None
        try:
            payload = json.loads(_unb64(body))
            claims = TokenClaims(str(payload["c"]), str(payload["a"]), float(payload["iat"]),
                                 int(payload["exp"]), str(payload.get("k", "user")))
        except (ValueError, KeyError, TypeError):
            return None
        return claims if claims.expires_at > time.time() else None

    def verify_once(self, scope: dict, token: str) -> TokenClaims | None:
        """`verify`, remembered in the request's ASGI scope: the rate limiter and the caller
        lookup both need the claims of the same token."""
        memo = scope.get("simplane.token_claims")
        if memo is not None and memo[0] == token:
            return memo[1]  # type: ignore[no-any-return]
        claims = self.verify(token)
        scope["simplane.token_claims"] = (token, claims)
        return claims

    def _sign(self, body: str) -> str:
        return _b64(hmac.new(self._key, body.encode(), hashlib.sha256).digest())
