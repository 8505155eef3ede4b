"""Who may call ``guard serve`` and how often: API keys and per-key rate limits."""

from __future__ import annotations

import hashlib
import hmac
import math
import time
from collections import OrderedDict
from pathlib import Path

from guard.errors import ConfigError


class ApiKeys:
    """The accepted bearer tokens, compared in constant time.

    Args:
        keys: The accepted tokens.

    Raises:
        ConfigError: There is no key (the server would refuse everyone).
    """

    def __init__(self, keys: list[str]) -> None:
        if not keys:
            raise ConfigError("the API key list is empty: every request would be refused")
        self._keys = [key.encode("utf-8") for key in keys]

    @classmethod
    def from_file(cls, path: Path) -> ApiKeys:
        """One key per line; blank lines and ``#`` comments are skipped.

        Raises:
            ConfigError: The file cannot be read or holds no key.
        """
        try:
            lines = Path(path).read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise ConfigError(f"cannot read the API keys file {path}: {exc.strerror}") from None
        keys = [line.strip() for line in lines if line.strip() and not
                line.strip().startswith("#")]
        if not keys:
            raise ConfigError(f"the API keys file {path} holds no key")
        return cls(keys)

    def identify(self, authorization: str | None) -> str | None:
        """The caller's identity for an ``Authorization`` header, ``None`` when refused.

        Every key is compared (with :func:`hmac.compare_digest`) whatever matches, so the time
        taken says nothing about which key, or how much of one, was right. The identity is a
        short hash of the key, safe to use as a rate-limit bucket or in logs.
        """
        if authorization is None:
            return None
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        given = token.strip().encode("utf-8")
        matched = False
        for key in self._keys:
            matched |= hmac.compare_digest(key, given)
        return "key:" + hashlib.sha256(given).hexdigest()[:12] if matched else None


class RateLimiter:
    """A token bucket per caller: ``burst`` requests at once, then ``per_minute``.

    At most ``max_callers`` buckets are kept (the least recently seen is dropped first), so
    many distinct callers cannot grow the memory without bound.

    Args:
        per_minute: Sustained requests per minute.
        burst: Requests allowed at once.
        max_callers: Buckets kept.
    """

    def __init__(self, per_minute: float, *, burst: int = 10, max_callers: int = 10_000) -> None:
        if not math.isfinite(per_minute) or per_minute <= 0 or burst < 1:
            raise ConfigError("a rate limit needs per_minute > 0 and burst >= 1")
        self.rate = per_minute / 60.0
        self.burst = float(burst)
        self.max_callers = max_callers
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def take(self, caller: str, *, now: float | None = None) -> float:
        """Take one request from ``caller``'s bucket.

        Returns:
            ``0`` when allowed, else the seconds until the next request would be.
        """
        at = time.monotonic() if now is None else now
        tokens, last = self._buckets.pop(caller, (self.burst, at))
        tokens = min(self.burst, tokens + (at - last) * self.rate)
        if tokens >= 1:
            tokens -= 1
            wait = 0.0
        else:
            wait = (1 - tokens) / self.rate
        self._buckets[caller] = (tokens, at)
        while len(self._buckets) > self.max_callers:
            self._buckets.popitem(last=False)
        return wait
