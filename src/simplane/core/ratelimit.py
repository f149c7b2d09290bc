"""Token buckets: in memory for one process, in Redis when several processes share the limit."""

from __future__ import annotations

import math
import threading
import time
from typing import NamedTuple, Protocol


class Decision(NamedTuple):
    # A tuple, not a frozen dataclass: one is made per API request, and a frozen dataclass's
    # __init__ sets each field through object.__setattr__.
    allowed: bool
    limit: int
    remaining: int
    reset_seconds: int
    retry_after: int


def _decide(tokens_after: float, allowed: bool, rate: float, burst: int) -> Decision:
    remaining = max(0, math.floor(tokens_after))
    reset = math.ceil((burst - tokens_after) / rate) if tokens_after < burst else 0
    retry = 0 if allowed else max(1, math.ceil((1 - tokens_after) / rate))
    return Decision(allowed, burst, remaining, reset, retry)


class RateLimiter(Protocol):
    # Whether `hit` waits on the network (and so belongs in a worker thread, off the event loop).
    blocking: bool

    def hit(self, key: str, rate: float, burst: int) -> Decision: ...


class MemoryRateLimiter:
    blocking = False

    def __init__(self) -> None:
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def hit(self, key: str, rate: float, burst: int) -> Decision:
        now = time.monotonic()
        with self._lock:
            tokens, stamp = self._buckets.get(key, (float(burst), now))
            tokens = min(float(burst), tokens + (now - stamp) * rate)
            allowed = tokens >= 1
            if allowed:
                tokens -= 1
            self._buckets[key] = (tokens, now)
            if len(self._buckets) > 100_000:
                self._evict(now, rate, burst)
        return _decide(tokens, allowed, rate, burst)

    def _evict(self, now: float, rate: float, burst: int) -> None:
        full_after = burst / rate
        for key, (_, stamp) in list(self._buckets.items()):
            if now - stamp > full_after:
                del self._buckets[key]


# Refill and take in one atomic step on the Redis server, timed by the server's clock so that
# processes on hosts with skewed clocks still share one bucket.
_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'stamp')
local tokens = tonumber(state[1]) or burst
local stamp = tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - stamp) * rate)
local allowed = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'stamp', tostring(now))
redis.call('EXPIRE', KEYS[1], math.ceil(burst / rate) + 1)
return {allowed, tostring(tokens)}
"""


class RedisRateLimiter:
    blocking = True

    def __init__(self, url: str) -> None:
        import redis

        self._client = redis.Redis.from_url(url, socket_timeout=2)
        self._script = self._client.register_script(_LUA)

    def hit(self, key: str, rate: float, burst: int) -> Decision:
        allowed, tokens = self._script(keys=[f"simplane:ratelimit:{key}"], args=[rate, burst])
        return _decide(float(tokens), bool(int(allowed)), rate, burst)


def build_rate_limiter(redis_url: str | None) -> RateLimiter:
    return RedisRateLimiter(redis_url) if redis_url else MemoryRateLimiter()
