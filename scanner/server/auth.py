"""API keys: generation, hashing and the `Authorization` header.

A key is `pqr_live_` + 40 random alphanumerics (about 238 bits), so a plain
SHA-256 is enough to store it: there is nothing to brute-force, and a fast
hash keeps the per-request cost low. Only the hash and a short, non-secret
prefix (for telling keys apart in the database) are stored; the plain key
exists once, when `create-key` prints it.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import string
import time
from collections.abc import Callable
from dataclasses import dataclass

KEY_PREFIX = "pqr_live_"
KEY_SECRET_LENGTH = 40
#: Characters of the plain key kept in the database to identify it (prefix + 4).
STORED_PREFIX_LENGTH = len(KEY_PREFIX) + 4
PLANS = ("free", "starter", "pro")
#: Plans that may use the API at all; `free` gets 403 on every endpoint.
API_PLANS = frozenset({"starter", "pro"})
#: Plans whose keys may push to wallets (`POST /passes/{id}/push`); others get 402.
PUSH_PLANS = frozenset({"pro"})
#: Passes a business may hold on each plan (None: no limit); past it `POST /passes` is a 402.
#: PassQR publishes no numbers; these are the local server's own, `server run --pass-quota`
#: changes them.
DEFAULT_PASS_QUOTAS: dict[str, int | None] = {"free": 0, "starter": 1000, "pro": None}

_ALPHABET = string.ascii_letters + string.digits
_HEADER_RE = re.compile(r"[Bb][Ee][Aa][Rr][Ee][Rr] +(pqr_live_[A-Za-z0-9]{32,128}) *")


@dataclass(frozen=True, kw_only=True)
class ApiKey:
    """A stored key, as the server sees it after authentication."""

    id: str
    name: str
    plan: str
    business: str

    @property
    def has_api_access(self) -> bool:
        return self.plan in API_PLANS

    @property
    def can_push(self) -> bool:
        return self.plan in PUSH_PLANS


def generate_key() -> str:
    return KEY_PREFIX + "".join(secrets.choice(_ALPHABET) for _ in range(KEY_SECRET_LENGTH))


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("ascii")).hexdigest()


def key_from_header(value: str | None) -> str | None:
    """The key in `Authorization: Bearer <key>`, or None when absent or malformed."""
    if value is None or len(value) > 200:
        return None
    match = _HEADER_RE.fullmatch(value)
    return match.group(1) if match else None


def hashes_match(stored: str, computed: str) -> bool:
    """Constant-time comparison, so timing never tells how much of a hash matched."""
    return hmac.compare_digest(stored.encode("ascii"), computed.encode("ascii"))


class KeyCache:
    """Positive lookups for a few seconds, so the hot path skips the database.

    Only keys that exist are cached (a new key works at once); keys are never
    deleted or re-planned through the API, so a short TTL bounds staleness
    after an operator edits the database by hand.
    """

    def __init__(self, ttl: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl = ttl
        self._clock = clock
        self._entries: dict[str, tuple[ApiKey, float]] = {}

    def get(self, key_hash: str) -> ApiKey | None:
        entry = self._entries.get(key_hash)
        if entry is None:
            return None
        if entry[1] <= self._clock():
            del self._entries[key_hash]
            return None
        return entry[0]

    def put(self, key_hash: str, key: ApiKey) -> None:
        if len(self._entries) > 1000:
            self._entries.clear()
        self._entries[key_hash] = (key, self._clock() + self._ttl)
