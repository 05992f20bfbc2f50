"""Login guards, shared by the API's login and the back office's.

Two rules, neither of which lets a stranger lock anyone else out:

- Lockout per (username, client address), with exponential back-off: after
  LOGIN_LOCKOUT_FAILURES failures from one address for one username, that pair is refused for
  LOGIN_LOCKOUT_BASE_S seconds, and every further failure after a lockout doubles it (capped at
  LOGIN_LOCKOUT_MAX_S). A global username lock would let anyone lock the admin out with five
  wrong passwords; per pair, a guesser locks only itself.
- Failures per client address (LOGIN_FAILURES_PER_IP a window), whatever the usernames:
  one address spraying many accounts.

A success from the pair forgets its failures. Failures are forgotten a day after the first.
"""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass

from django.conf import settings

from quartermaster.core import ratelimit, security
from quartermaster.core.errors import RateLimited

FAILURE_MEMORY_S = 24 * 3600


def _ip_limit() -> ratelimit.Limit:
    return ratelimit.Limit(
        "login-ip", settings.LOGIN_FAILURES_PER_IP, settings.LOGIN_FAILURE_WINDOW_S
    )


def lockout_seconds(failures: int, *, threshold: int, base_s: int, max_s: int) -> int:
    """How long the pair is locked after its `failures`-th failure (0: not locked). Pure."""
    if threshold <= 0 or failures < threshold:
        return 0
    doublings = min(failures - threshold, 32)  # 2**32 s outlasts any cap; keeps the int small
    return min(base_s * 2**doublings, max_s)


@dataclass(frozen=True)
class LoginGuard:
    """The guards for one login attempt: `username` (case-folded) from `address`."""

    username: str
    address: str

    @classmethod
    def of(cls, username: str, address: str) -> LoginGuard:
        return cls(username=username.strip().lower(), address=address)

    def _pair_key(self, kind: str) -> str:
        # Usernames are the caller's text: hash them into a short key of known characters.
        digest = hashlib.blake2b(
            f"{self.username}\x00{self.address}".encode(), digest_size=16
        ).hexdigest()
        return f"{ratelimit.NAMESPACE}:login-{kind}:{digest}"

    def refuse_if_locked(self, *, device: str = "") -> None:
        """Raise `RateLimited` while the pair is locked out or the address over its limit.

        Asked before the password is checked: a locked-out guesser learns nothing, even when
        the guess is right, and pays no hashing time of ours.
        """
        try:
            unlocks_at = ratelimit.storage().get(self._pair_key("lock"))
            now = time.time()
            if unlocks_at > now:
                raise RateLimited(max(1, math.ceil(unlocks_at - now)))
            ratelimit.refuse_if_exhausted(_ip_limit(), self.address)
        except RateLimited as refusal:
            self._record(security.LOGIN_LOCKED, f"locked out for {refusal.retry_after_s} s", device)
            raise

    def _record(self, kind: str, reason: str, device: str) -> None:
        security.record(
            [
                security.Event(
                    kind=kind,
                    reason=reason,
                    actor=self.username,
                    device=device,
                    address=self.address,
                    subject="login",
                )
            ]
        )

    def failed(self, *, device: str = "") -> int:
        """Count a failure (a security event); lock the pair when it reaches the threshold.
        Returns the lockout (s)."""
        self._record(security.LOGIN_FAILED, "invalid username or password", device)
        ratelimit.hit(_ip_limit(), self.address)
        threshold = settings.LOGIN_LOCKOUT_FAILURES
        if threshold <= 0:
            return 0
        store = ratelimit.storage()
        failures = store.incr(self._pair_key("failures"), FAILURE_MEMORY_S)
        seconds = lockout_seconds(
            failures,
            threshold=threshold,
            base_s=settings.LOGIN_LOCKOUT_BASE_S,
            max_s=settings.LOGIN_LOCKOUT_MAX_S,
        )
        if seconds > 0:
            # The lock holds the time it opens (whole seconds), not a bare flag: the refusal can
            # say exactly when, on every backend; the key's expiry only tidies it away.
            lock_key = self._pair_key("lock")
            store.clear(lock_key)
            store.incr(lock_key, seconds + 1, amount=math.ceil(time.time()) + seconds)
        return seconds

    def succeeded(self) -> None:
        store = ratelimit.storage()
        store.clear(self._pair_key("failures"))
        store.clear(self._pair_key("lock"))
